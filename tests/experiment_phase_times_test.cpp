// The phase timers of `kvlab run` (experiment/phase_times.h): off unless
// enabled, scopes add one call each with wall and CPU seconds, the table
// names every (experiment, phase) with its calls, a total per experiment
// that leaves background phases out, and one line per phase.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "experiment/phase_times.h"

namespace pt = kvlab::experiment::phase_times;

namespace {

// Burns about `s` seconds of CPU on this thread.
void spin(double s) {
  const auto t0 = std::chrono::steady_clock::now();
  volatile double x = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < s) x = x + 1;
}

}  // namespace

TEST(PhaseTimes, OffRecordsNothingOnRecordsScopesAndTotals) {
  pt::reset();
  pt::set_enabled(false);
  const std::string e = "exp_a";
  { pt::Scope s(e, "never"); }
  EXPECT_EQ(pt::summary().find("never"), std::string::npos);

  pt::set_enabled(true);
  for (int i = 0; i < 3; ++i) {
    pt::Scope s(e, "busy");
    spin(0.02);
  }
  pt::add(e, "other (bg)", 5.0, 5.0);
  pt::add("exp_b", "busy", 1.0, 0.5);
  const std::string t = pt::summary();
  pt::set_enabled(false);
  pt::reset();
  // Three calls of "busy" under exp_a, with at least 0.06 s wall and some CPU.
  const auto row = t.find("exp_a              busy");
  ASSERT_NE(row, std::string::npos) << t;
  const std::string line = t.substr(row, t.find('\n', row) - row);
  double wall = 0, cpu = 0, share = 0;
  long calls = 0;
  ASSERT_EQ(std::sscanf(line.c_str() + 41, "%ld %lf %lf %lf", &calls, &wall, &cpu, &share), 4) << line;
  EXPECT_EQ(calls, 3);
  EXPECT_GE(wall, 0.06);
  EXPECT_GT(cpu, 0.0);
  // The background phase is listed but not in exp_a's total: busy is 100 %.
  EXPECT_NEAR(share, 100.0, 0.05) << t;
  EXPECT_NE(t.find("other (bg)"), std::string::npos);
  EXPECT_NE(t.find("exp_b              (total)"), std::string::npos) << t;
  EXPECT_NE(t.find("(all)              busy"), std::string::npos) << t;
}
