// Sweeps on a Slurm cluster: `kvlab slurm submit`, `kvlab slurm status`,
// `kvlab slurm resubmit`, `kvlab ingest`, and `kvlab slurm reclaim` (the
// first line of every array task).
//
// One SQLite file is never shared between machines: `submit` plans the spec
// into the main database, writes one shard database per array task
// (<base>.shard<i>.db, whole passages each; store/shard.h), an sbatch script
// (<base>.sbatch) whose task i runs `kvlab run --db <base>.shard<i>.db`, and
// a manifest (<base>.slurm.json; experiment/slurm_manifest.h) recording the
// submissions. `ingest` merges finished shards back, idempotently and
// atomically per shard. `status` reads the shard files (not sacct, which
// needs Slurm's accounting daemon); `resubmit` submits only the array indices
// whose shard is not complete and that Slurm is not running or holding
// (squeue).
//
// The kvlab binary, the databases and the script must be on a file system
// that the compute nodes see under the same paths (the script uses absolute
// paths). Not here: SQL and the shard format (store/shard.h), planning
// (experiment/spec.h), the worker (experiment/worker.h).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "cli/command.h"
#include "cli/options.h"
#include "common/error.h"
#include "experiment/slurm_manifest.h"
#include "experiment/spec.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/shard.h"

extern char** environ;

namespace po = boost::program_options;

namespace kvlab::cli {
namespace {

namespace fs = std::filesystem;

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

std::string abs_path(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Captured {
  bool started = false;  // false: the program could not be run (spawn_error says why)
  std::string spawn_error;
  int status = -1;       // exit status, or 128 + signal
  std::string out, err;
};

// Runs argv[0] (searched on PATH) without a shell; captures stdout and stderr.
Captured run_program(const std::vector<std::string>& argv) {
  Captured c;
  char err_tmpl[] = "/tmp/kvlab-slurm-stderr-XXXXXX";
  char out_tmpl[] = "/tmp/kvlab-slurm-stdout-XXXXXX";
  const int efd = mkstemp(err_tmpl);
  const int ofd = mkstemp(out_tmpl);
  KVLAB_CHECK(efd >= 0 && ofd >= 0, "cannot create a temporary file in /tmp: {}", std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, ofd, 1);
  posix_spawn_file_actions_adddup2(&fa, efd, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> av;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, av[0], &fa, nullptr, av.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(efd);
  close(ofd);
  if (rc == 0) {
    c.started = true;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  } else {
    c.spawn_error = std::strerror(rc);
  }
  c.out = read_file(out_tmpl);
  c.err = read_file(err_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return c;
}

// sbatch --parsable prints "<jobid>" or "<jobid>;<cluster>".
std::string submit_with_sbatch(const std::vector<std::string>& args, const std::string& script) {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(script);
  const Captured c = run_program(argv);
  if (!c.started)
    throw Error(fmt::format("cannot run sbatch ({}); is Slurm installed here (sbatch on PATH)? The shards and '{}' "
                            "are written: submit the script by hand, or rerun where sbatch exists",
                            c.spawn_error, script));
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  if (c.status != 0)
    throw Error(fmt::format("`{}` failed with exit status {}; its stderr:\n{}", cmd, c.status, trim(c.err)));
  const std::string out = trim(c.out);
  static const std::regex job_re("^([0-9]+)(;.*)?$");
  std::smatch m;
  if (!std::regex_match(out, m, job_re))
    throw Error(fmt::format("`{}` printed '{}'; expected a job id (stderr: {})", cmd, out, trim(c.err)));
  return m[1].str();
}

// Array task ids of `job_id` that Slurm still has pending or running;
// nullopt when squeue cannot be run. A job Slurm no longer knows has none.
std::optional<std::set<int>> live_array_tasks(const std::string& job_id) {
  const Captured c = run_program({"squeue", "--noheader", "--array", "--jobs", job_id, "--format", "%K %T"});
  if (!c.started) return std::nullopt;
  std::set<int> live;
  if (c.status != 0) {
    if (c.err.find("Invalid job id") != std::string::npos) return live;
    throw Error(fmt::format("`squeue --jobs {}` failed with exit status {}: {}", job_id, c.status, trim(c.err)));
  }
  std::istringstream in(c.out);
  std::string line;
  static const std::regex range_re("^\\[?([0-9]+)(-([0-9]+))?.*$");
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty()) continue;
    const std::string ids = line.substr(0, line.find(' '));
    // --array prints one line per task; a not-yet-split pending range looks like "[3-19%2]".
    std::stringstream parts(ids);
    std::string part;
    while (std::getline(parts, part, ',')) {
      std::smatch m;
      if (!std::regex_match(part, m, range_re)) continue;
      const int lo = std::stoi(m[1].str());
      const int hi = m[3].matched ? std::stoi(m[3].str()) : lo;
      for (int i = lo; i <= hi; ++i) live.insert(i);
    }
  }
  return live;
}

std::string array_spec(const std::vector<int>& idx, std::optional<int> throttle) {
  std::string s;
  // Compress consecutive runs: 0-3,7,9-10.
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j + 1 < idx.size() && idx[j + 1] == idx[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + (j > i ? fmt::format("{}-{}", idx[i], idx[j]) : std::to_string(idx[i]));
    i = j + 1;
  }
  if (throttle) s += fmt::format("%{}", *throttle);
  return s;
}

// "0-(N-1)[%K]".
std::string full_array(int shards, std::optional<int> throttle) {
  std::string s = shards == 1 ? "0" : fmt::format("0-{}", shards - 1);
  if (throttle) s += fmt::format("%{}", *throttle);
  return s;
}

std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  KVLAB_CHECK(!ec, "cannot find this kvlab binary's path (/proc/self/exe): {}", ec.message());
  return p.string();
}

struct SbatchOptions {
  std::string partition;
  int gpus_per_task = 0;
  int cpus_per_task = 0;
  std::string time;
  std::optional<int> throttle;
  std::vector<std::string> run_args;
};

void validate(const SbatchOptions& o, int shards) {
  if (shards < 1) throw UsageError(fmt::format("--shards {}: expected a number of array tasks >= 1", shards));
  if (o.throttle && *o.throttle < 1)
    throw UsageError(fmt::format("--throttle {}: expected at least 1 task at a time", *o.throttle));
  if (o.gpus_per_task < 0) throw UsageError(fmt::format("--gpus-per-task {}: expected >= 0", o.gpus_per_task));
  if (o.cpus_per_task < 0) throw UsageError(fmt::format("--cpus-per-task {}: expected >= 0", o.cpus_per_task));
  static const std::regex part_re("^[A-Za-z0-9_.,-]+$");
  if (!o.partition.empty() && !std::regex_match(o.partition, part_re))
    throw UsageError(fmt::format("--partition '{}': expected a Slurm partition name (letters, digits, _ . , -)",
                                 o.partition));
  // Slurm's formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
  static const std::regex time_re("^([0-9]+-)?[0-9]+(:[0-9]+){0,2}$");
  if (!o.time.empty() && !std::regex_match(o.time, time_re))
    throw UsageError(fmt::format("--time '{}': expected a Slurm time limit such as 30, 1:00:00 or 2-00:00:00",
                                 o.time));
}

std::string make_script(const std::string& db_path, const std::string& experiment, int shards,
                        const SbatchOptions& o) {
  const std::string base = abs_path(store::shard_base(db_path));
  std::string s;
  s += "#!/bin/bash\n";
  s += fmt::format("# Written by `kvlab slurm submit` for experiment '{}': {} shard database(s)\n", experiment, shards);
  s += fmt::format("# {}.shard<i>.db; array task i runs the queued runs of shard i.\n", base);
  s += fmt::format("# Merge the results back with: kvlab ingest --db {}\n", shell_quote(abs_path(db_path)));
  s += fmt::format("#SBATCH --job-name=kvlab-{}\n", experiment);
  s += fmt::format("#SBATCH --array={}\n", full_array(shards, o.throttle));
  s += "#SBATCH --ntasks=1\n";
  if (o.cpus_per_task > 0) s += fmt::format("#SBATCH --cpus-per-task={}\n", o.cpus_per_task);
  if (o.gpus_per_task > 0) s += fmt::format("#SBATCH --gpus-per-task={}\n", o.gpus_per_task);
  if (!o.partition.empty()) s += fmt::format("#SBATCH --partition={}\n", o.partition);
  if (!o.time.empty()) s += fmt::format("#SBATCH --time={}\n", o.time);
  s += fmt::format("#SBATCH --output={}.slurm-%A_%a.out\n", base);
  s += "set -euo pipefail\n";
  s += fmt::format("KVLAB={}\n", shell_quote(self_exe()));
  s += fmt::format("SHARD={}\".shard${{SLURM_ARRAY_TASK_ID}}.db\"\n", shell_quote(base));
  s += "# A killed earlier task of this index may have left claimed runs behind.\n";
  s += "\"$KVLAB\" slurm reclaim --db \"$SHARD\"\n";
  std::string extra;
  for (const auto& a : o.run_args) extra += " " + shell_quote(a);
  s += fmt::format("exec \"$KVLAB\" run --db \"$SHARD\"{}\n", extra);
  return s;
}

void write_text_atomic(const std::string& path, const std::string& text, bool executable) {
  const std::string tmp = fmt::format("{}.tmp{}", path, getpid());
  {
    std::ofstream o(tmp, std::ios::binary);
    KVLAB_CHECK(o.good(), "cannot write '{}'", tmp);
    o << text;
    KVLAB_CHECK(o.good(), "writing '{}' failed", tmp);
  }
  if (executable) fs::permissions(tmp, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  KVLAB_CHECK(!ec, "cannot move '{}' to '{}': {}", tmp, path, ec.message());
}

// Refuses when a recorded submission of this database still has tasks in Slurm.
void check_no_live_jobs(const std::string& db_path, const std::string& what) {
  const std::string mp = experiment::manifest_path(db_path);
  if (!fs::exists(mp)) return;
  const auto m = experiment::read_manifest(mp);
  for (const auto& sub : m.submissions) {
    if (sub.job_id.empty()) continue;
    const auto live = live_array_tasks(sub.job_id);
    if (live && !live->empty())
      throw Error(fmt::format("Slurm job {} of '{}' still has {} array task(s) pending or running; wait for it (or "
                              "scancel {}) before {}",
                              sub.job_id, db_path, live->size(), sub.job_id, what));
  }
}

// ------------------------------------------------------------ slurm submit

int cmd_submit(const std::vector<std::string>& args) {
  std::string spec, db;
  int shards = 0, throttle = 0;
  bool dry_run = false;
  SbatchOptions o;
  po::options_description desc("kvlab slurm submit options");
  desc.add_options()("spec", po::value(&spec)->required(), "sweep spec (INI), as for `kvlab queue`")(
      "db", po::value(&db)->required(), "main result database (created if missing)")(
      "shards", po::value(&shards)->required(), "number of shards = array tasks (each gets whole passages)")(
      "partition", po::value(&o.partition), "Slurm partition")(
      "gpus-per-task", po::value(&o.gpus_per_task)->default_value(0), "GPUs per array task (0: none requested)")(
      "cpus-per-task", po::value(&o.cpus_per_task)->default_value(0), "CPUs per array task (0: Slurm's default)")(
      "time", po::value(&o.time), "time limit per task (Slurm format, e.g. 1:00:00)")(
      "throttle", po::value(&throttle)->default_value(0), "at most K tasks at once (--array=...%K; 0: no limit)")(
      "run-arg", po::value(&o.run_args)->composing(),
      "argument passed to `kvlab run` in each task (repeatable), e.g. --run-arg=--workers=4")(
      "dry-run", po::bool_switch(&dry_run), "write the shards and the script, print it, submit nothing");
  po::positional_options_description pos;
  pos.add("spec", 1);
  po::variables_map vm;
  if (!parse(args, desc,
             "kvlab slurm submit SPEC --db FILE --shards N [--partition P] [--gpus-per-task G] [--time T] "
             "[--throttle K] [--dry-run]",
             &pos, &vm))
    return 0;
  if (throttle != 0) o.throttle = throttle;
  if (throttle < 0) throw UsageError(fmt::format("--throttle {}: expected at least 1 (or 0 for no limit)", throttle));
  validate(o, shards);
  if (!dry_run) check_no_live_jobs(db, "writing new shards");

  const auto sweep = experiment::load_spec(spec);
  auto conn = store::open_database(db, store::OpenMode::kCreate);
  const auto q = store::queue_experiment(*conn, sweep.plan());
  fmt::print("queued experiment '{}' in {}: {} run(s) added, {} already there\n", sweep.name, db, q.runs_added,
             q.runs_existing);
  const auto layout = store::write_shards(*conn, db, sweep.name, shards);
  conn.reset();
  for (const auto& s : layout.shards)
    fmt::print("  shard {:>3}: {:>5} run(s), {} passage(s) -> {}\n", s.index, s.runs, s.passages.size(), s.path);
  fmt::print("{} pending run(s) in {} shard(s); {} run(s) already done are not sharded\n", layout.pending_runs,
             layout.shards.size(), layout.done_runs);

  const std::string script_path = store::shard_base(db) + ".sbatch";
  const std::string script = make_script(db, sweep.name, shards, o);
  write_text_atomic(script_path, script, true);
  experiment::SlurmManifest m;
  m.db = abs_path(db);
  m.spec = spec;
  m.experiment = sweep.name;
  m.sbatch = abs_path(script_path);
  m.shards = shards;
  m.throttle = o.throttle;
  const std::string mpath = experiment::manifest_path(db);
  experiment::write_manifest(mpath, m);
  if (dry_run) {
    fmt::print("dry run: wrote {} and {}; not submitted. The script:\n\n{}", script_path, mpath, script);
    return 0;
  }
  const std::string array = full_array(shards, o.throttle);
  const std::string job = submit_with_sbatch({}, abs_path(script_path));
  m.submissions.push_back(experiment::SlurmSubmission{job, array, store::iso8601_now()});
  experiment::write_manifest(mpath, m);
  fmt::print("submitted array job {} (--array={}); follow it with `kvlab slurm status --db {}`, then `kvlab ingest "
             "--db {}`\n",
             job, array, db, db);
  return 0;
}

// ------------------------------------------------------------ slurm status

std::vector<store::ShardProgress> shard_progress(const std::string& db, experiment::SlurmManifest* manifest_out) {
  const std::string mp = experiment::manifest_path(db);
  int n = 0;
  if (fs::exists(mp)) {
    *manifest_out = experiment::read_manifest(mp);
    n = manifest_out->shards;
  } else {
    // No manifest: the shard files that exist next to the database.
    static const std::regex re(".*\\.shard([0-9]+)\\.db$");
    const fs::path dir = fs::path(db).parent_path().empty() ? fs::path(".") : fs::path(db).parent_path();
    const std::string base = fs::path(store::shard_base(db)).filename().string();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string f = e.path().filename().string();
      std::smatch m;
      if (f.rfind(base + ".shard", 0) == 0 && std::regex_match(f, m, re)) n = std::max(n, std::stoi(m[1].str()) + 1);
    }
    KVLAB_CHECK(n > 0, "no shards of '{}': neither {} nor {} exists (was `kvlab slurm submit --db {}` run?)", db, mp,
                store::shard_path(db, 0), db);
  }
  std::vector<store::ShardProgress> out;
  for (int i = 0; i < n; ++i) out.push_back(store::read_shard_progress(store::shard_path(db, i), i));
  return out;
}

std::string describe_state(const store::ShardProgress& p) {
  if (!p.exists) return "missing file";
  if (!p.error.empty()) return "unreadable: " + p.error;
  if (p.complete()) return "complete";
  if (p.running > 0) return "running (or killed)";
  if (p.done == 0 && p.failed == 0) return "not started";
  return "incomplete";
}

int cmd_status(const std::vector<std::string>& args) {
  std::string db;
  po::options_description desc("kvlab slurm status options");
  desc.add_options()("db", po::value(&db)->required(), "main result database given to `kvlab slurm submit`");
  po::variables_map vm;
  if (!parse(args, desc, "kvlab slurm status --db FILE", nullptr, &vm)) return 0;
  experiment::SlurmManifest m;
  const auto shards = shard_progress(db, &m);
  if (!m.experiment.empty()) {
    fmt::print("experiment '{}', {} shard(s), script {}\n", m.experiment, m.shards, m.sbatch);
    for (const auto& s : m.submissions) fmt::print("  job {} --array={} submitted {}\n", s.job_id, s.array, s.submitted_at);
  }
  const double now = store::unix_now();
  fmt::print("{:>5}  {:>8}  {:>11}  {:>7}  {:>6}  {:>6}  {:>9}  {}\n", "shard", "passages", "done/total", "running",
             "queued", "failed", "last seen", "state");
  std::int64_t done = 0, total = 0;
  int complete = 0;
  for (const auto& p : shards) {
    const std::string last = p.last_activity ? fmt::format("{:.0f} s ago", now - *p.last_activity) : "-";
    fmt::print("{:>5}  {:>8}  {:>11}  {:>7}  {:>6}  {:>6}  {:>9}  {}\n", p.index, p.passages,
               fmt::format("{}/{}", p.done, p.total()), p.running, p.queued, p.failed, last, describe_state(p));
    done += p.done;
    total += p.total();
    complete += p.complete() ? 1 : 0;
  }
  fmt::print("{} of {} shard(s) complete; {} of {} run(s) done in the shards\n", complete, shards.size(), done, total);
  if (!m.experiment.empty() && fs::exists(db)) {
    auto conn = store::open_database(db, store::OpenMode::kReadOnly);
    const auto p = store::experiment_progress(*conn, m.experiment);
    fmt::print("{}: {} of {} run(s) of '{}' done (merged){}\n", db, p.done, p.total, m.experiment,
               p.done < p.total ? fmt::format("; merge with `kvlab ingest --db {}`", db) : "");
  }
  return 0;
}

// ---------------------------------------------------------- slurm resubmit

int cmd_resubmit(const std::vector<std::string>& args) {
  std::string db;
  int throttle = -1;
  bool dry_run = false, no_queue_check = false;
  po::options_description desc("kvlab slurm resubmit options");
  desc.add_options()("db", po::value(&db)->required(), "main result database given to `kvlab slurm submit`")(
      "throttle", po::value(&throttle), "at most K tasks at once (default: as submitted; 0: no limit)")(
      "dry-run", po::bool_switch(&dry_run), "print what would be submitted, submit nothing")(
      "no-queue-check", po::bool_switch(&no_queue_check),
      "do not ask squeue which tasks are still pending or running (only where squeue cannot run; two tasks on "
      "one shard would share one SQLite file between machines)");
  po::variables_map vm;
  if (!parse(args, desc, "kvlab slurm resubmit --db FILE [--throttle K] [--dry-run]", nullptr, &vm)) return 0;
  const std::string mp = experiment::manifest_path(db);
  auto m = experiment::read_manifest(mp);
  std::optional<int> thr = m.throttle;
  if (vm.count("throttle")) {
    if (throttle < 0) throw UsageError(fmt::format("--throttle {}: expected at least 1 (or 0 for no limit)", throttle));
    thr = throttle == 0 ? std::nullopt : std::optional<int>(throttle);
  }
  std::set<int> live;
  if (!no_queue_check) {
    for (const auto& s : m.submissions) {
      if (s.job_id.empty()) continue;
      auto l = live_array_tasks(s.job_id);
      if (!l)
        throw Error(
            "squeue was not found on PATH, so tasks still pending or running cannot be told apart from killed "
            "ones; run where Slurm's client tools are installed (or pass --no-queue-check if no task can be alive)");
      live.insert(l->begin(), l->end());
    }
  }
  std::vector<int> missing;
  experiment::SlurmManifest ignored;
  for (const auto& p : shard_progress(db, &ignored)) {
    if (p.complete()) continue;
    if (!p.exists || !p.error.empty()) {
      fmt::print(stderr, "shard {}: {}; not resubmitted (rewrite the shards with `kvlab slurm submit`)\n", p.index,
                 describe_state(p));
      continue;
    }
    if (live.count(p.index)) {
      fmt::print("shard {}: still pending or running in Slurm; not resubmitted\n", p.index);
      continue;
    }
    fmt::print("shard {}: {}/{} run(s) done ({} running, {} failed); resubmitting\n", p.index, p.done, p.total(),
               p.running, p.failed);
    missing.push_back(p.index);
  }
  if (missing.empty()) {
    fmt::print("nothing to resubmit\n");
    return 0;
  }
  const std::string array = array_spec(missing, thr);
  if (dry_run) {
    fmt::print("dry run: would run `sbatch --array={} {}`\n", array, m.sbatch);
    return 0;
  }
  const std::string job = submit_with_sbatch({"--array=" + array}, m.sbatch);
  m.submissions.push_back(experiment::SlurmSubmission{job, array, store::iso8601_now()});
  experiment::write_manifest(mp, m);
  fmt::print("submitted array job {} (--array={})\n", job, array);
  return 0;
}

// ----------------------------------------------------------- slurm reclaim

int cmd_reclaim(const std::vector<std::string>& args) {
  std::string db;
  int max_attempts = 3;
  po::options_description desc("kvlab slurm reclaim options");
  desc.add_options()("db", po::value(&db)->required(), "shard database of this array task")(
      "max-attempts", po::value(&max_attempts)->default_value(3), "a run that used this many attempts fails");
  po::variables_map vm;
  if (!parse(args, desc, "kvlab slurm reclaim --db SHARD", nullptr, &vm)) return 0;
  if (max_attempts < 1) throw UsageError(fmt::format("--max-attempts {}: expected >= 1", max_attempts));
  auto conn = store::open_database(db, store::OpenMode::kReadWrite);
  const auto meta = store::read_shard_meta(*conn);
  KVLAB_CHECK(meta, "'{}' is not a shard written by `kvlab slurm submit`; reclaim only runs on a shard, which has one "
              "worker at a time (use `kvlab run`'s grace period elsewhere)",
              db);
  const auto n = store::reclaim_shard(*conn, max_attempts);
  if (n > 0) fmt::print("{}: {} run(s) left running by an earlier task were requeued\n", db, n);
  return 0;
}

// ------------------------------------------------------------------ ingest

int cmd_ingest(const std::vector<std::string>& args) {
  std::string db;
  std::vector<std::string> shards;
  po::options_description desc("kvlab ingest options");
  desc.add_options()("db", po::value(&db)->required(), "main result database to merge into")(
      "shard", po::value(&shards)->composing(), "shard database(s) (default: every shard in <db>.slurm.json)");
  po::positional_options_description pos;
  pos.add("shard", -1);
  po::variables_map vm;
  if (!parse(args, desc, "kvlab ingest --db FILE [SHARD.db...]", &pos, &vm)) return 0;
  auto conn = store::open_database(db, store::OpenMode::kReadWrite);
  if (shards.empty()) {
    const std::string mp = experiment::manifest_path(db);
    KVLAB_CHECK(fs::exists(mp), "no shard given and no '{}' to list them; usage: kvlab ingest --db FILE SHARD.db...",
                mp);
    const auto m = experiment::read_manifest(mp);
    for (int i = 0; i < m.shards; ++i) shards.push_back(store::shard_path(db, i));
  }
  int exit_code = 0;
  std::int64_t merged = 0, missing = 0;
  int failed = 0;
  std::set<std::string> experiments;
  for (const auto& s : shards) {
    const auto o = store::ingest_shard(*conn, db, s);
    if (!o.ok) {
      ++failed;
      if (exit_code == 0) exit_code = o.exit_code;
      fmt::print(stderr, "{}: FAILED, nothing merged: {}\n", s, o.error);
      continue;
    }
    experiments.insert(o.meta->experiment);
    merged += o.runs_merged;
    missing += o.runs_missing;
    std::string line = fmt::format("{}: merged {} run(s) and {} audit(s); {} already present", s, o.runs_merged,
                                   o.audits_merged, o.runs_already);
    if (o.runs_missing > 0)
      line += fmt::format("; missing {} ({} queued, {} running or killed, {} failed)", o.runs_missing,
                          o.missing_queued, o.missing_running, o.missing_failed);
    fmt::print("{}\n", line);
    if (o.runs_conflicting > 0)
      fmt::print(stderr, "{}: warning: {} run(s) already in {} have different values in the shard; kept {}'s\n", s,
                 o.runs_conflicting, db, db);
    for (const auto& f : o.failures) fmt::print("    failed: {}\n", f);
  }
  fmt::print("ingest: {} shard(s) merged, {} failed; {} run(s) merged, {} still missing in the shards\n",
             shards.size() - static_cast<std::size_t>(failed), failed, merged, missing);
  for (const auto& e : experiments) {
    const auto p = store::experiment_progress(*conn, e);
    fmt::print("{}: experiment '{}': {} of {} run(s) done{}\n", db, e, p.done, p.total,
               p.done < p.total ? fmt::format(" ({} missing)", p.total - p.done) : "");
  }
  return exit_code;
}

CommandRegistrar reg_submit{"slurm submit", "plan a sweep into shard databases and submit a Slurm job array",
                            cmd_submit};
CommandRegistrar reg_status{"slurm status", "per-shard progress of a Slurm sweep (reads the shard files)", cmd_status};
CommandRegistrar reg_resubmit{"slurm resubmit", "resubmit the array tasks whose shard is incomplete", cmd_resubmit};
CommandRegistrar reg_reclaim{"slurm reclaim", "requeue runs a killed task left in its shard (first step of a task)",
                             cmd_reclaim};
CommandRegistrar reg_ingest{"ingest", "merge finished shard databases into the main database (idempotent)",
                            cmd_ingest};

}  // namespace
}  // namespace kvlab::cli
