// Regression golden file: compute, (de)serialise, compare (see golden.h).
#include "experiment/golden.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "common/error.h"
#include "experiment/executor.h"
#include "experiment/spec.h"
#include "experiment/worker.h"
#include "kvlab_version.h"
#include "store/db.h"
#include "store/query.h"
#include "store/runs.h"

namespace kvlab::experiment {

namespace fs = std::filesystem;

Golden compute_golden(const std::string& spec_path, const std::string& executor) {
  const auto spec = load_spec(spec_path);
  // A private database in a fresh temporary folder.
  std::string tmpl = (fs::temp_directory_path() / "kvlab-golden-XXXXXX").string();
  KVLAB_CHECK(mkdtemp(tmpl.data()) != nullptr, "cannot create a temporary folder under {}",
              fs::temp_directory_path().string());
  const std::string db_path = tmpl + "/golden.db";
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{tmpl};
  std::int64_t exp_id = 0;
  {
    auto db = store::open_database(db_path, store::OpenMode::kCreate);
    exp_id = store::queue_experiment(*db, spec.plan()).experiment_id;
  }
  WorkerOptions opt;
  opt.db_path = db_path;
  opt.executor = executor;
  opt.executor_factory = [executor] { return make_executor(executor); };
  opt.max_attempts = 1;
  opt.progress = WorkerOptions::Progress::kNone;
  run_workers(opt);

  auto db = store::open_database(db_path, store::OpenMode::kReadOnly);
  Golden g;
  const std::string src = fs::weakly_canonical(KVLAB_SOURCE_DIR).string();
  const std::string abs = fs::weakly_canonical(fs::absolute(spec_path)).string();
  g.spec = abs.rfind(src + "/", 0) == 0 ? abs.substr(src.size() + 1) : abs;
  g.executor = executor;
  store::RunFilter f;
  f.experiment_id = exp_id;
  for (const auto& r : store::list_runs(*db, f)) {
    if (r.status != "done")
      throw Error(fmt::format("golden: run {} ({} / {} / {}) ended '{}': {}", r.run_id, r.passage, r.stream, r.codec,
                              r.status, r.error.value_or("")));
    GoldenRun gr;
    gr.passage = r.passage;
    gr.stream = r.stream;
    gr.codec = r.codec;
    gr.bits_per_vector = r.bits_per_vector.value_or(0);
    gr.code_bytes = r.code_bytes.value_or(0);
    gr.rel_mse = r.rel_mse.value_or(0);
    gr.cos_sim = r.cos_sim.value_or(0);
    gr.n_vectors = r.n_vectors.value_or(0);
    gr.dim = r.dim.value_or(0);
    g.runs.push_back(gr);
  }
  for (const auto& a : store::list_audits(*db, exp_id)) {
    GoldenAudit ga;
    ga.passage = a.passage;
    ga.stream = a.audit.stream;
    ga.excess_kurtosis_abs = a.audit.excess_kurtosis_abs;
    ga.isotropy_variance_ratio = a.audit.isotropy_variance_ratio;
    ga.hadamard_post_variance_ratio = a.audit.hadamard_post_variance_ratio;
    ga.rms_wasserstein2_over_sigma_per_dim = a.audit.rms_wasserstein2_over_sigma_per_dim;
    ga.n_vectors = a.audit.n_vectors;
    ga.dim = a.audit.dim;
    g.audits.push_back(ga);
  }
  std::sort(g.runs.begin(), g.runs.end(), [](const GoldenRun& a, const GoldenRun& b) {
    return std::tie(a.passage, a.stream, a.codec) < std::tie(b.passage, b.stream, b.codec);
  });
  std::sort(g.audits.begin(), g.audits.end(), [](const GoldenAudit& a, const GoldenAudit& b) {
    return std::tie(a.passage, a.stream) < std::tie(b.passage, b.stream);
  });
  KVLAB_CHECK(!g.runs.empty(), "golden: spec {} produced no runs", spec_path);
  return g;
}

nlohmann::json golden_to_json(const Golden& g) {
  nlohmann::json runs = nlohmann::json::array(), audits = nlohmann::json::array();
  for (const auto& r : g.runs)
    runs.push_back({{"passage", r.passage}, {"stream", r.stream}, {"codec", r.codec},
                    {"bits_per_vector", r.bits_per_vector}, {"code_bytes", r.code_bytes}, {"rel_mse", r.rel_mse},
                    {"cos_sim", r.cos_sim}, {"n_vectors", r.n_vectors}, {"dim", r.dim}});
  for (const auto& a : g.audits)
    audits.push_back({{"passage", a.passage},
                      {"stream", a.stream},
                      {"excess_kurtosis_abs", a.excess_kurtosis_abs},
                      {"isotropy_variance_ratio", a.isotropy_variance_ratio},
                      {"hadamard_post_variance_ratio", a.hadamard_post_variance_ratio},
                      {"rms_wasserstein2_over_sigma_per_dim", a.rms_wasserstein2_over_sigma_per_dim},
                      {"n_vectors", a.n_vectors},
                      {"dim", a.dim}});
  return {{"about", "per-run results of the spec on the embedded default; rewrite with `kvlab golden update`"},
          {"spec", g.spec},
          {"executor", g.executor},
          {"tolerance",
           {{"rel_mse_relative", g.tolerance.rel_mse_rel},
            {"cos_sim_absolute", g.tolerance.cos_sim_abs},
            {"audit_relative", g.tolerance.audit_rel}}},
          {"runs", runs},
          {"audits", audits}};
}

Golden golden_from_json(const nlohmann::json& j) {
  Golden g;
  try {
    g.spec = j.at("spec").get<std::string>();
    g.executor = j.at("executor").get<std::string>();
    const auto& t = j.at("tolerance");
    g.tolerance.rel_mse_rel = t.at("rel_mse_relative").get<double>();
    g.tolerance.cos_sim_abs = t.at("cos_sim_absolute").get<double>();
    g.tolerance.audit_rel = t.at("audit_relative").get<double>();
    for (const auto& r : j.at("runs")) {
      GoldenRun x;
      x.passage = r.at("passage").get<std::string>();
      x.stream = r.at("stream").get<std::string>();
      x.codec = r.at("codec").get<std::string>();
      x.bits_per_vector = r.at("bits_per_vector").get<double>();
      x.code_bytes = r.at("code_bytes").get<long long>();
      x.rel_mse = r.at("rel_mse").get<double>();
      x.cos_sim = r.at("cos_sim").get<double>();
      x.n_vectors = r.at("n_vectors").get<long long>();
      x.dim = r.at("dim").get<long long>();
      g.runs.push_back(x);
    }
    for (const auto& a : j.at("audits")) {
      GoldenAudit x;
      x.passage = a.at("passage").get<std::string>();
      x.stream = a.at("stream").get<std::string>();
      x.excess_kurtosis_abs = a.at("excess_kurtosis_abs").get<double>();
      x.isotropy_variance_ratio = a.at("isotropy_variance_ratio").get<double>();
      x.hadamard_post_variance_ratio = a.at("hadamard_post_variance_ratio").get<double>();
      x.rms_wasserstein2_over_sigma_per_dim = a.at("rms_wasserstein2_over_sigma_per_dim").get<double>();
      x.n_vectors = a.at("n_vectors").get<long long>();
      x.dim = a.at("dim").get<long long>();
      g.audits.push_back(x);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("golden file is malformed: {}", e.what()));
  }
  return g;
}

void write_golden(const Golden& g, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    KVLAB_CHECK(out.good(), "cannot write golden file '{}'", tmp);
    out << golden_to_json(g).dump(1) << "\n";
    KVLAB_CHECK(out.good(), "writing golden file '{}' failed", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  KVLAB_CHECK(!ec, "cannot move {} to {}: {}", tmp, path, ec.message());
}

Golden read_golden(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KVLAB_CHECK(in.good(), "cannot read golden file '{}'; create it with `kvlab golden update`", path);
  try {
    return golden_from_json(nlohmann::json::parse(in));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("golden file '{}' is not valid JSON: {}", path, e.what()));
  }
}

namespace {

bool rel_close(double a, double b, double tol) {
  return std::fabs(a - b) <= tol * std::max(std::fabs(a), std::fabs(b)) || a == b;
}

}  // namespace

std::vector<std::string> compare_golden(const Golden& expected, const Golden& actual) {
  std::vector<std::string> out;
  const auto& t = expected.tolerance;
  std::map<std::tuple<std::string, std::string, std::string>, const GoldenRun*> act;
  for (const auto& r : actual.runs) act[{r.passage, r.stream, r.codec}] = &r;
  for (const auto& e : expected.runs) {
    const auto key = std::make_tuple(e.passage, e.stream, e.codec);
    auto it = act.find(key);
    const std::string name = fmt::format("run {} / {} / {}", e.passage, e.stream, e.codec);
    if (it == act.end()) {
      out.push_back(name + ": missing from the rerun");
      continue;
    }
    const GoldenRun& a = *it->second;
    act.erase(it);
    if (a.bits_per_vector != e.bits_per_vector)
      out.push_back(fmt::format("{}: bits_per_vector {} -> {} (must be exact)", name, e.bits_per_vector, a.bits_per_vector));
    if (a.code_bytes != e.code_bytes)
      out.push_back(fmt::format("{}: code_bytes {} -> {} (must be exact)", name, e.code_bytes, a.code_bytes));
    if (a.n_vectors != e.n_vectors || a.dim != e.dim)
      out.push_back(fmt::format("{}: shape {}x{} -> {}x{} (must be exact)", name, e.n_vectors, e.dim, a.n_vectors, a.dim));
    if (!rel_close(e.rel_mse, a.rel_mse, t.rel_mse_rel))
      out.push_back(fmt::format("{}: rel_mse {:.9g} -> {:.9g} (relative change {:.3g} > tolerance {:.3g})", name,
                                e.rel_mse, a.rel_mse, std::fabs(a.rel_mse - e.rel_mse) / std::fabs(e.rel_mse),
                                t.rel_mse_rel));
    if (!(std::fabs(e.cos_sim - a.cos_sim) <= t.cos_sim_abs))
      out.push_back(fmt::format("{}: cos_sim {:.9g} -> {:.9g} (change {:.3g} > tolerance {:.3g})", name, e.cos_sim,
                                a.cos_sim, std::fabs(a.cos_sim - e.cos_sim), t.cos_sim_abs));
  }
  for (const auto& [key, r] : act)
    out.push_back(fmt::format("run {} / {} / {}: new in the rerun, not in the golden file", r->passage, r->stream,
                              r->codec));
  std::map<std::pair<std::string, std::string>, const GoldenAudit*> aud;
  for (const auto& a : actual.audits) aud[{a.passage, a.stream}] = &a;
  for (const auto& e : expected.audits) {
    const std::string name = fmt::format("audit {} / {}", e.passage, e.stream);
    auto it = aud.find({e.passage, e.stream});
    if (it == aud.end()) {
      out.push_back(name + ": missing from the rerun");
      continue;
    }
    const GoldenAudit& a = *it->second;
    aud.erase(it);
    const std::pair<const char*, std::pair<double, double>> fields[] = {
        {"excess_kurtosis_abs", {e.excess_kurtosis_abs, a.excess_kurtosis_abs}},
        {"isotropy_variance_ratio", {e.isotropy_variance_ratio, a.isotropy_variance_ratio}},
        {"hadamard_post_variance_ratio", {e.hadamard_post_variance_ratio, a.hadamard_post_variance_ratio}},
        {"rms_wasserstein2_over_sigma_per_dim",
         {e.rms_wasserstein2_over_sigma_per_dim, a.rms_wasserstein2_over_sigma_per_dim}},
    };
    for (const auto& [field, v] : fields)
      if (!rel_close(v.first, v.second, t.audit_rel))
        out.push_back(fmt::format("{}: {} {:.9g} -> {:.9g} (relative tolerance {:.3g})", name, field, v.first, v.second,
                                  t.audit_rel));
    if (a.n_vectors != e.n_vectors || a.dim != e.dim)
      out.push_back(fmt::format("{}: shape {}x{} -> {}x{}", name, e.n_vectors, e.dim, a.n_vectors, a.dim));
  }
  for (const auto& [key, a] : aud)
    out.push_back(fmt::format("audit {} / {}: new in the rerun, not in the golden file", a->passage, a->stream));
  return out;
}

}  // namespace kvlab::experiment
