// `kvlab queue`, `kvlab run`, `kvlab status`, `kvlab golden update` and
// `kvlab bench store`: the command-line face of the sweep specs
// (experiment/spec.h), the run queue (store/runs.h) and the workers
// (experiment/worker.h).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/options.h"
#include "common/error.h"
#include "experiment/executor.h"
#include "experiment/golden.h"
#include "experiment/sequential.h"
#include "experiment/spec.h"
#include "experiment/store_bench.h"
#include "experiment/worker.h"
#include "kvlab_version.h"
#include "model/blas.h"
#include "report/console.h"
#include "report/stats_json.h"
#include "stats/best.h"
#include "store/db.h"
#include "store/runs.h"


namespace kvlab::cli {
namespace {

// ------------------------------------------------------------------- queue

int cmd_queue(const std::vector<std::string>& args) {
  po::options_description desc("options");
  std::string spec_path, db_path;
  desc.add_options()("spec", po::value(&spec_path)->required(), "sweep spec file (experiments/*.ini)")(
      "db", po::value(&db_path)->required(), "result database (created when missing)")(
      "replicate", po::bool_switch(), "queue every run again as a new replicate")(
      "dry-run", po::bool_switch(), "validate and print the plan, queue nothing")(
      "passages", po::value<int>(), "queue only the first N passages of the spec (`kvlab run --until-resolved` "
      "adds the others one at a time)");
  po::positional_options_description pos;
  pos.add("spec", 1);
  po::variables_map vm;
  if (!parse(args, desc, "kvlab queue SPEC --db FILE [--replicate] [--dry-run] [--passages N]", &pos, &vm)) return 0;
  const auto spec = experiment::load_spec(spec_path);
  const auto plan = vm.count("passages") ? experiment::plan_first_passages(spec, vm["passages"].as<int>()) : spec.plan();
  fmt::print("{}: experiment '{}': {} passages{} x {} streams x {} codecs = {} runs\n", spec_path, spec.name,
             plan.passages.size(),
             plan.passages.size() < spec.passages.size() ? fmt::format(" (of {})", spec.passages.size()) : "",
             spec.streams.size(), spec.codecs.size(), plan.passages.size() * spec.streams.size() * spec.codecs.size());
  if (vm["dry-run"].as<bool>()) return 0;
  auto db = store::open_database(db_path, store::OpenMode::kCreate);
  const auto out = store::queue_experiment(*db, plan, vm["replicate"].as<bool>());
  fmt::print("{} experiment '{}' (id {}), replicate {}: {} runs added, {} already queued\n",
             out.experiment_created ? "created" : "found", spec.name, out.experiment_id, out.replicate, out.runs_added,
             out.runs_existing);
  return 0;
}

// --------------------------------------------------------------------- run

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) {
  if (g_stop.exchange(true)) _exit(130);  // second Ctrl-C: leave now
  const char msg[] = "\nkvlab run: stopping after the current run (Ctrl-C again to abort)\n";
  [[maybe_unused]] auto n = write(STDERR_FILENO, msg, sizeof msg - 1);
}

// `kvlab run --until-resolved`: the sequential sweep (experiment/sequential.h).
struct SequentialArgs {
  bool until_resolved = false;
  std::string spec;
  int max_passages = 0;
  double alpha = 0.05;
  std::string metric = "rel_mse";
};

void add_sequential_options(po::options_description& d, SequentialArgs& a) {
  d.add_options()("until-resolved", po::bool_switch(&a.until_resolved),
                  "sequential sweep: after the queued runs, add the spec's next passage while any threshold decision "
                  "(codec x stream x A/B/C, Holm-corrected) is unresolved")(
      "spec", po::value(&a.spec), "with --until-resolved: the spec the experiment was queued from")(
      "max-passages", po::value(&a.max_passages)->default_value(0),
      "with --until-resolved: stop at N passages (0: every passage of the spec); fixes the looks n = 2..N, each "
      "tested at alpha / (N - 1)")(
      "alpha", po::value(&a.alpha)->default_value(0.05),
      "with --until-resolved: overall family-wise level, over every decision and every look")(
      "metric", po::value(&a.metric)->default_value("rel_mse"),
      "with --until-resolved: the metric whose ratio to the baseline is decided (rel_mse, attn_out, kl, logit)");
}

int run_sequential(const experiment::WorkerOptions& opt, const SequentialArgs& a) {
  experiment::SequentialOptions so;
  so.worker = opt;
  so.spec_path = a.spec;
  so.max_passages = a.max_passages;
  so.alpha = a.alpha;
  so.metric = stats::resolve_threshold_metric(a.metric);
  so.log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
  const auto out = experiment::run_until_resolved(so, &g_stop);
  if (out.interrupted) {
    fmt::print(stderr, "kvlab run: interrupted; in-flight runs were requeued. Run the same command to resume.\n");
    return 130;
  }
  std::cout << report::decisions_text(out.decisions);
  fmt::print(stderr, "kvlab run --until-resolved: {} after {} passages ({} evaluations, {} runs done, {} failed)\n",
             out.all_resolved ? "every decision resolved" : "cap reached with unresolved decisions", out.passages,
             out.evaluations, out.runs_done, out.runs_failed);
  return out.runs_failed > 0 ? 1 : 0;
}

int cmd_run(const std::vector<std::string>& args) {
  // The torch executor's fp32 GEMMs need OpenBLAS's proper kernel set when it
  // fell back to a generic one (see model/blas.h; a no-op when nothing is to
  // gain).
  {
    std::vector<std::string> argv{"run"};
    argv.insert(argv.end(), args.begin(), args.end());
    model::fix_openblas_core(argv);
  }
  po::options_description desc("options");
  experiment::WorkerOptions opt;
  std::string progress = "auto", faults, experiment_name;
  desc.add_options()("db", po::value(&opt.db_path)->required(), "result database")(
      "workers,j", po::value(&opt.threads)->default_value(1), "worker threads, each with its own connection")(
      "executor", po::value(&opt.executor)->default_value("torch"),
      "torch (the real computation) or stub[:options] (fake numbers, for testing the store)")(
      "experiment", po::value(&experiment_name), "only run this experiment's runs")(
      "grace", po::value(&opt.grace_s)->default_value(300.0),
      "seconds without heartbeat after which another worker reclaims a run")(
      "heartbeat", po::value(&opt.heartbeat_s)->default_value(0.0), "heartbeat period in seconds (0: grace / 5)")(
      "max-attempts", po::value(&opt.max_attempts)->default_value(3), "attempts per run before it stays failed")(
      "idle-exit", po::value(&opt.idle_exit_s)->default_value(0.0),
      "keep waiting this many seconds for new work when the queue is empty")(
      "progress", po::value(&progress)->default_value("auto"), "auto | tty | log | none")(
      "inject-faults", po::value(&faults),
      "testing only: SIGKILL this process at random points, e.g. claim=0.01,run=0.01,commit=0.01,seed=7");
  SequentialArgs seq;
  add_sequential_options(desc, seq);
  po::variables_map vm;
  if (!parse(args, desc, "kvlab run --db FILE [--workers N] [--until-resolved --spec SPEC [--max-passages N]] [options]",
             nullptr, &vm))
    return 0;
  if (seq.until_resolved && seq.spec.empty())
    throw UsageError("--until-resolved needs --spec SPEC: the spec whose passage list it extends");
  if (!seq.until_resolved && (!seq.spec.empty() || !vm["max-passages"].defaulted()))
    throw UsageError("--spec and --max-passages apply only with --until-resolved");
  if (!experiment_name.empty()) opt.experiment = experiment_name;
  if (progress == "auto") opt.progress = experiment::WorkerOptions::Progress::kAuto;
  else if (progress == "tty") opt.progress = experiment::WorkerOptions::Progress::kTty;
  else if (progress == "log") opt.progress = experiment::WorkerOptions::Progress::kLog;
  else if (progress == "none") opt.progress = experiment::WorkerOptions::Progress::kNone;
  else throw UsageError(fmt::format("--progress '{}': expected auto, tty, log or none", progress));
  if (!faults.empty()) opt.faults = experiment::FaultInjection::parse(faults);
  opt.executor_factory = [spec = opt.executor, threads = opt.threads] {
    // LibTorch's intra-op pool is shared by the worker threads: split the cores.
    std::string s = spec;
    if (s == "torch" && threads > 1)
      s += fmt::format(":threads={}", std::max(1u, std::thread::hardware_concurrency() / static_cast<unsigned>(threads)));
    return experiment::make_executor(s);
  };

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  if (seq.until_resolved) return run_sequential(opt, seq);
  const auto st = experiment::run_workers(opt, &g_stop);
  fmt::print(stderr,
             "kvlab run: {} claims, {} stream generations, {} runs done, {} failed, {} late results rejected, "
             "{} requeued, {:.2f} s\n",
             st.claims, st.passages_opened, st.runs_done, st.runs_failed, st.runs_rejected, st.runs_released,
             st.seconds);
  if (st.interrupted) {
    fmt::print(stderr, "kvlab run: interrupted; in-flight runs were requeued. Run the same command to resume.\n");
    return 130;
  }
  // Runs that used up their attempts are an error the user must see.
  auto db = store::open_database(opt.db_path, store::OpenMode::kReadOnly);
  std::int64_t failed = 0;
  for (const auto& r : store::status_counts(*db))
    if (!opt.experiment || r.experiment == *opt.experiment) failed += r.failed;
  if (failed > 0) {
    fmt::print(stderr, "kvlab run: {} runs failed after {} attempts; see `kvlab status --db {}` and `kvlab list --runs "
               "--status failed`\n", failed, opt.max_attempts, opt.db_path);
    return 1;
  }
  return 0;
}

// ------------------------------------------------------------------ status

int cmd_status(const std::vector<std::string>& args) {
  po::options_description desc("options");
  std::string db_path;
  desc.add_options()("db", po::value(&db_path)->required(), "result database")("json", po::bool_switch(),
                                                                                "print a JSON array");
  po::variables_map vm;
  if (!parse(args, desc, "kvlab status --db FILE [--json]", nullptr, &vm)) return 0;
  auto db = store::open_database(db_path, store::OpenMode::kReadOnly);
  const auto rows = store::status_counts(*db);
  if (vm["json"].as<bool>()) {
    std::cout << report::status_json(rows);
    return 0;
  }
  // Rate over the last minute of finished runs, and the ETA it implies.
  constexpr double kWindow = 60;
  std::map<std::int64_t, std::int64_t> recent;
  for (const auto& [id, n] : store::recently_finished(*db, kWindow)) recent[id] = n;
  std::cout << report::status_text(rows, recent, kWindow, db_path);
  return 0;
}

// ------------------------------------------------------------- golden update

int cmd_golden_update(const std::vector<std::string>& args) {
  po::options_description desc("options");
  std::string spec = std::string(KVLAB_SOURCE_DIR) + "/experiments/smoke.ini";
  std::string out = std::string(KVLAB_SOURCE_DIR) + "/tests/golden/smoke.json";
  std::string executor = "torch";
  desc.add_options()("spec", po::value(&spec)->default_value(spec), "spec to run")(
      "out", po::value(&out)->default_value(out), "golden file to write")(
      "executor", po::value(&executor)->default_value(executor), "executor (torch)");
  po::variables_map vm;
  if (!parse(args, desc,
             "kvlab golden update [--spec FILE] [--out FILE]\n"
             "Reruns the spec into a temporary database and rewrites the golden file on purpose.",
             nullptr, &vm))
    return 0;
  const auto golden = experiment::compute_golden(spec, executor);
  experiment::write_golden(golden, out);
  fmt::print("wrote {} ({} runs, {} audits) from {}\n", out, golden.runs.size(), golden.audits.size(), spec);
  return 0;
}

// -------------------------------------------------------------- bench store

int cmd_bench_store(const std::vector<std::string>& args) {
  po::options_description desc("options");
  experiment::StoreBenchOptions o;
  desc.add_options()("workers,j", po::value(&o.workers)->default_value(8), "worker processes")(
      "runs", po::value(&o.runs)->default_value(20000), "runs to queue and execute")(
      "runs-per-passage", po::value(&o.runs_per_passage)->default_value(10), "runs per claim")(
      "dir", po::value(&o.dir), "folder for the database (default: a temporary folder)");
  po::variables_map vm;
  if (!parse(args, desc,
             "kvlab bench store [--workers N] [--runs N]\n"
             "Store overhead per run (queue + claim + commit) with N worker processes and the stub executor.",
             nullptr, &vm))
    return 0;
  o.kvlab_binary = "/proc/self/exe";
  const auto r = experiment::bench_store(o);
  fmt::print("{}", r.report());
  return 0;
}

CommandRegistrar reg_queue{"queue", "validate a sweep spec and queue its runs", cmd_queue};
CommandRegistrar reg_run{"run", "execute queued runs (resumable; several workers/processes may share a db)", cmd_run};
CommandRegistrar reg_status{"status", "run counts per experiment and state", cmd_status};
CommandRegistrar reg_golden{"golden update", "rerun smoke.ini and rewrite tests/golden/smoke.json", cmd_golden_update};
CommandRegistrar reg_bench{"bench store", "store overhead per run with N worker processes", cmd_bench_store};

}  // namespace
}  // namespace kvlab::cli
