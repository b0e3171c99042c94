// The rate metrics of every run (issue 14): entropy_bits_per_dim,
// range_bits_per_dim, gauss_bound_rel_mse and rwf_bound_rel_mse.
//  - torch executor on a captured stream with a known covariance spectrum
//    (kv-file host): the water-filling bound equals the kernel on that
//    spectrum (the mean-centring checked by a common offset), the entropy
//    equals the codec's own on the same bytes, absent for n < D;
//  - a real small sweep (synthetic host, random weights, V4 write path)
//    through the worker: every run's run_metrics rows hold the properties;
//  - the stub executor's hashed values hold them too.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "codec/codec.h"
#include "codec/entropy_stream.h"
#include "experiment/executor.h"
#include "experiment/spec.h"
#include "experiment/worker.h"
#include "io/safetensors.h"
#include "kernels/entropy.h"
#include "store/db.h"
#include "store/runs.h"
#include "testutil/testutil.h"

namespace kvlab::experiment {
namespace {

constexpr int64_t kD = 512;

// Rows 2j, 2j+1 = c +- a_j e_j (j < D), c a constant offset: mean c, centred
// covariance diag(2 a_j^2 / n), so the spectrum is a_j^2 up to a factor.
std::vector<float> known_spectrum_rows(std::vector<double>& eig) {
  std::vector<float> x(size_t(2 * kD * kD), 3.0f);
  eig.assign(size_t(kD), 0.0);
  for (int64_t j = 0; j < kD; ++j) {
    const float a = std::ldexp(1.0f, int(j % 9) - 4);  // 2^-4 .. 2^4
    x[size_t((2 * j) * kD + j)] += a;
    x[size_t((2 * j + 1) * kD + j)] -= a;
    eig[size_t(j)] = double(a) * double(a);
  }
  return x;
}

TEST(ExperimentRates, TorchExecutorStoresEntropyAndBoundsOfTheStream) {
  const std::string dir = testutil::make_temp_dir("kvlab-rates");
  std::vector<double> eig;
  const auto x = known_spectrum_rows(eig);
  std::vector<float> small(size_t(16 * kD));
  for (size_t i = 0; i < small.size(); ++i) small[i] = float(std::sin(0.37 * double(i)));
  {
    io::SafetensorsWriter w;
    w.add_f32("sliding_window_kv", {2 * kD, kD}, x.data());
    w.add_f32("hca_pool_kv_ratio128", {16, kD}, small.data());
    w.write(dir + "/kv.safetensors");
  }
  PassageJob job;
  job.experiment = "rates";
  job.passage_name = "p0";
  job.params = {{"host", {{"kind", "kv-file"}, {"path", dir + "/kv.safetensors"}}}, {"stream_dtype", "fp32"}};
  job.streams = {"sliding_window_kv", "hca_pool_kv_ratio128"};
  auto ex = make_torch_executor("threads=1");
  auto session = ex->open_passage(job);
  for (const std::string spec : {"fp8_per64", "v4_native", "e8:q=10", "d4:q=3", "int:bits=4,block=64,scale=ue8m0",
                                 "hadamard_int:bits=6,block=32,scale=fp16", "hadamard_lloyd:bits=2"}) {
    const auto m = session->measure("sliding_window_kv", spec);
    const double r = m.bits_per_vector / double(kD);
    ASSERT_EQ(m.metrics.count("entropy_bits_per_dim"), 1u) << spec;
    ASSERT_EQ(m.metrics.count("gauss_bound_rel_mse"), 1u) << spec;
    ASSERT_EQ(m.metrics.count("rwf_bound_rel_mse"), 1u) << spec;
    // The entropy of the bytes the codec writes for these rows.
    auto c = codec::make_codec(spec, kD);
    std::vector<uint8_t> codes(size_t(2 * kD) * c->code_size());
    c->encode(x.data(), 2 * kD, codes.data());
    const double h = c->stored_entropy(codes.data(), 2 * kD).bits_per_dim();
    EXPECT_NEAR(m.metrics.at("entropy_bits_per_dim"), h, 1e-12) << spec;
    EXPECT_GT(h, 0.0) << spec;
    EXPECT_LE(h, r) << spec;
    // The range-coded size of the same bytes (families with a range coder only).
    if (c->has_symbol_columns()) {
      ASSERT_EQ(m.metrics.count("range_bits_per_dim"), 1u) << spec;
      const double coded = 8.0 * double(codec::range_encode_records(*c, codes.data(), 2 * kD).size()) / double(2 * kD * kD);
      EXPECT_EQ(m.metrics.at("range_bits_per_dim"), coded) << spec;
      EXPECT_LT(coded, r) << spec;
    } else {
      EXPECT_EQ(m.metrics.count("range_bits_per_dim"), 0u) << spec;
    }
    EXPECT_NEAR(m.metrics.at("gauss_bound_rel_mse"), std::exp2(-2 * r), 1e-15) << spec;
    const double rwf = kernels::rwf_bound_rel_mse(eig.data(), kD, r);
    EXPECT_NEAR(m.metrics.at("rwf_bound_rel_mse"), rwf, 1e-9 * rwf) << spec;
    EXPECT_LT(m.metrics.at("rwf_bound_rel_mse"), m.metrics.at("gauss_bound_rel_mse")) << spec;  // a spread spectrum
  }
  // n = 16 < D: no water-filling bound; the other two are stored.
  const auto m = session->measure("hca_pool_kv_ratio128", "e8:q=10");
  EXPECT_EQ(m.metrics.count("rwf_bound_rel_mse"), 0u);
  EXPECT_EQ(m.metrics.count("entropy_bits_per_dim"), 1u);
  EXPECT_EQ(m.metrics.count("gauss_bound_rel_mse"), 1u);
  EXPECT_EQ(m.metrics.count("range_bits_per_dim"), 1u);
}

struct StoredRun {
  int64_t passage = 0;
  std::string stream, codec;
  double bits = 0;
  int64_t n = 0, dim = 0;
  std::map<std::string, double> metrics;
};

std::vector<StoredRun> stored_runs(const std::string& db_path) {
  auto db = store::open_database(db_path, store::OpenMode::kReadOnly);
  std::map<int64_t, StoredRun> runs;
  SQLite::Statement q(*db,
                      "SELECT r.id, r.stream, r.codec, s.bits_per_vector, s.n_vectors, s.dim, r.status, r.passage_id "
                      "FROM runs r LEFT JOIN results s ON s.run_id = r.id");
  while (q.executeStep()) {
    EXPECT_EQ(q.getColumn(6).getString(), "done") << q.getColumn(2).getString();
    runs[q.getColumn(0).getInt64()] = {q.getColumn(7).getInt64(),     q.getColumn(1).getString(),
                                       q.getColumn(2).getString(),    q.getColumn(3).getDouble(),
                                       q.getColumn(4).getInt64(),     q.getColumn(5).getInt64(), {}};
  }
  SQLite::Statement m(*db, "SELECT run_id, metric, value FROM run_metrics");
  while (m.executeStep()) runs[m.getColumn(0).getInt64()].metrics[m.getColumn(1).getString()] = m.getColumn(2).getDouble();
  std::vector<StoredRun> out;
  for (auto& [id, r] : runs) out.push_back(r);
  return out;
}

// Checks the stored properties; returns the number of runs with a water-filling bound.
int check_rate_rows(const std::vector<StoredRun>& runs) {
  int with_rwf = 0;
  for (const auto& r : runs) {
    const std::string what = r.stream + " / " + r.codec;
    const double rate = r.bits / double(r.dim);
    if (!r.metrics.count("entropy_bits_per_dim") || !r.metrics.count("gauss_bound_rel_mse")) {
      ADD_FAILURE() << what << ": no entropy or Gaussian bound row";
      continue;
    }
    EXPECT_GT(r.metrics.at("entropy_bits_per_dim"), 0.0) << what;
    EXPECT_LE(r.metrics.at("entropy_bits_per_dim"), rate) << what;
    EXPECT_NEAR(r.metrics.at("gauss_bound_rel_mse"), std::exp2(-2 * rate), 1e-12 * std::exp2(-2 * rate)) << what;
    EXPECT_EQ(r.metrics.count("rwf_bound_rel_mse"), r.n >= r.dim ? 1u : 0u) << what << " n = " << r.n;
    // The range-coded rate: for the families with a range coder, above 0 and
    // at most the fixed rate plus the stream's 17-byte prefix (short streams
    // are stored verbatim).
    const bool coded = codec::make_codec(r.codec, r.dim)->has_symbol_columns();
    EXPECT_EQ(r.metrics.count("range_bits_per_dim"), coded ? 1u : 0u) << what;
    if (coded && r.metrics.count("range_bits_per_dim")) {
      EXPECT_GT(r.metrics.at("range_bits_per_dim"), 0.0) << what;
      EXPECT_LE(r.metrics.at("range_bits_per_dim"), rate + 8.0 * 17 / double(r.n * r.dim)) << what << " n = " << r.n;
    }
    if (r.metrics.count("rwf_bound_rel_mse")) {
      ++with_rwf;
      EXPECT_GT(r.metrics.at("rwf_bound_rel_mse"), 0.0) << what;
      EXPECT_LE(r.metrics.at("rwf_bound_rel_mse"), r.metrics.at("gauss_bound_rel_mse")) << what;
    }
  }
  return with_rwf;
}

std::string run_spec(const std::string& dir, const std::string& executor) {
  const std::string spec = dir + "/rates.ini";
  std::ofstream(spec) << "[experiment]\nname = rates\nseqlen = 512\nstream_dtype = bf16\n"
                         "streams = sliding_window_kv csa_pool_kv_ratio4 hca_pool_kv_ratio128\n"
                         "[weights]\nkind = random\nseed = 0\nwrite_path = v4\n[host]\nkind = synthetic\nseed = 1\n"
                         "[passages]\nsynthetic = 0-1\n[codecs]\ncodec = v4_native\ncodec = fp8_per64\n"
                         "codec = int:bits=4,block=64,scale=ue8m0\ncodec = hadamard_lloyd:bits=2\ne8.q = 3 10\n"
                         "[report]\ncodec = e8:q=10\nbaseline = v4_native\n";
  const std::string db = dir + "/" + executor + ".db";
  {
    auto h = store::open_database(db, store::OpenMode::kCreate);
    store::queue_experiment(*h, load_spec(spec).plan());
  }
  WorkerOptions o;
  o.db_path = db;
  o.executor = executor;
  o.executor_factory = [executor] { return make_executor(executor); };
  o.max_attempts = 1;
  o.progress = WorkerOptions::Progress::kNone;
  run_workers(o);
  return db;
}

TEST(ExperimentRates, RealSweepStoresTheRateRowsOfEveryRun) {
  const std::string dir = testutil::make_temp_dir("kvlab-rates-run");
  const auto runs = stored_runs(run_spec(dir, "torch"));
  ASSERT_EQ(runs.size(), 2u * 3u * 6u);
  // seqlen 512: the window stream has 512 = D vectors (bound stored), the pools 128 and 4 (not).
  EXPECT_EQ(check_rate_rows(runs), 2 * 6);
  // One spectrum per (passage, stream): the bound falls strictly with the
  // rate, and a real stream's spectrum is not white (strictly below 2^-2R).
  std::map<int64_t, std::map<double, double>> rwf_by_bits;
  for (const auto& r : runs)
    if (r.metrics.count("rwf_bound_rel_mse")) {
      rwf_by_bits[r.passage][r.bits] = r.metrics.at("rwf_bound_rel_mse");
      EXPECT_LT(r.metrics.at("rwf_bound_rel_mse"), 0.999 * r.metrics.at("gauss_bound_rel_mse")) << r.codec;
    }
  ASSERT_EQ(rwf_by_bits.size(), 2u);
  for (const auto& [p, curve] : rwf_by_bits) {
    EXPECT_EQ(curve.size(), 6u);
    double prev = 2.0;
    for (const auto& [bits, v] : curve) {
      EXPECT_LT(v, prev) << "passage " << p << " bits " << bits;
      prev = v;
    }
  }
}

TEST(ExperimentRates, StubExecutorStoresPlausibleRateRows) {
  const std::string dir = testutil::make_temp_dir("kvlab-rates-stub");
  const auto runs = stored_runs(run_spec(dir, "stub"));
  ASSERT_EQ(runs.size(), 2u * 3u * 6u);
  EXPECT_EQ(check_rate_rows(runs), 2 * 6);
}

TEST(ExperimentRates, FrontierSpecCoversEveryFamilyOverTheRateGrid) {
  const auto s = load_spec(testutil::source_path("experiments/frontier.ini"));
  EXPECT_EQ(s.weights.value("write_path", ""), "v4");
  EXPECT_EQ(s.report.value("baseline", ""), "v4_native");
  EXPECT_EQ(s.passages.size(), 8u);
  EXPECT_TRUE(s.metrics.value("attention", false));
  EXPECT_GE(s.codecs.size(), 20u);
  EXPECT_LE(s.codecs.size(), 30u);
  std::map<std::string, std::vector<double>> rates;  // family -> bits/dim
  for (const auto& c : s.codecs)
    rates[codec::parse_codec_spec(c.codec).family].push_back(codec::make_codec(c.codec, kD)->bits_per_vector() /
                                                             double(kD));
  for (const auto& f : codec::codec_families()) {
    ASSERT_TRUE(rates.count(f.name)) << f.name << " is not in frontier.ini";
    if (!f.has_q) continue;
    EXPECT_GE(rates[f.name].size(), 4u) << f.name;
    for (double r : rates[f.name]) {
      EXPECT_GE(r, 1.0) << f.name;  // hadamard_lloyd:bits=1 (1.03) is the one point below 1.5
      EXPECT_LE(r, 8.3) << f.name;
    }
  }
  // The grid reaches both ends: some codec below 1.7 bits/dim, some above 7.5.
  double lo = 99, hi = 0;
  for (const auto& [f, v] : rates)
    if (f != "v4_native" && f != "fp8_per64")
      for (double r : v) lo = std::min(lo, r), hi = std::max(hi, r);
  EXPECT_LT(lo, 1.7);
  EXPECT_GT(hi, 7.5);
}

}  // namespace
}  // namespace kvlab::experiment
