// [metrics] attention = on in the executors: the torch executor stores
// logit_rel_mse, kl_mean, kl_p99 and attn_out_rel for every run (V4
// attention probes over the passage's streams, real numbers on a small
// synthetic experiment), an exact codec gives 0, a coarser codec moves the
// attention more than a finer one; off stores none. The stub executor
// stores deterministic hashed values when on, none when off.
#include <cmath>
#include <map>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include "common/error.h"
#include "experiment/attention_settings.h"
#include "experiment/spec.h"
#include "experiment/worker.h"
#include "store/db.h"
#include "store/runs.h"
#include "testutil/testutil.h"

namespace kvlab::experiment {
namespace {

// v4 write path with FP8 simulation: v4_native re-encodes the streams
// exactly (rel-MSE 0).
std::string spec_text(const std::string& metrics) {
  return "[experiment]\nname = att\nseqlen = 256\n"
         "streams = sliding_window_kv csa_pool_kv_ratio4 hca_pool_kv_ratio128\n"
         "[weights]\nkind = random\nseed = 1\nwrite_path = v4\nsimulate_fp8 = true\n"
         "[host]\nkind = synthetic\nseed = 3\n[passages]\nsynthetic = 0-1\n"
         "[codecs]\ncodec = v4_native\nint.bits = 4 8\n" +
         metrics;
}

using Key = std::tuple<int, std::string, std::string>;  // passage, stream, codec
struct RunRow {
  double rel_mse = 0;
  std::map<std::string, double> metrics;
};

std::map<Key, RunRow> run_and_read(const std::string& text, const std::string& name, const std::string& executor) {
  const std::string dir = testutil::make_temp_dir("exp_attention_" + name);
  const std::string db_path = dir + "/a.db";
  const auto spec = parse_spec(text, dir + "/a.ini");
  {
    auto db = store::open_database(db_path, store::OpenMode::kCreate);
    store::queue_experiment(*db, spec.plan());
  }
  WorkerOptions opt;
  opt.db_path = db_path;
  opt.executor = executor;
  opt.executor_factory = [executor] { return make_executor(executor); };
  opt.max_attempts = 1;
  opt.progress = WorkerOptions::Progress::kNone;
  run_workers(opt);
  auto db = store::open_database(db_path, store::OpenMode::kReadOnly);
  EXPECT_EQ(db->execAndGet("SELECT count(*) FROM runs WHERE status != 'done'").getInt(), 0);
  std::map<Key, RunRow> out;
  SQLite::Statement st(*db,
                       "SELECT r.id, p.idx, r.stream, r.codec, res.rel_mse FROM runs r JOIN results res ON res.run_id = "
                       "r.id JOIN passages p ON p.id = r.passage_id");
  std::map<std::int64_t, Key> ids;
  while (st.executeStep()) {
    const Key k{st.getColumn(1).getInt(), st.getColumn(2).getString(), st.getColumn(3).getString()};
    ids[st.getColumn(0).getInt64()] = k;
    out[k].rel_mse = st.getColumn(4).getDouble();
  }
  SQLite::Statement m(*db, "SELECT run_id, metric, value FROM run_metrics");
  while (m.executeStep()) out[ids.at(m.getColumn(0).getInt64())].metrics[m.getColumn(1).getString()] =
      m.getColumn(2).getDouble();
  return out;
}

bool has_attention(const RunRow& r) {
  for (const auto& n : attention_metric_names())
    if (r.metrics.count(n)) return true;
  return false;
}

TEST(ExperimentAttention, TorchExecutorStoresTheFourMetricsPerRun) {
  const auto rows = run_and_read(spec_text("[metrics]\nattention = on\nattention_queries = 24\n"), "on", "torch");
  ASSERT_EQ(rows.size(), 2u * 3u * 3u);
  for (const auto& [k, r] : rows) {
    const auto& [p, stream, codec] = k;
    const std::string what = std::to_string(p) + " " + stream + " " + codec;
    for (const auto& n : attention_metric_names()) {
      ASSERT_TRUE(r.metrics.count(n)) << what << " " << n;
      EXPECT_TRUE(std::isfinite(r.metrics.at(n))) << what << " " << n;
    }
    if (codec == "v4_native") {
      // Exact re-encoding: the decoded stream is the reference, bit for bit.
      EXPECT_EQ(r.rel_mse, 0.0) << what;
      for (const auto& n : attention_metric_names()) EXPECT_EQ(r.metrics.at(n), 0.0) << what << " " << n;
    } else {
      for (const auto& n : attention_metric_names()) EXPECT_GT(r.metrics.at(n), 0.0) << what << " " << n;
      EXPECT_GE(r.metrics.at("kl_p99"), r.metrics.at("kl_mean")) << what;
    }
  }
  for (int p : {0, 1})
    for (const char* s : {"sliding_window_kv", "csa_pool_kv_ratio4", "hca_pool_kv_ratio128"}) {
      const RunRow& coarse = rows.at({p, s, "int:bits=4,block=64,scale=fp16"});
      const RunRow& fine = rows.at({p, s, "int:bits=8,block=64,scale=fp16"});
      for (const auto& n : attention_metric_names())
        EXPECT_GT(coarse.metrics.at(n), 4.0 * fine.metrics.at(n)) << p << " " << s << " " << n;
    }
}

TEST(ExperimentAttention, OffOrAbsentStoresNone) {
  for (const char* m : {"[metrics]\nattention = off\n", ""}) {
    const auto rows = run_and_read(spec_text(m), "off", "torch");
    ASSERT_EQ(rows.size(), 18u);
    for (const auto& [k, r] : rows) EXPECT_FALSE(has_attention(r)) << std::get<1>(k) << " " << std::get<2>(k);
  }
}

TEST(ExperimentAttention, StubExecutorHashesPlausibleValuesWhenOn) {
  const auto a = run_and_read(spec_text("[metrics]\nattention = on\n"), "stub_a", "stub");
  const auto b = run_and_read(spec_text("[metrics]\nattention = on\n"), "stub_b", "stub");
  ASSERT_EQ(a.size(), 18u);
  for (const auto& [k, r] : a) {
    for (const auto& n : attention_metric_names()) {
      ASSERT_TRUE(r.metrics.count(n)) << n;
      EXPECT_GT(r.metrics.at(n), 0.0) << n;
      EXPECT_EQ(r.metrics.at(n), b.at(k).metrics.at(n)) << n;  // rerun: the same values
    }
    EXPECT_GT(r.metrics.at("kl_p99"), r.metrics.at("kl_mean"));
  }
  // Coarser codec (larger rel-MSE): larger attention error.
  EXPECT_GT(a.at({0, "sliding_window_kv", "int:bits=4,block=64,scale=fp16"}).metrics.at("attn_out_rel"),
            a.at({0, "sliding_window_kv", "int:bits=8,block=64,scale=fp16"}).metrics.at("attn_out_rel"));
  for (const auto& [k, r] : run_and_read(spec_text("[metrics]\nattention = off\n"), "stub_off", "stub"))
    EXPECT_FALSE(has_attention(r)) << std::get<1>(k);
}

TEST(ExperimentAttention, SettingsFromParams) {
  EXPECT_FALSE(AttentionSettings::from_params(nlohmann::json::object()).on);
  const auto s = AttentionSettings::from_params(
      {{"metrics", {{"attention", true}, {"attention_queries", 12}, {"attention_seed", 5}}}});
  EXPECT_TRUE(s.on);
  EXPECT_EQ(s.queries, 12);
  EXPECT_EQ(s.seed, 5u);
  EXPECT_THROW(AttentionSettings::from_params({{"metrics", {{"attention", "on"}}}}), Error);
  EXPECT_THROW(AttentionSettings::from_params({{"metrics", {{"attention_queries", 0}}}}), Error);
  EXPECT_THROW(AttentionSettings::from_params({{"metrics", {{"attention_seed", -1}}}}), Error);
}

}  // namespace
}  // namespace kvlab::experiment
