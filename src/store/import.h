// Importing results made elsewhere into the result database:
//  - the published JSON, as an experiment of origin 'published', in each of
//    its three shapes:
//      per-passage (stage075_n8.json: per passage and stream, the audit and
//      per-codec rel_mse / cos_sim / bits_per_vector; codec names
//      v14_d4_Q<q>, v15_e8_Q<q>, fp8_per64_baseline),
//      single-passage (stage075_trained.json: results_by_stream, imported
//      as passage p0),
//      aggregate-only (stage075_qsweep*_n8.json: per stream {mean, std,
//      ci95_hw, n} of FP8 and of E8 per Q; no per-passage values exist, so
//      no runs are written: the checked summaries are stored in params_json
//      "published_aggregate");
//  - a CSV of run results (columns passage, stream, codec, q,
//    bits_per_vector, rel_mse, cos_sim; optional n_vectors, dim,
//    passage_hash, replicate; the experiment and run_id columns that
//    `kvlab export` adds are ignored), as an experiment of origin 'csv'.
// The experiment records the file's sha256 as spec_hash. Importing the
// same file twice adds nothing (the experiment is found by hash; every row
// is INSERT OR IGNORE), and the whole import is one transaction.
// Imported bits are the recorded bits_per_vector (published accounting).
//
// Not here: reading the database (query.h), statistics.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <SQLiteCpp/Database.h>

namespace kvlab::store {

// (stream, layers) pairs written into params_json "layer_mix".
using LayerMix = std::vector<std::pair<std::string, double>>;

// Turns a family name and optional Q into the canonical codec spec, or
// throws kvlab::Error naming the value. The CLI passes one backed by the
// codec registry; when empty, a structural check is used ('fp8_per64' with
// no Q, or '<family>' + Q >= 1 -> '<family>:q=<Q>').
using CodecCanonicalizer = std::function<std::string(const std::string& family, std::optional<int> q)>;

struct ImportOptions {
  std::string experiment;  // experiment name; empty = the file name without directory and extension
  LayerMix layer_mix;      // required: the model's layer counts per stream
  CodecCanonicalizer canonicalize;
};

struct ImportOutcome {
  std::int64_t experiment_id = 0;
  std::string experiment;
  bool experiment_created = false;
  std::string file_sha256;
  std::int64_t passages_added = 0;
  std::int64_t runs_added = 0;
  std::int64_t results_added = 0;
  std::int64_t audits_added = 0;
  std::int64_t rows_existing = 0;  // runs already present (not changed)
};

// "v14_d4_Q10" -> "d4:q=10", "v15_e8_Q38" -> "e8:q=38",
// "fp8_per64_baseline" -> "fp8_per64". Throws kvlab::Error otherwise.
std::string published_codec_spec(const std::string& published_name);

// Throws kvlab::Error naming the file and the JSON path of a missing or
// mistyped field; nothing is written then.
ImportOutcome import_published(SQLite::Database& db, const std::string& path, const ImportOptions& options);

// Throws kvlab::Error naming the file, line and column of a bad value.
ImportOutcome import_csv(SQLite::Database& db, const std::string& path, const ImportOptions& options);

// A synthetic experiment for the query benchmark (`kvlab bench query
// --generate`): `passages` x 3 streams x (fp8_per64 + each family at
// Q = 1..qmax) finished runs with a deterministic rate-distortion model
// (rel-MSE ~ (2Q+1)^-2 times per-stream and per-passage factors) and audits.
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
// Throws kvlab::Error if the experiment name exists already.
ImportOutcome generate_benchmark(SQLite::Database& db, const BenchmarkSpec& spec);

// The stream names imports accept.
const std::vector<std::string>& published_stream_names();

}  // namespace kvlab::store
