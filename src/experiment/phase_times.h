// Wall-clock and CPU time per (experiment, phase) of `kvlab run`, for finding where
// the run time goes: set KVLAB_PHASE_TIMES=1 and run_workers() prints the
// table to stderr when it returns (worker.cpp). Off (the default), a timer
// costs one relaxed atomic load.
//
// Phases are timed on the thread that does the work, in wall seconds and in
// process CPU seconds (all threads: LibTorch's intra-op pool works for the
// caller; on a loaded machine the CPU seconds are the steadier figure). Work
// on a background thread (the second stream of a passage, the hidden states)
// overlaps the foreground phases: those are marked (bg), left out of the
// shares, and the CPU seconds of a phase then include the overlapping work.
// Not here: the per-run wall_s stored with each result (worker.cpp).
#pragma once

#include <chrono>
#include <string>

namespace kvlab::experiment::phase_times {

// KVLAB_PHASE_TIMES set and not "0" (read once), or forced by set_enabled.
bool enabled();
void set_enabled(bool on);
// Adds one call of `seconds` wall and `cpu_seconds` process CPU to (experiment, phase).
void add(const std::string& experiment, const std::string& phase, double seconds, double cpu_seconds = 0);
// Process CPU seconds so far (all threads).
double process_cpu_seconds();
// The table: one line per (experiment, phase) with calls, wall and CPU
// seconds and share of that experiment's foreground CPU total, a total per
// experiment and one per phase over all experiments.
std::string summary();
void reset();

// Times its scope into (experiment, phase) when enabled.
class Scope {
 public:
  Scope(const std::string& experiment, const char* phase)
      : on_(enabled()), experiment_(on_ ? &experiment : nullptr), phase_(phase) {
    if (on_) {
      t0_ = std::chrono::steady_clock::now();
      c0_ = process_cpu_seconds();
    }
  }
  ~Scope() {
    if (on_)
      add(*experiment_, phase_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(),
          process_cpu_seconds() - c0_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool on_;
  const std::string* experiment_;
  const char* phase_;
  std::chrono::steady_clock::time_point t0_;
  double c0_ = 0;
};

}  // namespace kvlab::experiment::phase_times
