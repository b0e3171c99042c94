// The browsing commands' JSON renderers; see stats_json_runs.h.
#include "report/stats_json_runs.h"

#include <nlohmann/json.hpp>

#include "report/stats_json.h"

namespace kvlab::report {
namespace {

using nlohmann::json;

json jsum(const stats::Summary& s) { return summary_json(s); }
template <class T>
json jopt(const std::optional<T>& v) { return optional_json(v); }

}  // namespace

std::string experiments_json(const std::vector<store::ExperimentRow>& rows) {
  json j = json::array();
  for (const auto& r : rows)
    j.push_back({{"id", r.id}, {"name", r.name}, {"origin", r.origin}, {"runs", r.counts.total()},
                 {"passages", r.passages}, {"queued", r.counts.queued}, {"running", r.counts.running},
                 {"done", r.counts.done}, {"failed", r.counts.failed}, {"created_at", r.created_at}});
  return j.dump(2) + "\n";
}

std::string runs_json(const std::vector<store::RunRow>& rows) {
  json j = json::array();
  for (const auto& r : rows)
    j.push_back({{"id", r.run_id}, {"experiment", r.experiment}, {"passage", r.passage}, {"stream", r.stream},
                 {"codec", r.codec}, {"q", jopt(r.q)}, {"replicate", r.replicate}, {"status", r.status},
                 {"attempts", r.attempts}, {"bits_per_vector", jopt(r.bits_per_vector)}, {"rel_mse", jopt(r.rel_mse)},
                 {"cos_sim", jopt(r.cos_sim)}, {"error", jopt(r.error)}});
  return j.dump(2) + "\n";
}

std::string run_json(const store::RunRow& r, const ProvenanceFields& provenance) {
  json j = {{"id", r.run_id}, {"experiment", r.experiment}, {"passage", r.passage}, {"passage_hash", r.passage_hash},
            {"stream", r.stream}, {"codec", r.codec}, {"q", jopt(r.q)}, {"replicate", r.replicate},
            {"status", r.status}, {"attempts", r.attempts}, {"bits_per_vector", jopt(r.bits_per_vector)},
            {"rel_mse", jopt(r.rel_mse)}, {"cos_sim", jopt(r.cos_sim)}, {"wall_s", jopt(r.wall_s)},
            {"error", jopt(r.error)}};
  json p = json::object();
  for (const auto& [k, v] : provenance) p[k] = v;
  j["provenance"] = p;
  return j.dump(2) + "\n";
}

std::string experiment_json(const stats::ExperimentData& data, const std::vector<std::string>& streams,
                            const std::vector<std::string>& codecs) {
  json j;
  j["id"] = data.info.id;
  j["name"] = data.info.name;
  j["origin"] = data.info.origin;
  j["spec_hash"] = data.info.spec_hash;
  j["created_at"] = data.info.created_at;
  j["params"] = json::parse(data.info.params_json);
  j["runs"] = {{"queued", data.info.counts.queued}, {"running", data.info.counts.running},
               {"done", data.info.counts.done}, {"failed", data.info.counts.failed}};
  json ps = json::array();
  for (const auto& p : data.passages)
    ps.push_back(
        {{"id", p.id}, {"idx", p.idx}, {"name", p.name}, {"content_hash", p.content_hash}, {"source", p.source}});
  j["passages"] = ps;
  j["streams"] = streams;
  j["codecs"] = codecs;
  return j.dump(2) + "\n";
}

std::string diff_json(const stats::ExperimentDiff& dd) {
  json j;
  j["a"] = dd.name_a;
  j["b"] = dd.name_b;
  j["paired"] = dd.paired;
  j["method"] = dd.paired ? "paired by passage" : "Welch";
  j["shared_passages"] = dd.shared_passages;
  json cells = json::array();
  for (const auto& x : dd.cells) {
    json r = {{"stream", x.stream}, {"codec", x.codec}, {"q", jopt(x.q)}, {"rel_mse_a", jsum(x.a)},
              {"rel_mse_b", jsum(x.b)}, {"ratio", x.ratio}, {"bits_a", x.bits_a}, {"bits_b", x.bits_b}};
    r["paired_ratio"] = x.paired_ratio ? jsum(*x.paired_ratio) : json(nullptr);
    r["difference"] = {{"method", x.difference.method == stats::Comparison::Method::kPaired ? "paired" : "welch"},
                       {"diff", x.difference.diff}, {"ci95_hw", jopt(x.difference.ci95_hw)},
                       {"df", jopt(x.difference.df)}, {"p_value", jopt(x.difference.p_value)},
                       {"significant", x.difference.significant()}};
    r["ratio_vs_fp8_a"] = x.ratio_vs_fp8_a ? jsum(*x.ratio_vs_fp8_a) : json(nullptr);
    r["ratio_vs_fp8_b"] = x.ratio_vs_fp8_b ? jsum(*x.ratio_vs_fp8_b) : json(nullptr);
    cells.push_back(r);
  }
  j["cells"] = cells;
  j["only_a"] = dd.only_a;
  j["only_b"] = dd.only_b;
  return j.dump(2) + "\n";
}

std::string runs_jsonl(const std::vector<store::RunRow>& rows) {
  std::string o;
  for (const auto& r : rows) {
    json j = {{"experiment", r.experiment}, {"run_id", r.run_id}, {"passage", r.passage},
              {"passage_hash", r.passage_hash}, {"stream", r.stream}, {"codec", r.codec}, {"q", jopt(r.q)},
              {"replicate", r.replicate}, {"bits_per_vector", jopt(r.bits_per_vector)},
              {"code_bytes", jopt(r.code_bytes)}, {"rel_mse", jopt(r.rel_mse)}, {"cos_sim", jopt(r.cos_sim)},
              {"n_vectors", jopt(r.n_vectors)}, {"dim", jopt(r.dim)}, {"wall_s", jopt(r.wall_s)},
              {"provenance_id", jopt(r.provenance_id)}};
    o += j.dump() + "\n";
  }
  return o;
}

}  // namespace kvlab::report
