// The synthetic query benchmark: see benchmark.h.
#include "ingest/benchmark.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/hash.h"
#include "kvlab_version.h"

namespace kvlab::ingest {

namespace {

// splitmix64: a deterministic, portable noise source; uniform in [0, 1).
struct SplitMix {
  std::uint64_t state;
  double operator()() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  }
};

// Stream s of one passage: the FP8 run, each family at every Q, the audit.
void add_stream(store::ImportBundle& b, const BenchmarkSpec& spec, SplitMix& uniform, const std::string& name, int s,
                double passage_scale) {
  const auto& streams = published_stream_names();
  const double stream_scale[3] = {1.0, 1.15, 1.6};
  const double fp8_bits = 8.0 * spec.dim + 16.0 * (spec.dim / 64);
  const std::int64_t n_vectors = s == 0 ? 2048 : s == 1 ? 512 : 16;
  const double base = 1.0e-3 * stream_scale[s] * passage_scale;
  const auto add = [&](const std::string& codec, std::optional<int> q, double bits, double rel) {
    store::ImportRun r;
    r.passage = name;
    r.stream = streams[s];
    r.codec = codec;
    r.q = q;
    r.result.bits_per_vector = bits;
    r.result.rel_mse = rel;
    r.result.cos_sim = 1.0 - rel / 2;
    r.result.n_vectors = n_vectors;
    r.result.dim = spec.dim;
    b.runs.push_back(std::move(r));
  };
  add("fp8_per64", std::nullopt, fp8_bits, base * (1.0 + 0.02 * (uniform() - 0.5)));
  for (std::size_t f = 0; f < spec.families.size(); ++f)
    for (int q = 1; q <= spec.qmax; ++q) {
      const double fam = 1.0 + 0.5 * static_cast<double>(f);
      const double rel = base * 1200.0 / fam / ((2.0 * q + 1) * (2.0 * q + 1)) * (1.0 + 0.04 * (uniform() - 0.5));
      add(fmt::format("{}:q={}", spec.families[f], q), q, spec.bits_of(spec.families[f], q, spec.dim), rel);
    }
  store::ImportAudit a;
  a.passage = name;
  a.row.stream = streams[s];
  a.row.excess_kurtosis_abs = uniform();
  a.row.isotropy_variance_ratio = uniform();
  a.row.hadamard_post_variance_ratio = uniform();
  a.row.rms_wasserstein2_over_sigma_per_dim = uniform();
  a.row.n_vectors = n_vectors;
  a.row.dim = spec.dim;
  b.audits.push_back(a);
}

}  // namespace

store::ImportBundle benchmark_bundle(const BenchmarkSpec& spec) {
  check_layer_mix(spec.layer_mix);
  KVLAB_CHECK(spec.passages >= 1 && spec.qmax >= 1, "benchmark: passages ({}) and qmax ({}) must be >= 1",
              spec.passages, spec.qmax);
  KVLAB_CHECK(static_cast<bool>(spec.bits_of), "benchmark: a bit formula is required");
  store::ImportBundle b;
  b.origin = "sweep";
  b.name = spec.experiment;
  b.spec_text = fmt::format("synthetic query benchmark: {} passages, families {}, Q = 1..{}, D = {}, seed {}",
                            spec.passages, fmt::join(spec.families, ","), spec.qmax, spec.dim, spec.seed);
  b.sha256 = sha256_hex(b.spec_text);
  SplitMix uniform{spec.seed};
  for (int p = 0; p < spec.passages; ++p) {
    const std::string name = fmt::format("bench{}", p);
    b.passages.push_back({p, name, sha256_hex("bench-passage:" + name), fmt::format("synthetic:seed={}", p),
                          std::nullopt});
    const double passage_scale = 1.0 + 0.05 * (uniform() - 0.5);
    for (int s = 0; s < 3; ++s) add_stream(b, spec, uniform, name, s, passage_scale);
  }
  nlohmann::json params = nlohmann::json::object();
  params["seqlen"] = 2048;
  params["stream_dtype"] = "bf16";
  params["device"] = "synthetic";
  params["host"] = {{"kind", "synthetic"}, {"spec", "query benchmark"}};
  params["streams"] = published_stream_names();
  params["layer_mix"] = layer_mix_json(spec.layer_mix);
  set_params(b, std::move(params));
  b.provenance.kvlab_version = KVLAB_VERSION;
  b.provenance.git_commit = spec.git_commit;
  b.provenance.host_kind = "synthetic";
  return b;
}

store::ImportOutcome generate_benchmark(SQLite::Database& db, const BenchmarkSpec& spec) {
  const store::ImportBundle b = benchmark_bundle(spec);
  KVLAB_CHECK(!store::experiment_exists(db, b.name), "benchmark: experiment '{}' exists already in {}", b.name,
              db.getFilename());
  return store::write_import(db, b);
}

}  // namespace kvlab::ingest
