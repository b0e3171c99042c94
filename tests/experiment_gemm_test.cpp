// The [weights] gemm setting: parsed into params_json only when given, bad
// values refused with file:line, the value and the accepted ones; and the
// GEMM path that ran recorded in every run's provenance (real torch
// executor on a small synthetic experiment).
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include "common/error.h"
#include "experiment/spec.h"
#include "experiment/worker.h"
#include "model/gemm.h"
#include "store/db.h"
#include "store/runs.h"
#include "testutil/testutil.h"

namespace kvlab::experiment {
namespace {

std::string spec_text(const std::string& weights_extra, const std::string& host_extra = "") {
  return "[experiment]\nname = g\nseqlen = 256\nstreams = sliding_window_kv hca_pool_kv_ratio128\n"
         "[weights]\nkind = random\nseed = 1\n" +
         weights_extra + "[host]\nkind = synthetic\nseed = 3\n" + host_extra +
         "[passages]\nsynthetic = 0-1\n[codecs]\ncodec = fp8_per64\n";
}

std::string error_of_parse(const std::string& text) {
  try {
    parse_spec(text, "g.ini");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ExperimentGemm, SettingParsedOnlyWhenGivenAndBadValuesRefused) {
  EXPECT_FALSE(parse_spec(spec_text(""), "g.ini").params()["weights"].contains("gemm"));
  for (const char* v : {"auto", "fp32", "bf16"})
    EXPECT_EQ(parse_spec(spec_text(std::string("gemm = ") + v + "\n"), "g.ini").params()["weights"]["gemm"], v);
  const std::string msg = error_of_parse(spec_text("gemm = amx\n"));
  EXPECT_NE(msg.find("g.ini:8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gemm 'amx'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected auto, fp32 or bf16"), std::string::npos) << msg;
}

// Runs the spec text into a fresh database; returns the distinct gemm values
// of the provenance rows the results point to.
std::vector<std::string> run_and_read_gemm(const std::string& text, const std::string& name) {
  const std::string dir = testutil::make_temp_dir("exp_gemm_" + name);
  const std::string db_path = dir + "/g.db";
  const auto spec = parse_spec(text, dir + "/g.ini");
  {
    auto db = store::open_database(db_path, store::OpenMode::kCreate);
    store::queue_experiment(*db, spec.plan());
  }
  WorkerOptions opt;
  opt.db_path = db_path;
  opt.executor = "torch";
  opt.executor_factory = [] { return make_executor("torch"); };
  opt.max_attempts = 1;
  opt.progress = WorkerOptions::Progress::kNone;
  run_workers(opt);
  auto db = store::open_database(db_path, store::OpenMode::kReadOnly);
  EXPECT_EQ(db->execAndGet("SELECT count(*) FROM runs WHERE status = 'done'").getInt(), 4);
  EXPECT_EQ(db->execAndGet("SELECT count(*) FROM results WHERE provenance_id IS NULL").getInt(), 0);
  std::vector<std::string> out;
  SQLite::Statement st(*db,
                       "SELECT DISTINCT coalesce(p.gemm, 'NULL') FROM results r JOIN provenance p ON p.id = "
                       "r.provenance_id ORDER BY 1");
  while (st.executeStep()) out.push_back(st.getColumn(0).getString());
  return out;
}

TEST(ExperimentGemm, ProvenanceRecordsTheGemmThatRan) {
  const bool fast = model::bf16_gemm_support().fast;
  // Embedded default (bf16 host, bf16-exact random weights), auto.
  auto g = run_and_read_gemm(spec_text(""), "auto");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].rfind(fast ? "bf16 (oneDNN " : "fp32 (at::mm)", 0), 0u) << g[0];
  // Forced fp32.
  g = run_and_read_gemm(spec_text("gemm = fp32\n"), "fp32");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0], "fp32 (at::mm)");
}

}  // namespace
}  // namespace kvlab::experiment
