// Worker threads, the heartbeat thread and progress reporting (see worker.h).
#include "experiment/worker.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>

#include "common/error.h"
#include "experiment/executor.h"
#include "experiment/phase_times.h"
#include "experiment/provenance.h"
#include "store/db.h"
#include "store/runs.h"

namespace kvlab::experiment {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ------------------------------------------------------------ fault injection

std::mutex g_fault_mu;
FaultInjection g_faults;
std::mt19937_64 g_fault_rng;

void maybe_die(double p, const char* point) {
  if (p <= 0) return;
  std::lock_guard<std::mutex> lock(g_fault_mu);
  if (std::uniform_real_distribution<double>(0, 1)(g_fault_rng) < p) {
    std::fprintf(stderr, "kvlab run: fault injection: SIGKILL at %s (pid %d)\n", point, static_cast<int>(getpid()));
    std::fflush(stderr);
    raise(SIGKILL);
  }
}

void commit_fault_hook() { maybe_die(g_faults.p_commit, "commit"); }

// --------------------------------------------------------------- heartbeats

// One thread refreshes the heartbeat of every claim this process holds.
class Heartbeats {
 public:
  Heartbeats(const std::string& db_path, double period_s) : period_s_(period_s) {
    db_ = store::open_database(db_path, store::OpenMode::kReadWrite);
    thread_ = std::thread([this] { loop(); });
  }
  ~Heartbeats() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // The flag is shared: a heartbeat in flight may finish (and find the
  // claim gone) after the worker has removed the token and left
  // process_claim, so it must not point into the worker's stack.
  void add(const std::string& token, std::shared_ptr<std::atomic<bool>> lost) {
    std::lock_guard<std::mutex> lock(mu_);
    tokens_[token] = std::move(lost);
  }
  void remove(const std::string& token) {
    std::lock_guard<std::mutex> lock(mu_);
    tokens_.erase(token);
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!quit_) {
      cv_.wait_for(lock, std::chrono::duration<double>(period_s_), [this] { return quit_; });
      if (quit_) break;
      auto snapshot = tokens_;
      lock.unlock();
      for (const auto& [token, lost] : snapshot) {
        try {
          if (store::heartbeat(*db_, token) == 0) lost->store(true);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "kvlab run: heartbeat failed: %s\n", e.what());
        }
      }
      lock.lock();
    }
  }

  double period_s_;
  std::unique_ptr<SQLite::Database> db_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> tokens_;
  bool quit_ = false;
  std::thread thread_;
};

// ------------------------------------------------------------------ worker

struct Shared {
  const WorkerOptions* opt = nullptr;
  const std::atomic<bool>* stop = nullptr;
  std::optional<std::int64_t> experiment_id;
  Heartbeats* heartbeats = nullptr;
  std::mutex mu;
  WorkerStats stats;
  std::string first_error;  // a worker thread that died
};

bool stopping(const Shared& sh) { return sh.stop && sh.stop->load(); }

std::string describe(const std::exception& e) {
  std::string s = e.what();
  return s.empty() ? "unknown error" : s;
}

void process_claim(Shared& sh, SQLite::Database& db, Executor& exec, const store::Claim& claim,
                   std::map<std::string, std::int64_t>& provenance_ids, WorkerStats& st) {
  const WorkerOptions& opt = *sh.opt;
  const auto lost_flag = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool>& lost = *lost_flag;
  sh.heartbeats->add(claim.token, lost_flag);
  struct Unregister {
    Heartbeats* h;
    const std::string& t;
    ~Unregister() { h->remove(t); }
  } unregister{sh.heartbeats, claim.token};

  maybe_die(opt.faults.p_claim, "claim");
  PassageJob job;
  std::unique_ptr<PassageSession> session;
  try {
    job = PassageJob::from_claim(claim);
    const auto before = exec.passages_opened();
    session = exec.open_passage(job);
    st.passages_opened += exec.passages_opened() - before;
  } catch (const std::exception& e) {
    const std::string msg = fmt::format("generating the streams of passage '{}' failed: {}", claim.passage_name, describe(e));
    for (const auto& r : claim.runs)
      if (store::fail_run(db, claim.token, r.run_id, msg) == store::CommitOutcome::kCommitted) ++st.runs_failed;
    return;
  }
  // Per passage: what ran may differ between passages (e.g. the GEMM path).
  std::int64_t prov_id = 0;
  {
    phase_times::Scope t(claim.experiment_name, "provenance");
    store::Provenance p = current_provenance();
    exec.fill_provenance(p, job.params);
    const std::string fp = p.fingerprint();
    if (auto it = provenance_ids.find(fp); it != provenance_ids.end()) {
      prov_id = it->second;
    } else {
      prov_id = store::upsert_provenance(db, p);
      provenance_ids[fp] = prov_id;
    }
  }
  std::set<std::string> audited;
  for (const auto& run : claim.runs) {
    if (stopping(sh) || lost) break;
    store::RunResult m;
    std::optional<store::AuditRow> audit;
    try {
      const auto t0 = Clock::now();
      m = session->measure(run.stream, run.codec);
      m.wall_s = seconds_since(t0);
      if (!audited.count(run.stream)) audit = session->audit(run.stream);
    } catch (const std::exception& e) {
      if (store::fail_run(db, claim.token, run.run_id, fmt::format("{} on {}: {}", run.codec, run.stream, describe(e))) ==
          store::CommitOutcome::kCommitted)
        ++st.runs_failed;
      continue;
    }
    if (stopping(sh)) break;  // the in-flight run is requeued below
    maybe_die(opt.faults.p_run, "run");
    const auto outcome = [&] {
      phase_times::Scope t(claim.experiment_name, "db commit");
      return store::commit_result(db, claim, run, m, prov_id, audit ? &*audit : nullptr,
                                  opt.faults.p_commit > 0 ? &commit_fault_hook : nullptr);
    }();
    if (outcome == store::CommitOutcome::kRejected) {
      ++st.runs_rejected;
      lost = true;
      std::fprintf(stderr, "kvlab run: %s: result of run %lld rejected (claim reclaimed after the %.1f s grace period)\n",
                   claim.worker.c_str(), static_cast<long long>(run.run_id), opt.grace_s);
      break;
    }
    ++st.runs_done;
    if (audit) audited.insert(run.stream);
  }
  // Whatever is still held under this claim (stop requested) goes back.
  if (!lost) st.runs_released += store::release_claim(db, claim.token);
}

void worker_thread(Shared& sh, int index) {
  const WorkerOptions& opt = *sh.opt;
  WorkerStats st;
  try {
    auto db = store::open_database(opt.db_path, store::OpenMode::kReadWrite);
    auto exec = opt.executor_factory();
    store::ClaimOptions co;
    co.worker = process_worker_id() + (opt.threads > 1 ? fmt::format("#{}", index) : "");
    co.grace_s = opt.grace_s;
    co.max_attempts = opt.max_attempts;
    co.experiment_id = sh.experiment_id;
    std::map<std::string, std::int64_t> provenance_ids;  // by fingerprint
    const double poll_s = std::clamp(opt.grace_s / 10, 0.01, 0.5);
    auto idle_since = Clock::now();
    while (!stopping(sh)) {
      const auto t_claim = Clock::now();
      auto claim = store::claim_next(*db, co);
      if (phase_times::enabled())
        phase_times::add(claim ? claim->experiment_name : std::string("(none)"), "db claim", seconds_since(t_claim));
      if (claim) {
        ++st.claims;
        process_claim(sh, *db, *exec, *claim, provenance_ids, st);
        idle_since = Clock::now();
        continue;
      }
      const auto o = store::outstanding(*db, opt.max_attempts, sh.experiment_id);
      if (o.claimable > 0) continue;  // lost a race for it; try again
      if (o.running == 0 && seconds_since(idle_since) >= opt.idle_exit_s) break;
      // Other workers hold runs: wait; they finish or are reclaimed after the grace period.
      std::this_thread::sleep_for(std::chrono::duration<double>(poll_s));
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(sh.mu);
    if (sh.first_error.empty()) sh.first_error = describe(e);
  }
  std::lock_guard<std::mutex> lock(sh.mu);
  sh.stats.claims += st.claims;
  sh.stats.passages_opened += st.passages_opened;
  sh.stats.runs_done += st.runs_done;
  sh.stats.runs_failed += st.runs_failed;
  sh.stats.runs_rejected += st.runs_rejected;
  sh.stats.runs_released += st.runs_released;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = static_cast<long>(s + 0.5);
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}h{:02}m", t / 3600, (t / 60) % 60);
}

}  // namespace

FaultInjection FaultInjection::parse(const std::string& s) {
  FaultInjection f;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    KVLAB_CHECK(eq != std::string::npos, "fault injection item '{}' is not key=value", item);
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    try {
      if (k == "seed") {
        f.seed = std::stoull(v);
        continue;
      }
      const double p = std::stod(v);
      KVLAB_CHECK(p >= 0 && p <= 1, "fault probability {}={} is outside [0, 1]", k, v);
      if (k == "claim") f.p_claim = p;
      else if (k == "run") f.p_run = p;
      else if (k == "commit") f.p_commit = p;
      else throw Error(fmt::format("unknown fault point '{}'; expected claim, run, commit or seed", k));
    } catch (const std::invalid_argument&) {
      throw Error(fmt::format("fault injection value '{}' of '{}' is not a number", v, k));
    }
  }
  return f;
}

std::string process_worker_id() {
  const auto p = current_provenance();
  return fmt::format("{}:{}", p.hostname.value_or("?"), static_cast<int>(getpid()));
}

WorkerStats run_workers(const WorkerOptions& opt, const std::atomic<bool>* stop) {
  KVLAB_CHECK(opt.threads >= 1 && opt.threads <= 256, "--workers {}: expected 1 .. 256", opt.threads);
  KVLAB_CHECK(opt.grace_s > 0, "--grace {}: expected a positive number of seconds", opt.grace_s);
  KVLAB_CHECK(opt.max_attempts >= 1, "--max-attempts {}: expected >= 1", opt.max_attempts);
  KVLAB_CHECK(opt.idle_exit_s >= 0, "--idle-exit {}: expected >= 0 seconds", opt.idle_exit_s);
  const double hb = opt.heartbeat_s > 0 ? opt.heartbeat_s : opt.grace_s / 5;
  KVLAB_CHECK(hb < opt.grace_s, "heartbeat period {} s must be shorter than the grace period {} s", hb, opt.grace_s);
  KVLAB_CHECK(opt.executor_factory, "no executor factory given for executor '{}'", opt.executor);
  // Build one up front so a bad executor spec fails before anything starts.
  opt.executor_factory();
  if (opt.faults.any()) {
    std::lock_guard<std::mutex> lock(g_fault_mu);
    g_faults = opt.faults;
    g_fault_rng.seed(opt.faults.seed ^ (static_cast<std::uint64_t>(getpid()) * 0x9E3779B97F4A7C15ULL));
  }

  auto db = store::open_database(opt.db_path, store::OpenMode::kReadWrite);  // migrates once
  Shared sh;
  sh.opt = &opt;
  sh.stop = stop;
  if (opt.experiment) {
    sh.experiment_id = store::find_experiment(*db, *opt.experiment);
    KVLAB_CHECK(sh.experiment_id, "no experiment named '{}' in {}", *opt.experiment, opt.db_path);
  }
  auto progress = opt.progress;
  if (progress == WorkerOptions::Progress::kAuto)
    progress = isatty(fileno(stderr)) ? WorkerOptions::Progress::kTty : WorkerOptions::Progress::kLog;

  auto counts = [&] {
    store::StatusRow sum;
    for (const auto& r : store::status_counts(*db)) {
      if (sh.experiment_id && r.experiment_id != *sh.experiment_id) continue;
      sum.queued += r.queued;
      sum.running += r.running;
      sum.done += r.done;
      sum.failed += r.failed;
    }
    return sum;
  };
  const auto t0 = Clock::now();
  const auto start = counts();
  Heartbeats heartbeats(opt.db_path, hb);
  sh.heartbeats = &heartbeats;
  std::vector<std::thread> threads;
  std::atomic<int> running_threads{opt.threads};
  for (int i = 0; i < opt.threads; ++i)
    threads.emplace_back([&sh, &running_threads, i] {
      worker_thread(sh, i);
      --running_threads;
    });

  auto report = [&](bool final) {
    const auto c = counts();
    const double el = seconds_since(t0);
    const double rate = el > 0 ? double(c.done - start.done) / el : 0;
    const double eta = rate > 0 ? double(c.queued + c.running) / rate : -1;
    const std::string line = fmt::format("{}/{} runs done, {} failed, {} running, {:.1f} runs/s, {} {}", c.done,
                                         c.total(), c.failed, c.running, rate, final ? "elapsed" : "ETA",
                                         format_duration(final ? el : eta));
    if (progress == WorkerOptions::Progress::kTty) {
      std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
    } else if (progress == WorkerOptions::Progress::kLog) {
      std::fprintf(stderr, "kvlab run: %s\n", line.c_str());
    }
    std::fflush(stderr);
  };
  auto last_report = Clock::now();
  const double report_every = progress == WorkerOptions::Progress::kTty ? 0.25 : 30.0;
  while (running_threads.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (progress != WorkerOptions::Progress::kNone && seconds_since(last_report) >= report_every) {
      try {
        report(false);
      } catch (const std::exception&) {
        // Progress is best effort; a busy database must not stop the workers.
      }
      last_report = Clock::now();
    }
  }
  for (auto& t : threads) t.join();
  sh.stats.seconds = seconds_since(t0);
  sh.stats.interrupted = stopping(sh);
  if (progress != WorkerOptions::Progress::kNone) report(true);
  if (phase_times::enabled()) {
    std::fprintf(stderr, "kvlab run: phase times (KVLAB_PHASE_TIMES; wall and process CPU seconds; (bg) = on a "
                 "background thread, overlapping the others), %.3f s in all:\n%s", sh.stats.seconds, phase_times::summary().c_str());
  }
  if (!sh.first_error.empty()) throw Error(fmt::format("a worker stopped: {}", sh.first_error));
  return sh.stats;
}

}  // namespace kvlab::experiment
