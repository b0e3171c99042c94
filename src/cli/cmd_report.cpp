// `kvlab report findings` and `kvlab report max-usable-cr`: regenerate the
// markdown reports (and their SVG plots, written next to the markdown) from
// the result database. This file gathers inputs (database hash, experiment
// rows, provenance rows, run dates), calls stats::summarize and the
// report/ renderers, and writes the files; it formats nothing itself.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/options.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/hash.h"
#include "kvlab_version.h"
#include "report/frontier.h"
#include "report/published_link.h"
#include "report/reports.h"
#include "stats/frontier.h"
#include "stats/study.h"
#include "store/db.h"
#include "store/passage_sets.h"
#include "store/decisions.h"
#include "store/query.h"

namespace kvlab::cli {
namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;

struct ReportArgs {
  std::string db;
  std::string experiment;
  std::string out;
  std::string codec;
  std::string compare;
  std::string published_db;
  std::string published_experiment;
};

// The published experiment named by --published-db / --published-experiment
// (both or neither); nullopt when neither is given.
std::optional<report::PublishedInput> load_published(const ReportArgs& a) {
  if (a.published_db.empty() && a.published_experiment.empty()) return std::nullopt;
  if (a.published_db.empty() || a.published_experiment.empty()) {
    throw UsageError("--published-db and --published-experiment go together (e.g. --published-db results/kvlab.db "
                     "--published-experiment published_n8)");
  }
  KVLAB_CHECK(fs::exists(a.published_db), "published database '{}' does not exist; import the published files with "
              "`kvlab import published FILE --db {}` first", a.published_db, a.published_db);
  auto db = store::open_database(a.published_db, store::OpenMode::kReadOnly);
  const auto data = store::load_experiment(*db, a.published_experiment);
  report::PublishedInput p;
  p.experiment = data.info.name;
  p.database_file = fs::path(a.published_db).filename().string();
  p.params_json = data.info.params_json;
  if (!data.results.empty()) p.summary = stats::summarize(data);
  if (!p.summary) {  // aggregate-only: the per-passage import of the same runs, if the database has it
    for (const auto& e : store::list_experiments(*db)) {
      if (e.origin != "published" || e.name == p.experiment || e.counts.done == 0) continue;
      const auto other = store::load_experiment(*db, e.name);
      const auto os = stats::summarize(other);
      if (!report::same_published_runs(p, other.info.params_json, os)) continue;
      p.linked_experiment = other.info.name;
      p.linked_params_json = other.info.params_json;
      p.linked_summary = os;
      break;
    }
  }
  KVLAB_CHECK(p.summary || p.params_json.find("\"published_aggregate\"") != std::string::npos,
              "published experiment '{}' has neither finished runs nor published aggregates", p.experiment);
  return p;
}

void add_published(po::options_description& d, ReportArgs& a) {
  d.add_options()("published-db", po::value(&a.published_db),
                  "database holding an imported published experiment (`kvlab import published`)")(
      "published-experiment", po::value(&a.published_experiment),
      "the published experiment set beside this run in the 'Published vs this run' section");
}

void add_common(po::options_description& d, ReportArgs& a, const std::string& default_out) {
  d.add_options()("db", po::value(&a.db)->default_value(default_db()),
                  "database file (default $KVLAB_DB or results/kvlab.db)")(
      "experiment,e", po::value(&a.experiment),
      "experiment name or id (default: the only experiment in the database)")(
      "out,o", po::value(&a.out)->default_value(default_out),
      "markdown file to write; plots go next to it as <stem>_*.svg");
}

// Bits of a lattice (family, Q, D) in the experiment's accounting: the
// codec's own bits for kvlab sweeps, the published formula for imports.
// A rate outside a family's range (e.g. hadamard_lloyd bits = 5, probed when
// a bit class is scanned upward) has no bits: NaN, which equals no bit count,
// so every scan stops there instead of failing the report.
stats::BitsFn bits_fn(const std::string& origin) {
  auto f = codec::lattice_bits_fn(origin != "sweep");
  return [f](const std::string& family, int q, int dim) {
    try {
      return f(family, q, dim);
    } catch (const Error&) {
      return std::numeric_limits<double>::quiet_NaN();
    }
  };
}

std::string iso8601_utc(double unix_s) {
  const std::time_t t = static_cast<std::time_t>(std::floor(unix_s));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Run dates and provenance rows of the experiment's finished runs.
report::ReportProvenance gather_provenance(SQLite::Database& db, const stats::ExperimentData& data,
                                           const std::string& db_path, const std::string& db_sha) {
  report::ReportProvenance p;
  p.database_file = fs::path(db_path).filename().string();
  p.database_sha256 = db_sha;
  p.generator = fmt::format("kvlab {} ({})", KVLAB_VERSION, KVLAB_BUILD_GIT_COMMIT);
  store::RunFilter f;
  f.experiment_id = data.info.id;
  f.status = "done";
  const auto runs = store::list_runs(db, f);
  std::optional<double> first, last;
  std::set<std::int64_t> prov_ids;
  for (const auto& r : runs) {
    if (r.finished_at) {
      first = first ? std::min(*first, *r.finished_at) : *r.finished_at;
      last = last ? std::max(*last, *r.finished_at) : *r.finished_at;
    }
    if (r.provenance_id) prov_ids.insert(*r.provenance_id);
  }
  if (first) {
    p.first_run = iso8601_utc(*first);
    p.last_run = iso8601_utc(*last);
  }
  // Imported runs were made elsewhere: their finish time is the import's; the
  // imported file's own date (when it has one) is the date of the runs.
  if (data.info.origin != "sweep") {
    try {
      const auto j = nlohmann::json::parse(data.info.params_json);
      if (j.contains("import") && j["import"].contains("generated_at") && j["import"]["generated_at"].is_string()) {
        const std::string imported = first ? fmt::format("; imported {}", p.first_run) : "";
        p.first_run = p.last_run =
            j["import"]["generated_at"].get<std::string>() + " (date in the imported file" + imported + ")";
      }
    } catch (const nlohmann::json::exception&) {
      // load_experiment has validated params_json already; nothing to add.
    }
  }
  std::set<std::string> software, devices, host_kinds, hosts, weights, dtypes, torch, blas, gemm;
  for (const auto id : prov_ids) {
    std::map<std::string, std::string> row;
    for (const auto& [k, v] : store::provenance_row(db, id)) row[k] = v;
    // provenance_row() prints SQL NULL as "NULL": treat it as absent.
    auto get = [&](const char* k) { return row.count(k) && row[k] != "NULL" ? row[k] : std::string(); };
    if (!get("kvlab_version").empty() || !get("git_commit").empty()) {
      const std::string dirty = get("git_dirty") == "1" ? ", dirty" : get("git_dirty") == "-1" ? ", dirty unknown" : "";
      const std::string v = get("kvlab_version");
      const bool plain = !v.empty() && std::isdigit(static_cast<unsigned char>(v[0]));
      const std::string commit = get("git_commit");
      if (commit.empty() || commit == "unknown") {
        software.insert(fmt::format("{}{}", plain ? "kvlab " : "", v));
      } else {
        software.insert(fmt::format("{}{} (git {}{})", plain ? "kvlab " : "", v, commit, dirty));
      }
    }
    for (auto& [set, key] : std::vector<std::pair<std::set<std::string>*, const char*>>{
             {&devices, "device"}, {&host_kinds, "host_kind"}, {&hosts, "host_json"}, {&weights, "weights_json"},
             {&dtypes, "stream_dtype"}, {&torch, "torch_version"}, {&blas, "blas"}, {&gemm, "gemm"}}) {
      const std::string v = get(key);
      if (!v.empty()) set->insert(v);
    }
  }
  auto vec = [](const std::set<std::string>& s) { return std::vector<std::string>(s.begin(), s.end()); };
  p.run_software = vec(software);
  p.devices = vec(devices);
  p.host_kinds = vec(host_kinds);
  p.hosts = vec(hosts);
  p.weights = vec(weights);
  p.stream_dtypes = vec(dtypes);
  p.torch_versions = vec(torch);
  p.blas = vec(blas);
  p.gemm = vec(gemm);
  return p;
}

void write_file(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    KVLAB_CHECK(out.good(), "cannot write '{}': check that the directory is writable", tmp.string());
    out << content;
    out.close();
    KVLAB_CHECK(out.good(), "writing '{}' failed (disk full?)", tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  KVLAB_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp.string(), path.string(), ec.message());
}

// Writes the markdown and its plots; returns the paths written.
std::vector<std::string> write_report(const report::RenderedReport& r, const fs::path& out) {
  const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  KVLAB_CHECK(!ec, "cannot create the output directory '{}': {}", dir.string(), ec.message());
  std::vector<std::string> written;
  for (const auto& f : r.files) {
    write_file(dir / f.name, f.content);
    written.push_back((dir / f.name).string());
  }
  write_file(out, r.markdown);
  written.insert(written.begin(), out.string());
  return written;
}

// The file stem of --out ("reports/FINDINGS_N8.md" -> "FINDINGS_N8").
std::string stem_of(const std::string& out) {
  const fs::path p(out);
  if (out.empty() || !p.has_filename()) {
    throw UsageError(fmt::format("--out '{}' must name a file, e.g. reports/FINDINGS_N8.md", out));
  }
  if (p.extension() != ".md") {
    throw UsageError(fmt::format("--out '{}' must end in .md (the plots are written next to it)", out));
  }
  return p.stem().string();
}

struct Loaded {
  std::string sha;
  std::unique_ptr<SQLite::Database> db;
  stats::ExperimentData data;
};

Loaded load(const ReportArgs& a) {
  KVLAB_CHECK(fs::exists(a.db), "database '{}' does not exist; run `kvlab queue` and `kvlab run`, or "
              "`kvlab import published`, first (or pass --db)", a.db);
  Loaded l;
  // Hash before opening, so the report names the bytes it was computed from.
  l.sha = sha256_file(a.db);
  l.db = store::open_database(a.db, store::OpenMode::kReadOnly);
  l.data = store::load_experiment(*l.db, a.experiment);
  KVLAB_CHECK(!l.data.results.empty(), "experiment '{}' has no finished runs yet ({} queued, {} running, {} failed); "
              "run `kvlab run --db {}` first", l.data.info.name, l.data.info.counts.queued,
              l.data.info.counts.running, l.data.info.counts.failed, a.db);
  return l;
}

// What a findings or max-usable report is rendered from: the summary (in
// the experiment's bits accounting), the provenance, and the options both
// kinds share (plot stem, published input, bits function, decisions).
template <class Options>
struct StudyReport {
  stats::StudySummary s;
  report::ReportProvenance prov;
  Options o;
};

template <class Options>
StudyReport<Options> study_report(const ReportArgs& a) {
  const std::string stem = stem_of(a.out);
  auto l = load(a);
  stats::SummaryOptions opt;
  opt.bits_of = bits_fn(l.data.info.origin);
  StudyReport<Options> r{stats::summarize(l.data, opt), gather_provenance(*l.db, l.data, a.db, l.sha), {}};
  r.o.file_stem = stem;
  r.o.published = load_published(a);
  r.o.bits_of = opt.bits_of;
  r.o.decisions = store::load_decisions(*l.db, l.data.info.id);
  return r;
}

void print_written(const std::vector<std::string>& written) {
  std::cout << fmt::format("wrote {}", written[0]);
  if (written.size() > 1) {
    std::cout << " and";
    for (std::size_t i = 1; i < written.size(); ++i) std::cout << " " << written[i];
  }
  std::cout << "\n";
}

int cmd_findings(const std::vector<std::string>& args) {
  ReportArgs a;
  po::options_description d("kvlab report findings: the findings of one experiment, regenerated from the database");
  add_common(d, a, "reports/FINDINGS.md");
  add_published(d, a);
  d.add_options()("codec", po::value(&a.codec),
                  "codec the findings are about (default: the experiment's [report] codec, e.g. e8:q=38)")(
      "compare", po::value(&a.compare), "second codec compared at matched Q (default: the experiment's [report] compare)");
  if (!parse(args, d, "kvlab report findings --db FILE --experiment NAME --out reports/FINDINGS_N8.md")) return 0;
  auto r = study_report<report::FindingsOptions>(a);
  r.o.codec = a.codec;
  r.o.compare = a.compare;
  print_written(write_report(report::render_findings(r.s, r.prov, r.o), a.out));
  return 0;
}

int cmd_max_usable(const std::vector<std::string>& args) {
  ReportArgs a;
  po::options_description d(
      "kvlab report max-usable-cr: max usable compression ratio of a Q sweep, regenerated from the database");
  add_common(d, a, "reports/MAX_USABLE_CR.md");
  add_published(d, a);
  if (!parse(args, d, "kvlab report max-usable-cr --db FILE --experiment NAME --out reports/MAX_USABLE_CR.md")) {
    return 0;
  }
  const auto r = study_report<report::MaxUsableOptions>(a);
  print_written(write_report(report::render_max_usable_cr(r.s, r.prov, r.o), a.out));
  return 0;
}

int cmd_frontier_report(const std::vector<std::string>& args) {
  ReportArgs a;
  po::options_description d(
      "kvlab report frontier: rel-MSE vs bits/dim of every codec per stream, the bounds, the entropy rates and the "
      "matched-rate table, regenerated from the database");
  add_common(d, a, "reports/FRONTIER.md");
  if (!parse(args, d, "kvlab report frontier --db FILE --experiment NAME --out reports/FRONTIER.md")) return 0;
  const std::string stem = stem_of(a.out);
  auto l = load(a);
  const auto f = stats::compute_frontier(l.data);
  const auto prov = gather_provenance(*l.db, l.data, a.db, l.sha);
  report::FrontierReportOptions o;
  o.file_stem = stem;
  o.command = "kvlab report frontier --experiment " + l.data.info.name;
  o.passages = store::load_passage_texts(*l.db, l.data.info.id);
  o.passage_sets = store::load_passage_sets(*l.db);
  print_written(write_report(report::render_frontier(f, prov, o), a.out));
  return 0;
}

CommandRegistrar reg_findings{"report findings",
                              "write FINDINGS markdown + SVG plots for one experiment from the database",
                              cmd_findings};
CommandRegistrar reg_max_usable{"report max-usable-cr",
                                "write the max-usable-compression-ratio markdown + SVG plot of a Q sweep",
                                cmd_max_usable};
CommandRegistrar reg_frontier_report{"report frontier",
                                     "write FRONTIER markdown + one SVG per stream (rel-MSE vs bits/dim, bounds, "
                                     "matched-rate table) from the database",
                                     cmd_frontier_report};

}  // namespace
}  // namespace kvlab::cli
