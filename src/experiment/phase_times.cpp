// Phase timers of `kvlab run`; see phase_times.h.
#include "experiment/phase_times.h"

#include <time.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include <fmt/format.h>

namespace kvlab::experiment::phase_times {

namespace {

struct Cell {
  long calls = 0;
  double seconds = 0, cpu = 0;
};

std::mutex g_mu;
std::map<std::pair<std::string, std::string>, Cell> g_cells;

std::atomic<int>& state() {  // -1: not read yet, 0 off, 1 on
  static std::atomic<int> s{-1};
  return s;
}

}  // namespace

bool enabled() {
  int s = state().load(std::memory_order_relaxed);
  if (s < 0) {
    const char* v = std::getenv("KVLAB_PHASE_TIMES");
    s = v && *v && std::string(v) != "0" ? 1 : 0;
    state().store(s, std::memory_order_relaxed);
  }
  return s == 1;
}

void set_enabled(bool on) { state().store(on ? 1 : 0, std::memory_order_relaxed); }

void add(const std::string& experiment, const std::string& phase, double seconds, double cpu_seconds) {
  std::lock_guard<std::mutex> lock(g_mu);
  Cell& c = g_cells[{experiment, phase}];
  ++c.calls;
  c.seconds += seconds;
  c.cpu += cpu_seconds;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void reset() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_cells.clear();
}

std::string summary() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::map<std::string, Cell> per_experiment, per_phase;
  for (const auto& [k, c] : g_cells) {
    if (k.second.find("(bg)") == std::string::npos) {
      per_experiment[k.first].seconds += c.seconds;
      per_experiment[k.first].cpu += c.cpu;
    }
    Cell& p = per_phase[k.second];
    p.calls += c.calls;
    p.seconds += c.seconds;
    p.cpu += c.cpu;
  }
  auto line = [](const std::string& e, const std::string& p, const Cell& c, const Cell& tot) {
    return fmt::format("{:<18} {:<22} {:>7} {:>9.3f} {:>9.3f} {:>6.1f}%\n", e, p, c.calls, c.seconds, c.cpu,
                       tot.cpu > 0 ? 100 * c.cpu / tot.cpu : 0.0);
  };
  std::string out = fmt::format("{:<18} {:<22} {:>7} {:>9} {:>9} {:>7}\n", "experiment", "phase", "calls", "wall s",
                                "CPU s", "share");
  for (const auto& [k, c] : g_cells) out += line(k.first, k.second, c, per_experiment[k.first]);
  Cell all;
  for (const auto& [e, c] : per_experiment) {
    out += line(e, "(total)", c, c);
    all.seconds += c.seconds;
    all.cpu += c.cpu;
  }
  for (const auto& [p, c] : per_phase) out += line("(all)", p, c, all);
  return out;
}

}  // namespace kvlab::experiment::phase_times
