// The JSON renderers of the query commands; see stats_json.h.
#include "report/stats_json.h"

#include <cmath>

#include <fmt/format.h>

namespace kvlab::report {

nlohmann::json summary_json(const stats::Summary& s) {
  nlohmann::json j;
  j["n"] = s.n;
  j["mean"] = std::isfinite(s.mean) ? nlohmann::json(s.mean) : nlohmann::json(nullptr);
  j["sd"] = s.sd ? nlohmann::json(*s.sd) : nlohmann::json(nullptr);
  j["ci95_hw"] = s.ci95_hw ? nlohmann::json(*s.ci95_hw) : nlohmann::json(nullptr);
  return j;
}

namespace {

using nlohmann::json;

json jsum(const stats::Summary& s) { return summary_json(s); }
template <class T>
json jopt(const std::optional<T>& v) { return optional_json(v); }

}  // namespace

std::string stats_json(const stats::StudySummary& s, const std::string& rows_kind, bool per_passage) {
  json rows = json::array();
  const bool cells = rows_kind == "cells", lw = rows_kind == "layer_weighted", audit = rows_kind == "audit";
  for (const auto& c : s.cells) {
    if (!cells) break;
    json r;
    r["kind"] = "cell";
    r["stream"] = c.stream;
    r["codec"] = c.codec;
    r["family"] = c.family;
    r["q"] = jopt(c.q);
    r["n"] = c.n_passages;
    r["bits_per_vector"] = c.bits_per_vector;
    r["dim"] = c.dim;
    r["cr_vs_fp8"] = jopt(c.cr_vs_fp8);
    r["cr_vs_bf16"] = c.cr_vs_bf16;
    r["bit_saving"] = jopt(c.bit_saving);
    r["rel_mse"] = jsum(c.rel_mse);
    r["cos_sim"] = jsum(c.cos_sim);
    r["ratio_vs_fp8"] = c.ratio_vs_fp8 ? jsum(*c.ratio_vs_fp8) : json(nullptr);
    r["bits_per_dim"] = c.bits_per_dim;
    json ms = json::object(), rs = json::object();
    for (const auto& [m, v] : c.metrics) ms[m] = jsum(v);
    for (const auto& [m, v] : c.metric_ratios) rs[m] = jsum(v);
    r["metrics"] = ms;
    r["metric_ratios"] = rs;
    if (per_passage) {
      json pp = json::array();
      for (const auto& p : c.passages)
        pp.push_back({{"passage", p.passage}, {"rel_mse", p.rel_mse}, {"fp8_rel_mse", p.fp8_rel_mse},
                      {"ratio", p.ratio}});
      r["per_passage"] = pp;
    }
    rows.push_back(r);
  }
  for (const auto& l : s.layer_weighted) {
    if (!lw) break;
    json r;
    r["kind"] = "layer_weighted";
    r["stream"] = "layer_weighted";
    r["codec"] = l.codec;
    r["family"] = l.family;
    r["q"] = jopt(l.q);
    r["complete"] = l.complete;
    r["missing_streams"] = l.missing_streams;
    r["n"] = l.paired.n;
    r["bits_per_vector"] = l.weighted_bits;
    r["cr_vs_fp8"] = l.cr_vs_fp8;
    r["cr_vs_bf16"] = l.cr_vs_bf16;
    r["bit_saving"] = l.bit_saving;
    // ci95_hw: the published root-sum-square; paired: per-passage interval.
    r["ratio_vs_fp8"] = {{"mean", l.complete ? json(l.mean) : json(nullptr)},
                         {"ci95_hw", jopt(l.rss_hw)},
                         {"ci95_hw_method", "root-sum-square of w_s * hw_s (published)"}};
    r["ratio_vs_fp8_paired"] = jsum(l.paired);
    json w = json::object();
    for (const auto& sw : s.weights) w[sw.stream] = sw.weight;
    r["weights"] = w;
    rows.push_back(r);
  }
  for (const auto& au : s.audits)
    for (const auto& m : au.metrics) {
      if (!audit) break;
      json r;
      r["kind"] = "audit";
      r["stream"] = au.stream;
      r["metric"] = m.metric;
      r["gate"] = m.gate;
      r["value"] = jsum(m.value);
      r["fires"] = m.fires;
      r["passages_firing"] = m.passages_firing;
      r["n"] = m.value.n;
      rows.push_back(r);
    }
  return rows.dump(2) + "\n";}

std::string best_q_json(const stats::StudySummary& s, const BestQSelection& sel) {
  const auto& th = sel.threshold;
  const auto view = sel.view;
  const auto& fams = sel.families;
  json j;
  j["experiment"] = s.experiment.name;
  j["threshold"] = th.name;
  j["factor"] = th.factor;
  j["view"] = stats::to_string(view);
  json streams = json::array();
  for (const auto& st : s.streams)
    for (const auto& f : fams) {
      const auto* b = s.find_best_q(st, f, th.name, view);
      if (!b) continue;
      json r;
      r["stream"] = st;
      r["family"] = f;
      r["admissible"] = b->admissible;
      r["q_min"] = jopt(b->q_min);
      r["q_recommended"] = jopt(b->q_recommended);
      r["codec"] = b->q_min ? json(fmt::format("{}:q={}", f, *b->q_min)) : json(nullptr);
      r["bits_per_vector"] = b->admissible ? json(b->bits) : json(nullptr);
      r["fp8_bits_per_vector"] = jopt(b->fp8_bits);
      r["cr_vs_fp8"] = b->admissible ? jopt(b->cr_vs_fp8) : json(nullptr);
      r["cr_vs_bf16"] = b->admissible ? json(b->cr_vs_bf16) : json(nullptr);
      r["bit_saving"] = b->admissible ? jopt(b->bit_saving) : json(nullptr);
      r["margin"] = b->admissible ? json(b->margin) : json(nullptr);
      r["budget"] = b->admissible ? json(b->budget) : json(nullptr);
      r["used"] = b->admissible ? json(b->used) : json(nullptr);
      r["max_swept_q"] = b->max_swept_q;
      r["note"] = b->note;
      json checks = json::array();
      for (const auto& c : b->checks)
        checks.push_back({{"q", c.q}, {"bits", c.bits}, {"used", c.used}, {"budget", c.budget}, {"fits", c.fits},
                          {"margin", c.margin}});
      r["checks"] = checks;
      streams.push_back(r);
    }
  j["streams"] = streams;
  json strategies = json::array();
  for (const auto& f : fams)
    for (const char* name : {"uniform", "per_stream"}) {
      const auto* st = s.find_strategy(name, f, th.name, view);
      if (!st) continue;
      json r;
      r["name"] = st->name;
      r["family"] = f;
      r["admissible"] = st->admissible;
      r["uniform_q"] = jopt(st->uniform_q);
      json ss = json::array();
      for (const auto& x : st->streams)
        ss.push_back({{"stream", x.stream}, {"weight", x.weight}, {"q", jopt(x.q)},
                      {"bits_per_vector", st->admissible ? json(x.bits) : json(nullptr)}});
      r["streams"] = ss;
      r["weighted_bits"] = st->admissible ? json(st->weighted_bits) : json(nullptr);
      r["cr_vs_fp8"] = st->admissible ? json(st->cr_vs_fp8) : json(nullptr);
      r["cr_vs_bf16"] = st->admissible ? json(st->cr_vs_bf16) : json(nullptr);
      r["bit_saving"] = st->admissible ? json(st->bit_saving) : json(nullptr);
      r["note"] = st->note;
      strategies.push_back(r);
    }
  j["strategies"] = strategies;
  json mono = json::array();
  for (const auto& m : s.monotonicity) mono.push_back({{"stream", m.stream}, {"family", m.family}, {"q_lo", m.q_lo},
                                                       {"q_hi", m.q_hi}, {"message", m.message}});
  j["monotonicity_warnings"] = mono;
  if (sel.suggest) {
    json sg = json::array();
    for (const auto& x : s.suggestions)
      if (std::find(fams.begin(), fams.end(), x.family) != fams.end())
        sg.push_back({{"stream", x.stream}, {"codec", x.codec()}, {"family", x.family}, {"q", x.q},
                      {"bits_per_vector", x.bits}, {"reason", x.reason}});
    j["suggestions"] = sg;
  }
  j["warnings"] = s.warnings;
  return j.dump(2) + "\n";
}

namespace {

json candidate_json(const stats::BestCandidate& k) {
  return {{"codec", k.codec},
          {"variant", k.variant},
          {"rate", k.rate},
          {"bits_per_vector", k.bits_per_vector},
          {"bits_per_dim", k.bits_per_dim},
          {"dim", k.dim},
          {"ratio", jsum(k.ratio)},
          {"used", std::isfinite(k.used) ? json(k.used) : json(nullptr)},
          {"has_interval", k.has_interval},
          {"clears", k.clears}};
}

}  // namespace

std::string best_json(const stats::BestResult& b) {
  json j;
  j["experiment"] = b.experiment;
  j["family"] = b.family;
  j["metric"] = b.metric;
  j["baseline"] = b.baseline;
  j["threshold"] = b.threshold.name;
  j["factor"] = b.threshold.factor;
  j["view"] = b.ci_safe ? "ci_safe" : "point";
  json streams = json::array();
  for (const auto& s : b.streams) {
    json r;
    r["stream"] = s.stream;
    r["admissible"] = s.best.has_value();
    r["best"] = s.best ? candidate_json(*s.best) : json(nullptr);
    r["baseline_bits_per_vector"] = s.baseline_bits;
    json cands = json::array();
    for (const auto& k : s.candidates) cands.push_back(candidate_json(k));
    r["candidates"] = cands;
    r["note"] = s.note;
    streams.push_back(r);
  }
  j["streams"] = streams;
  const auto& lw = b.layer_weighted;
  json w = json::object();
  for (const auto& sw : b.weights) w[sw.stream] = sw.weight;
  json cands = json::array();
  for (const auto& k : lw.candidates) cands.push_back(candidate_json(k));
  json per_stream = {{"admissible", lw.per_stream_admissible},
                     {"bits_per_vector", lw.per_stream_admissible ? json(lw.per_stream_bits) : json(nullptr)},
                     {"bits_per_dim", lw.per_stream_admissible ? json(lw.per_stream_bits_per_dim) : json(nullptr)}};
  j["layer_weighted"] = {{"available", lw.available},
                         {"weights", w},
                         {"admissible", lw.best.has_value()},
                         {"best", lw.best ? candidate_json(*lw.best) : json(nullptr)},
                         {"baseline_bits_per_vector", lw.baseline_bits},
                         {"candidates", cands},
                         {"note", lw.note},
                         {"per_stream", per_stream}};
  j["warnings"] = b.warnings;
  return j.dump(2) + "\n";
}

std::string decisions_json(const std::vector<store::DecisionRow>& rows) {
  json j = json::array();
  for (const auto& r : rows)
    j.push_back({{"stream", r.stream}, {"codec", r.codec}, {"metric", r.metric}, {"threshold", r.threshold},
                 {"factor", r.factor}, {"alpha", r.alpha}, {"n_evaluated", r.n_evaluated},
                 {"ratio_mean", jopt(r.ratio_mean)}, {"ratio_ci95_hw", jopt(r.ratio_ci95_hw)},
                 {"p_holm", jopt(r.p_holm)}, {"verdict", r.verdict}, {"n_needed", jopt(r.n_needed)}});
  return j.dump(2) + "\n";
}

std::string status_json(const std::vector<store::StatusRow>& rows) {
  json j = json::array();
  for (const auto& r : rows)
    j.push_back({{"experiment", r.experiment}, {"queued", r.queued}, {"running", r.running}, {"done", r.done},
                 {"failed", r.failed}});
  return j.dump(2) + "\n";
}

}  // namespace kvlab::report
