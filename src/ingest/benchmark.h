// A synthetic experiment for the query benchmark (`kvlab bench query
// --generate`): `passages` x 3 streams x (fp8_per64 + each family at
// Q = 1..qmax) finished runs with a deterministic rate-distortion model
// (rel-MSE ~ (2Q+1)^-2 times per-stream and per-passage factors) and audits,
// as a store::ImportBundle of origin 'sweep'.
//
// Not here: writing (store/import.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

#include "ingest/bundle.h"
#include "store/import.h"

namespace kvlab::ingest {

// bits_of gives the recorded bits of each lattice (family, Q, dim).
struct BenchmarkSpec {
  std::string experiment = "bench_query";
  int passages = 166;
  int qmax = 100;
  std::vector<std::string> families = {"d4", "e8"};
  int dim = 512;
  std::uint64_t seed = 1;
  std::function<double(const std::string& family, int q, int dim)> bits_of;
  LayerMix layer_mix;
  std::string git_commit;  // recorded in the experiment's provenance row
};

// The generated rows; throws kvlab::Error on a bad spec.
store::ImportBundle benchmark_bundle(const BenchmarkSpec& spec);

// benchmark_bundle, written by store::write_import. Throws kvlab::Error if
// the experiment name exists already.
store::ImportOutcome generate_benchmark(SQLite::Database& db, const BenchmarkSpec& spec);

}  // namespace kvlab::ingest
