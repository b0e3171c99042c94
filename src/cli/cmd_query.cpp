// The read side of the `kvlab` CLI: stats, best_q (also best-q), best,
// list, show, export, diff, import published, import csv, refine, bench query.
//
// Every number printed here comes from kvlab::stats structs computed from
// the database rows (store::load_experiment -> stats::summarize); this file
// parses options and calls the renderers of src/report/ (console.h and
// stats_json.h for stats, best_q and best; console_runs.h and
// stats_json_runs.h for list, show, export and diff); only the short
// summaries of import and refine are formatted here. With --json,
// machine-readable output goes to stdout and messages to stderr.
//
// Not here: statistics (src/stats/), SQL (src/store/), markdown reports
// (src/report/), the shared options (cli/options.h).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/options.h"
#include "codec/codec.h"
#include "common/error.h"
#include "experiment/provenance.h"
#include "ingest/benchmark.h"
#include "ingest/csv.h"
#include "ingest/published.h"
#include "model/config.h"
#include "report/console.h"
#include "report/console_runs.h"
#include "report/stats_json.h"
#include "report/stats_json_runs.h"
#include "stats/best.h"
#include "stats/compare.h"
#include "stats/study.h"
#include "store/db.h"
#include "store/decisions.h"
#include "store/query.h"

using nlohmann::json;

namespace kvlab::cli {
namespace {

// ---------------------------------------------------------------- options

using Common = CommonOptions;

std::unique_ptr<SQLite::Database> open_ro(const std::string& path) {
  return store::open_database(path, store::OpenMode::kReadOnly);
}

// The V4-Flash layer mix (model config data), or --layer-mix s=n,s=n,...
ingest::LayerMix layer_mix_from(const std::string& text) {
  ingest::LayerMix lm;
  if (text.empty()) {
    const auto cfg = model::V4Config::flash();
    lm.emplace_back("sliding_window_kv", cfg.count(model::LayerKind::SWA));
    lm.emplace_back("csa_pool_kv_ratio4", cfg.count(model::LayerKind::CSA));
    lm.emplace_back("hca_pool_kv_ratio128", cfg.count(model::LayerKind::HCA));
    return lm;
  }
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw UsageError(fmt::format("--layer-mix item '{}': expected stream=layers", item));
    const std::string s = item.substr(0, eq);
    const auto& known = ingest::published_stream_names();
    if (std::find(known.begin(), known.end(), s) == known.end())
      throw UsageError(fmt::format("--layer-mix: unknown stream '{}'; expected one of: {}", s, fmt::join(known, ", ")));
    char* end = nullptr;
    const double n = std::strtod(item.c_str() + eq + 1, &end);
    if (end == item.c_str() + eq + 1 || *end != '\0' || !(n >= 0) || !std::isfinite(n))
      throw UsageError(fmt::format("--layer-mix item '{}': layers must be a number >= 0", item));
    lm.emplace_back(s, n);
  }
  return lm;
}

std::string canonical_codec(const std::string& family, std::optional<int> q) {
  const CodecFamilyInfo* f = find_codec_family(family);
  KVLAB_CHECK(f || family.find(':') != std::string::npos, "unknown codec family '{}' (known codecs: {})", family,
              known_codecs_text());
  if (!q) return parse_codec_spec(family).canonical;
  // A family ("e8") takes q as its rate; a full spec ("int:bits=6,...") must agree with it.
  const CodecSpec s = parse_codec_spec(family, *q);
  KVLAB_CHECK(s.rate == q, "codec '{}' has rate {} but its q column says {}", family,
              s.rate ? std::to_string(*s.rate) : std::string("none"), *q);
  return s.canonical;
}

// Bits of a lattice (family, Q, D) in the experiment's accounting: the
// codec's own bits for kvlab sweeps, the published formula for imports.
stats::BitsFn bits_fn(const std::string& origin) { return codec::lattice_bits_fn(origin != "sweep"); }

// Validates --stream / --codec against the data; lists the known ones.
void check_filters(const stats::ExperimentData& d, const std::vector<std::string>& streams,
                   const std::vector<std::string>& codecs) {
  std::set<std::string> ks, kc, kf;
  for (const auto& r : d.results) {
    ks.insert(r.stream);
    kc.insert(r.codec);
    kf.insert(r.codec.substr(0, r.codec.find(':')));
  }
  for (const auto& s : streams)
    if (!ks.count(s))
      throw Error(fmt::format("unknown stream '{}' in experiment '{}'; known streams: {}", s, d.info.name,
                              ks.empty() ? std::string("none (no finished runs)") : fmt::format("{}", fmt::join(ks, ", "))));
  for (const auto& c : codecs)
    if (!kc.count(c) && !kf.count(c))
      throw Error(fmt::format("unknown codec '{}' in experiment '{}'; known codecs: {}", c, d.info.name,
                              kc.empty() ? std::string("none (no finished runs)") : fmt::format("{}", fmt::join(kc, ", "))));
}

// ---------------------------------------------------------------- output

void emit(const std::string& text, const std::string& out_path) {
  if (out_path.empty() || out_path == "-") {
    std::cout << text;
    std::cout.flush();
    return;
  }
  std::ofstream f(out_path, std::ios::binary);
  KVLAB_CHECK(f.good(), "cannot open '{}' for writing", out_path);
  f << text;
  KVLAB_CHECK(f.good(), "writing '{}' failed", out_path);
}

// ---------------------------------------------------------------- stats

struct StatsArgs {
  Common c;
  std::vector<std::string> streams, codecs;
  bool per_passage = false;
  std::string json_rows = "cells";  // cells | layer_weighted | audit
};

std::string render_stats(const stats::StudySummary& s, const StatsArgs& a) {
  return a.c.json ? report::stats_json(s, a.json_rows, a.per_passage) : report::stats_text(s, a.per_passage);
}

int cmd_stats(const std::vector<std::string>& args) {
  StatsArgs a;
  po::options_description d("kvlab stats: per stream x codec x Q statistics of one experiment");
  add_db(d, a.c);
  add_experiment(d, a.c);
  add_json(d, a.c);
  d.add_options()("stream", po::value(&a.streams)->composing(), "only this stream (repeatable)")(
      "codec", po::value(&a.codecs)->composing(), "only this codec family ('e8') or spec ('e8:q=38') (repeatable)")(
      "per-passage", po::bool_switch(&a.per_passage), "also list the per-passage ratios")(
      "rows", po::value(&a.json_rows)->default_value("cells"),
      "with --json: cells (stream x codec), layer_weighted (ratio vs FP8 over the layer mix: published "
      "root-sum-square CI and paired CI), audit (metrics with gates) or decisions (the threshold decisions of "
      "`kvlab run --until-resolved` with the passages each needed)");
  if (!parse(args, d, "kvlab stats [--db FILE] [--experiment NAME|ID] [--stream S] [--codec C] [--json]")) return 0;
  if (a.json_rows != "cells" && a.json_rows != "layer_weighted" && a.json_rows != "audit" &&
      a.json_rows != "decisions")
    throw UsageError(
        fmt::format("unknown --rows '{}'; expected cells, layer_weighted, audit or decisions", a.json_rows));
  auto db = open_ro(a.c.db);
  const auto data = store::load_experiment(*db, a.c.experiment);
  const auto decisions = store::load_decisions(*db, data.info.id);
  if (a.c.json && a.json_rows == "decisions") {
    std::cout << report::decisions_json(decisions);
    return 0;
  }
  check_filters(data, a.streams, a.codecs);
  stats::SummaryOptions opt;
  opt.streams = a.streams;
  opt.codecs = a.codecs;
  const auto s = stats::summarize(data, opt);
  std::cout << render_stats(s, a);
  if (!a.c.json && !decisions.empty())
    std::cout << "\nthreshold decisions of `kvlab run --until-resolved` (Holm across the codecs per stream and "
                 "threshold)\n"
              << report::decisions_text(decisions);
  return 0;
}

// ---------------------------------------------------------------- best_q

struct BestQArgs {
  Common c;
  std::string threshold = "A";
  bool ci_safe = false;
  bool paired = false;
  bool suggest = false;
  std::vector<std::string> streams, codecs;
};

stats::QView view_of(const BestQArgs& a) {
  if (a.paired) return stats::QView::kPairedCiSafe;
  return a.ci_safe ? stats::QView::kCiSafe : stats::QView::kPoint;
}

report::BestQSelection selection_of(const stats::StudySummary& s, const BestQArgs& a) {
  report::BestQSelection sel;
  sel.threshold = stats::parse_threshold(a.threshold);
  sel.view = view_of(a);
  sel.families = report::best_q_families(s, a.codecs);
  sel.suggest = a.suggest;
  return sel;
}

struct BestQResult {
  std::string text;
  bool any_inadmissible = false;
};

BestQResult render_best_q(const stats::StudySummary& s, const BestQArgs& a) {
  const auto sel = selection_of(s, a);
  return {a.c.json ? report::best_q_json(s, sel) : report::best_q_text(s, sel),
          report::best_q_any_inadmissible(s, sel)};
}

stats::StudySummary summarize_for_best_q(const stats::ExperimentData& data, const BestQArgs& a) {
  stats::SummaryOptions opt;
  opt.thresholds = {stats::parse_threshold(a.threshold)};
  opt.views = {view_of(a)};
  opt.streams = a.streams;
  opt.codecs = a.codecs;
  if (a.suggest) opt.bits_of = bits_fn(data.info.origin);
  return stats::summarize(data, opt);
}

// best_q and refine need the baseline of every stream they look at.
void require_baselines(const stats::StudySummary& s) {
  for (const auto& st : s.streams)
    KVLAB_CHECK(s.find_cell(st, s.baseline) != nullptr,
                "stream {} of experiment '{}' has no {} baseline (no finished {} runs): the budget of "
                "best_q is a multiple of the baseline's rel-MSE; run or import {} for it, or leave it out with "
                "--stream",
                st, s.experiment.name, s.baseline == stats::kFp8Codec ? std::string("FP8") : s.baseline, s.baseline,
                s.baseline);
}

void add_best_q_options(po::options_description& d, BestQArgs& a) {
  d.add_options()("threshold,t", po::value(&a.threshold)->default_value("A"),
                  "A (1.00 x FP8 rel-MSE), B (1.05 x) or C (1.20 x)")(
      "ci-safe", po::bool_switch(&a.ci_safe), "published CI-safe view: mean + CI95 half-width must fit")(
      "paired", po::bool_switch(&a.paired), "paired CI-safe view: upper end of the per-passage ratio CI95 must fit")(
      "stream", po::value(&a.streams)->composing(), "only this stream (repeatable)")(
      "codec", po::value(&a.codecs)->composing(), "only this lattice family, e.g. e8 (repeatable)");
}

int cmd_best_q(const std::vector<std::string>& args) {
  BestQArgs a;
  po::options_description d("kvlab best_q: max usable Q per stream and the two deployment strategies");
  add_db(d, a.c);
  add_experiment(d, a.c);
  add_json(d, a.c);
  add_best_q_options(d, a);
  d.add_options()("suggest", po::bool_switch(&a.suggest), "list Q values still worth running");
  if (!parse(args, d, "kvlab best_q --threshold A|B|C [--ci-safe|--paired] [--suggest] [--db FILE] [--experiment E] [--json]"))
    return 0;
  stats::parse_threshold(a.threshold);  // usage error before touching the database
  auto db = open_ro(a.c.db);
  const auto data = store::load_experiment(*db, a.c.experiment);
  check_filters(data, a.streams, a.codecs);
  const auto s = summarize_for_best_q(data, a);
  require_baselines(s);
  KVLAB_CHECK(!s.families.empty(), "experiment '{}' has no finished lattice-codec runs{}", data.info.name,
              a.codecs.empty() ? "" : " matching --codec");
  const auto r = render_best_q(s, a);
  std::cout << r.text;
  return r.any_inadmissible ? static_cast<int>(ExitCode::kNoAdmissibleQ) : 0;
}

// ---------------------------------------------------------------- best

struct BestArgs {
  Common c;
  std::string family, threshold = "A", metric = "rel_mse", against;
  bool ci_safe = false;
  std::vector<std::string> streams;
};

// --against must name a codec the experiment ran; lists them otherwise.
std::string check_against(const stats::ExperimentData& data, const std::string& against) {
  const std::string canon = parse_codec_spec(against).canonical;
  std::set<std::string> ran;
  for (const auto& r : data.results) ran.insert(r.codec);
  KVLAB_CHECK(ran.count(canon), "--against '{}': experiment '{}' ran no such codec; allowed: {}", against,
              data.info.name, ran.empty() ? std::string("none (no finished runs)") : fmt::format("{}", fmt::join(ran, ", ")));
  return canon;
}

int cmd_best(const std::vector<std::string>& args) {
  BestArgs a;
  po::options_description d(
      "kvlab best: the lowest-bit point of a codec family whose metric ratio to the baseline clears a threshold, "
      "per stream and layer weighted");
  add_db(d, a.c);
  add_experiment(d, a.c);
  add_json(d, a.c);
  d.add_options()("family,f", po::value(&a.family), "codec family with a rate parameter (e8, d4, int, hadamard_int, "
                  "hadamard_lloyd, ...) or one variant (int:block=64,scale=ue8m0)")(
      "threshold,t", po::value(&a.threshold)->default_value("A"), "A (ratio <= 1.00), B (1.05) or C (1.20)")(
      "metric,m", po::value(&a.metric)->default_value("rel_mse"),
      "metric whose paired ratio to the baseline is thresholded: rel_mse, attn_out, kl, logit (or a full name)")(
      "ci-safe", po::bool_switch(&a.ci_safe), "the upper end of the ratio's CI95 must clear (default: the mean)")(
      "against", po::value(&a.against), "baseline codec (default: the experiment's; any codec it ran)")(
      "stream", po::value(&a.streams)->composing(), "only this stream (repeatable)");
  if (!parse(args, d, "kvlab best --family F --threshold A|B|C [--metric M] [--ci-safe] [--against BASE] "
                      "[--experiment E] [--db FILE] [--json]"))
    return 0;
  if (a.family.empty())
    throw UsageError(fmt::format("missing --family; expected one of: {}", fmt::join(stats::rate_families(), ", ")));
  const auto th = stats::parse_threshold(a.threshold);
  const std::string metric = stats::resolve_threshold_metric(a.metric);
  auto db = open_ro(a.c.db);
  const auto data = store::load_experiment(*db, a.c.experiment);
  check_filters(data, a.streams, {});
  stats::SummaryOptions opt;
  opt.thresholds = {th};
  opt.views = {stats::QView::kPairedCiSafe};
  opt.streams = a.streams;
  opt.metric = metric;
  if (!a.against.empty()) opt.baseline = check_against(data, a.against);
  const auto s = stats::summarize(data, opt);
  const auto b = stats::best_operating_point(s, {a.family, th, a.ci_safe});
  std::cout << (a.c.json ? report::best_json(b) : report::best_text(b));
  return b.any_inadmissible() ? static_cast<int>(ExitCode::kNoAdmissibleQ) : 0;
}

// ---------------------------------------------------------------- refine

int cmd_refine(const std::vector<std::string>& args) {
  BestQArgs a;
  bool dry = false;
  std::string db_path;
  po::options_description d("kvlab refine: queue the Q values `best_q --suggest` lists as runs of the same experiment");
  add_db(d, a.c);
  add_experiment(d, a.c);
  add_json(d, a.c);
  add_best_q_options(d, a);
  d.add_options()("dry-run", po::bool_switch(&dry), "only list what would be queued");
  if (!parse(args, d, "kvlab refine [--threshold A|B|C] [--ci-safe|--paired] [--db FILE] [--experiment E] [--dry-run]"))
    return 0;
  stats::parse_threshold(a.threshold);
  a.suggest = true;
  auto db = store::open_database(a.c.db, dry ? store::OpenMode::kReadOnly : store::OpenMode::kReadWrite);
  const auto data = store::load_experiment(*db, a.c.experiment);
  check_filters(data, a.streams, a.codecs);
  const auto s = summarize_for_best_q(data, a);
  require_baselines(s);
  const auto fams = report::best_q_families(s, a.codecs);
  std::set<std::pair<std::string, int>> todo;
  for (const auto& x : s.suggestions)
    if (std::find(fams.begin(), fams.end(), x.family) != fams.end()) todo.insert({canonical_codec(x.family, x.q), x.q});
  std::vector<std::pair<std::string, int>> list(todo.begin(), todo.end());
  store::RefineOutcome out;
  if (!dry && !list.empty()) out = store::queue_codec_runs(*db, data.info.id, list);
  if (a.c.json) {
    json j;
    j["experiment"] = data.info.name;
    j["dry_run"] = dry;
    json cs = json::array();
    for (const auto& [c, q] : list) cs.push_back(c);
    j["codecs"] = cs;
    j["runs_added"] = out.added;
    j["runs_existing"] = out.existing;
    std::cout << j.dump(2) << "\n";
  } else {
    if (list.empty()) {
      std::cout << fmt::format("experiment {}: no Q values to add for threshold {} ({})\n", data.info.name,
                               a.threshold, stats::to_string(view_of(a)));
    } else {
      std::vector<std::string> names;
      for (const auto& [c, q] : list) names.push_back(c);
      std::cout << fmt::format("experiment {}: {} {} (every passage x stream)\n", data.info.name,
                               dry ? "would queue" : "queued", fmt::join(names, ", "));
      if (!dry)
        std::cout << fmt::format("{} runs added, {} already present; run them with `kvlab run --db {}`\n", out.added,
                                 out.existing, a.c.db);
    }
  }
  return 0;
}

// ---------------------------------------------------------------- list / show

int cmd_list(const std::vector<std::string>& args) {
  Common c;
  bool runs = false;
  store::RunFilter f;
  std::string stream, codec, status, passage;
  std::int64_t limit = 0;
  po::options_description d("kvlab list: experiments, or runs with --runs");
  add_db(d, c);
  add_experiment(d, c);
  add_json(d, c);
  d.add_options()("runs", po::bool_switch(&runs), "list runs instead of experiments")(
      "stream", po::value(&stream), "runs of this stream")("codec", po::value(&codec), "runs of this codec or family")(
      "status", po::value(&status), "runs in this state: queued, running, done, failed")(
      "passage", po::value(&passage), "runs of this passage (name)")("limit", po::value(&limit), "at most N runs");
  if (!parse(args, d, "kvlab list [--runs [--experiment E] [--status S] [--stream S] [--codec C]] [--json]")) return 0;
  auto db = open_ro(c.db);
  if (!runs) {
    const auto rows = store::list_experiments(*db);
    std::cout << (c.json ? report::experiments_json(rows) : report::experiments_text(rows));
    return 0;
  }
  if (!c.experiment.empty() || store::list_experiments(*db).size() == 1)
    f.experiment_id = store::resolve_experiment(*db, c.experiment).id;
  if (!stream.empty()) f.stream = stream;
  if (!codec.empty()) f.codec = codec;
  if (!status.empty()) f.status = status;
  if (!passage.empty()) f.passage = passage;
  if (limit > 0) f.limit = limit;
  const auto rows = store::list_runs(*db, f);
  std::cout << (c.json ? report::runs_json(rows) : report::runs_text(rows));
  return 0;
}

int cmd_show(const std::vector<std::string>& args) {
  Common c;
  std::int64_t run_id = 0;
  po::options_description d("kvlab show: one experiment (parameters, passages, run counts) or one run");
  add_db(d, c);
  add_experiment(d, c);
  add_json(d, c);
  d.add_options()("run", po::value(&run_id), "show this run id with its result and provenance");
  po::positional_options_description pos;
  pos.add("experiment", 1);
  if (!parse(args, d, "kvlab show [EXPERIMENT] [--run ID] [--db FILE] [--json]", &pos)) return 0;
  auto db = open_ro(c.db);
  if (run_id > 0) {
    store::RunFilter f;
    f.run_id = run_id;
    const auto rows = store::list_runs(*db, f);
    KVLAB_CHECK(!rows.empty(), "no run with id {} in {}", run_id, c.db);
    const auto& r = rows.front();
    const auto prov = r.provenance_id ? store::provenance_row(*db, *r.provenance_id)
                                      : std::vector<std::pair<std::string, std::string>>{};
    std::cout << (c.json ? report::run_json(r, prov) : report::run_text(r, prov));
    return 0;
  }
  const auto data = store::load_experiment(*db, c.experiment);
  const auto streams = store::experiment_streams(*db, data.info.id);
  const auto codecs = store::experiment_codecs(*db, data.info.id);
  std::cout << (c.json ? report::experiment_json(data, streams, codecs) : report::experiment_text(data, streams, codecs));
  return 0;
}

// ---------------------------------------------------------------- export

int cmd_export(const std::vector<std::string>& args) {
  Common c;
  std::string format = "csv", out_path;
  bool all = false;
  po::options_description d("kvlab export: finished runs with their results as CSV or JSON lines");
  add_db(d, c);
  add_experiment(d, c);
  d.add_options()("format", po::value(&format)->default_value("csv"), "csv | jsonl")(
      "out,o", po::value(&out_path), "output file (default stdout)")(
      "all-experiments", po::bool_switch(&all), "every experiment instead of one");
  if (!parse(args, d, "kvlab export --format csv|jsonl [--experiment E] [--out FILE] [--db FILE]")) return 0;
  if (format != "csv" && format != "jsonl")
    throw UsageError(fmt::format("unknown --format '{}'; expected csv or jsonl", format));
  auto db = open_ro(c.db);
  store::RunFilter f;
  f.status = "done";
  if (!all) f.experiment_id = store::resolve_experiment(*db, c.experiment).id;
  const auto rows = store::list_runs(*db, f);
  const std::string o = format == "csv" ? report::runs_csv(rows) : report::runs_jsonl(rows);
  emit(o, out_path);
  if (!out_path.empty() && out_path != "-")
    std::cerr << fmt::format("kvlab export: {} runs written to {}\n", rows.size(), out_path);
  return 0;
}

// ---------------------------------------------------------------- diff

int cmd_diff(const std::vector<std::string>& args) {
  Common c;
  std::vector<std::string> exps, streams, codecs;
  po::options_description d("kvlab diff: the same (stream, codec) cells of two experiments side by side");
  add_db(d, c);
  add_json(d, c);
  d.add_options()("experiments", po::value(&exps)->composing(), "EXP_A EXP_B (names or ids)")(
      "stream", po::value(&streams)->composing(), "only this stream (repeatable)")(
      "codec", po::value(&codecs)->composing(), "only this codec family or spec (repeatable)");
  po::positional_options_description pos;
  pos.add("experiments", 2);
  if (!parse(args, d, "kvlab diff EXP_A EXP_B [--db FILE] [--stream S] [--codec C] [--json]", &pos)) return 0;
  if (exps.size() != 2) throw UsageError(fmt::format("diff needs two experiments (EXP_A EXP_B), got {}", exps.size()));
  auto db = open_ro(c.db);
  auto a = store::load_experiment(*db, exps[0]);
  auto b = store::load_experiment(*db, exps[1]);
  const auto keep = [&](stats::ExperimentData& e) {
    std::vector<stats::RunResult> kept;
    for (auto& r : e.results) {
      if (!streams.empty() && std::find(streams.begin(), streams.end(), r.stream) == streams.end()) continue;
      if (!codecs.empty()) {
        const std::string fam = r.codec.substr(0, r.codec.find(':'));
        if (std::find(codecs.begin(), codecs.end(), r.codec) == codecs.end() &&
            std::find(codecs.begin(), codecs.end(), fam) == codecs.end() && !parse_codec_spec(r.codec).is_baseline())
          continue;
      }
      kept.push_back(std::move(r));
    }
    e.results = std::move(kept);
  };
  keep(a);
  keep(b);
  const auto dd = stats::diff_experiments(a, b);
  std::cout << (c.json ? report::diff_json(dd) : report::diff_text(dd));
  return 0;
}

// ---------------------------------------------------------------- imports

int cmd_import(const std::vector<std::string>& args, bool published) {
  Common c;
  std::string file, layer_mix;
  po::options_description d(published ? "kvlab import published: the published per-passage JSON as an experiment"
                                      : "kvlab import csv: run results from a CSV file as an experiment");
  add_db(d, c);
  add_json(d, c);
  d.add_options()("experiment,e", po::value(&c.experiment), "experiment name (default: the file name without extension)")(
      "layer-mix", po::value(&layer_mix),
      "layers per stream, e.g. sliding_window_kv=3,csa_pool_kv_ratio4=20,hca_pool_kv_ratio128=20 "
      "(default: the V4-Flash model config)")("file", po::value(&file), "input file");
  po::positional_options_description pos;
  pos.add("file", 1);
  if (!parse(args, d, published ? "kvlab import published FILE.json [--experiment NAME] [--db FILE]"
                                : "kvlab import csv FILE.csv [--experiment NAME] [--db FILE]",
             &pos))
    return 0;
  if (file.empty()) throw UsageError("missing input FILE");
  ingest::ImportOptions opt;
  opt.experiment = c.experiment;
  opt.layer_mix = layer_mix_from(layer_mix);
  opt.canonicalize = canonical_codec;
  auto db = store::open_database(c.db, store::OpenMode::kCreate);
  const auto out = published ? ingest::import_published(*db, file, opt) : ingest::import_csv(*db, file, opt);
  if (c.json) {
    std::cout << json({{"experiment", out.experiment}, {"id", out.experiment_id}, {"created", out.experiment_created},
                       {"sha256", out.file_sha256}, {"passages_added", out.passages_added},
                       {"runs_added", out.runs_added}, {"results_added", out.results_added},
                       {"audits_added", out.audits_added}, {"rows_existing", out.rows_existing}})
                     .dump(2)
              << "\n";
  } else if (!out.experiment_created && out.runs_added == 0 && out.audits_added == 0) {
    std::cout << fmt::format("{} (sha256 {}) is already imported as experiment '{}' (id {}): nothing added\n", file,
                             out.file_sha256.substr(0, 16), out.experiment, out.experiment_id);
  } else {
    std::cout << fmt::format(
        "{} experiment '{}' (id {}) from {} (sha256 {}): {} passages, {} runs, {} results, {} audits added; {} "
        "runs already present\n",
        out.experiment_created ? "created" : "updated", out.experiment, out.experiment_id, file,
        out.file_sha256.substr(0, 16), out.passages_added, out.runs_added, out.results_added, out.audits_added,
        out.rows_existing);
  }
  return 0;
}

// ---------------------------------------------------------------- bench query

int cmd_bench_query(const std::vector<std::string>& args) {
  Common c;
  std::string generate;
  int runs = 100000, qmax = 100, repeat = 3;
  po::options_description d("kvlab bench query: time best_q and stats on a large database");
  add_db(d, c);
  add_experiment(d, c);
  d.add_options()("generate", po::value(&generate), "first write a synthetic database of --runs runs to FILE")(
      "runs", po::value(&runs)->default_value(100000), "approximate number of runs to generate")(
      "qmax", po::value(&qmax)->default_value(100), "generated Q grid 1..qmax per lattice family")(
      "repeat", po::value(&repeat)->default_value(3), "timed repetitions (the best is reported)");
  if (!parse(args, d, "kvlab bench query [--generate FILE [--runs N]] [--db FILE] [--experiment E]")) return 0;
  using clock = std::chrono::steady_clock;
  if (!generate.empty()) {
    if (runs < 1 || qmax < 1) throw UsageError("--runs and --qmax must be >= 1");
    ingest::BenchmarkSpec spec;
    spec.qmax = qmax;
    const int per_passage = 3 * (1 + 2 * qmax);
    spec.passages = std::max(1, (runs + per_passage - 1) / per_passage);
    spec.bits_of = bits_fn("sweep");
    spec.layer_mix = layer_mix_from("");
    spec.git_commit = experiment::current_provenance().git_commit;
    const auto t0 = clock::now();
    auto wdb = store::open_database(generate, store::OpenMode::kCreate);
    const auto out = ingest::generate_benchmark(*wdb, spec);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    std::cout << fmt::format("generated {}: experiment '{}', {} passages, {} runs in {:.2f} s\n", generate,
                             out.experiment, out.passages_added, out.runs_added, s);
    c.db = generate;
    if (c.experiment.empty()) c.experiment = out.experiment;
  }
  double best_bq = 1e30, best_st = 1e30, best_load = 1e30;
  std::size_t n_rows = 0;
  for (int i = 0; i < std::max(1, repeat); ++i) {
    // best_q --threshold A --ci-safe: open, load, summarize, render (as the command does).
    auto t0 = clock::now();
    {
      auto db = open_ro(c.db);
      const auto data = store::load_experiment(*db, c.experiment);
      n_rows = data.results.size();
      const auto t1 = clock::now();
      best_load = std::min(best_load, std::chrono::duration<double>(t1 - t0).count());
      BestQArgs a;
      a.ci_safe = true;
      a.c.json = true;
      const auto s = summarize_for_best_q(data, a);
      const auto r = render_best_q(s, a);
      KVLAB_ASSERT(!r.text.empty());
    }
    best_bq = std::min(best_bq, std::chrono::duration<double>(clock::now() - t0).count());
    t0 = clock::now();
    {
      auto db = open_ro(c.db);
      const auto data = store::load_experiment(*db, c.experiment);
      StatsArgs a;
      a.c.json = true;
      const auto s = stats::summarize(data, {});
      const auto text = render_stats(s, a);
      KVLAB_ASSERT(!text.empty());
    }
    best_st = std::min(best_st, std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::cout << fmt::format("database {}: {} finished runs\n", c.db, n_rows);
  std::cout << fmt::format("  load_experiment             {:8.3f} s\n", best_load);
  std::cout << fmt::format("  best_q --threshold A --ci-safe {:8.3f} s  (target < 1 s)\n", best_bq);
  std::cout << fmt::format("  stats --json                {:8.3f} s  (target < 2 s)\n", best_st);
  std::cout << fmt::format("  (best of {} repetitions, in-process: open + load + summarize + render)\n",
                           std::max(1, repeat));
  return 0;
}

CommandRegistrar reg_stats{"stats", "per stream x codec x Q: rel-MSE, cosine, ratio vs FP8 with CI95; audits",
                           cmd_stats};
CommandRegistrar reg_best_q{"best_q", "max usable Q per stream (--threshold A|B|C, --ci-safe, --paired, --suggest)",
                            cmd_best_q};
CommandRegistrar reg_best_q2{"best-q", "same as best_q", cmd_best_q};
CommandRegistrar reg_best{"best", "lowest-bit point of any rate family that clears a threshold on a metric's ratio "
                          "(--family F --threshold A|B|C [--metric M] [--ci-safe] [--against BASE])", cmd_best};
CommandRegistrar reg_list{"list", "experiments (or runs with --runs)", cmd_list};
CommandRegistrar reg_show{"show", "one experiment or one run (--run ID)", cmd_show};
CommandRegistrar reg_export{"export", "finished runs as CSV or JSON lines", cmd_export};
CommandRegistrar reg_diff{"diff", "two experiments cell by cell (paired by passage, else Welch)", cmd_diff};
CommandRegistrar reg_import_pub{"import published", "import the published per-passage JSON",
                                [](const std::vector<std::string>& a) { return cmd_import(a, true); }};
CommandRegistrar reg_import_csv{"import csv", "import run results from CSV",
                                [](const std::vector<std::string>& a) { return cmd_import(a, false); }};
CommandRegistrar reg_refine{"refine", "queue the Q values best_q --suggest lists", cmd_refine};
CommandRegistrar reg_bench{"bench query", "time best_q and stats on a large (generated) database", cmd_bench_query};

}  // namespace
}  // namespace kvlab::cli
