// "Published vs this run" section; see published.h.
#include "report/published.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "report/published_link.h"
#include "report/sections.h"
#include "report/summary.h"

namespace kvlab::report::detail {

namespace {

nlohmann::json parse_or_empty(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    if (j.is_object()) return j;
  } catch (const nlohmann::json::exception&) {
  }
  return nlohmann::json::object();
}

std::string text_at(const nlohmann::json& j, const char* a, const char* b) {
  if (!j.contains(a) || !j[a].is_object() || !j[a].contains(b)) return "";
  const auto& v = j[a][b];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string interval_text(const PublishedRatio& r) {
  if (!r.found) return "not in the published experiment";
  if (r.lo && r.hi) return fmt::format("{} [{}, {}]", fmt_fixed(r.mean, 3), fmt_fixed(*r.lo, 3), fmt_fixed(*r.hi, 3));
  return fmt_fixed(r.mean, 3) + " (no interval)";
}

}  // namespace

namespace {

const nlohmann::json* aggregate_stream(const nlohmann::json& j, const std::string& stream) {
  if (!j.contains("published_aggregate") || !j["published_aggregate"].is_object()) return nullptr;
  const auto& agg = j["published_aggregate"];
  if (!agg.contains(stream) || !agg[stream].is_object()) return nullptr;
  return &agg[stream];
}

PublishedRatio paired_from(const stats::StudySummary& s, const std::string& stream, const std::string& codec) {
  PublishedRatio r;
  const auto* cell = s.find_cell(stream, codec);
  if (!cell || !cell->ratio_vs_fp8) return r;
  const auto& x = *cell->ratio_vs_fp8;
  r.found = true;
  r.mean = x.mean;
  r.n = x.n;
  r.paired = true;
  if (x.ci95_hw) {
    r.lo = x.mean - *x.ci95_hw;
    r.hi = x.mean + *x.ci95_hw;
  }
  r.how = fmt::format("paired per passage, n = {}", x.n);
  return r;
}

}  // namespace

PublishedRatio published_ratio(const PublishedInput& pub, const std::string& stream, const std::string& codec,
                               std::optional<double>* of_means) {
  if (pub.summary) return paired_from(*pub.summary, stream, codec);
  PublishedRatio means;
  const auto j = parse_or_empty(pub.params_json);
  if (const auto* sv = aggregate_stream(j, stream); sv && sv->contains(codec) && sv->contains("fp8_per64")) {
    const double c = (*sv)[codec]["rel_mse"]["mean"].get<double>();
    const double f = (*sv)["fp8_per64"]["rel_mse"]["mean"].get<double>();
    if (f > 0) {
      means.found = true;
      means.mean = c / f;
      means.n = (*sv)[codec]["rel_mse"].value("n", 0);
      means.how = fmt::format("ratio of means, n = {} (the file has no per-passage values: no paired CI)", means.n);
      if (of_means) *of_means = means.mean;
    }
  }
  if (pub.linked_summary) {
    auto r = paired_from(*pub.linked_summary, stream, codec);
    if (r.found) {
      r.how = fmt::format("paired per passage, n = {}, from `{}` (the same runs){}", r.n, pub.linked_experiment,
                          means.found ? fmt::format("; ratio of the file's means {}", fmt_fixed(means.mean, 3)) : "");
      return r;
    }
  }
  return means;
}

PublishedAnswer published_answer(const PublishedInput& pub, const std::string& stream, const std::string& family,
                                 const stats::Threshold& threshold, bool ci_safe) {
  PublishedAnswer a;
  if (pub.summary) {
    for (const auto& c : pub.summary->cells) {
      if (c.stream == stream && c.family == family && c.q) a.grid.push_back(*c.q);
    }
    std::sort(a.grid.begin(), a.grid.end());
    const auto* b = pub.summary->find_best_q(stream, family, threshold.name,
                                             ci_safe ? stats::QView::kCiSafe : stats::QView::kPoint);
    if (!b) return a;
    a.found = true;
    a.admissible = b->admissible && b->q_min.has_value();
    if (!a.admissible) return a;
    a.q_min = *b->q_min;
    a.bits = b->bits;
    a.cr_vs_fp8 = b->cr_vs_fp8.value_or(0.0);
    a.margin = b->margin;
    return a;
  }
  const auto j = parse_or_empty(pub.params_json);
  const auto* sv = aggregate_stream(j, stream);
  if (!sv || !sv->contains("fp8_per64")) return a;
  const double budget = threshold.factor * (*sv)["fp8_per64"]["rel_mse"]["mean"].get<double>();
  const double fp8_bits = (*sv)["fp8_per64"].value("bits", 0.0);
  struct Point {
    int q;
    double used;
    double bits;
    bool ok;
  };
  std::vector<Point> pts;
  const std::string prefix = family + ":q=";
  for (const auto& [codec, v] : sv->items()) {
    if (codec.rfind(prefix, 0) != 0 || !v.contains("rel_mse")) continue;
    const auto& rm = v["rel_mse"];
    const bool ok = !ci_safe || rm.contains("ci95_hw");
    const double used = rm["mean"].get<double>() + (ci_safe && ok ? rm["ci95_hw"].get<double>() : 0.0);
    pts.push_back({std::stoi(codec.substr(prefix.size())), used, v.value("bits", 0.0), ok});
  }
  std::sort(pts.begin(), pts.end(), [](const Point& x, const Point& y) { return x.q < y.q; });
  for (const auto& p : pts) a.grid.push_back(p.q);
  if (pts.empty() || !(budget > 0)) return a;
  a.found = true;
  for (const auto& p : pts) {
    if (!p.ok) {
      a.found = false;  // the CI-safe view needs a half-width the file does not give
      return a;
    }
    if (p.used <= budget) {
      a.admissible = true;
      a.q_min = p.q;
      a.bits = p.bits;
      a.cr_vs_fp8 = p.bits > 0 ? fp8_bits / p.bits : 0.0;
      a.margin = (budget - p.used) / budget;
      return a;
    }
  }
  return a;
}

namespace {

// Weights / simulate_fp8 of the published side: the import's own, else the
// linked experiment's (the same runs), said so.
std::string published_param(const PublishedInput& pub, const nlohmann::json& pj, const char* a, const char* b,
                            bool code = false) {
  auto quote = [&](const std::string& v) { return code ? "`" + v + "`" : v; };
  // The whole object counts as stated only when it names its kind (the sweeps
  // record just the layers used).
  auto get = [&](const nlohmann::json& j) {
    if (!b) return j.contains(a) && j[a].is_object() && j[a].contains("kind") ? j[a].dump() : std::string();
    return text_at(j, a, b);
  };
  std::string v = get(pj);
  if (!v.empty()) return quote(v);
  if (!pub.linked_experiment.empty()) {
    v = get(parse_or_empty(pub.linked_params_json));
    if (!v.empty()) return fmt::format("{} (from `{}`, the same runs)", quote(v), pub.linked_experiment);
  }
  return "not stated";
}

// The published summary with per-passage data: its own, else the linked one.
const stats::StudySummary* published_summary(const PublishedInput& pub) {
  return pub.summary ? &*pub.summary : pub.linked_summary ? &*pub.linked_summary : nullptr;
}

// Stream statistics (SPEC section 4 audit) of this run beside the published ones.
void audit_table(Document& d, const stats::StudySummary& run, const PublishedInput& pub) {
  const auto* ps = published_summary(pub);
  const auto pj = parse_or_empty(pub.params_json);
  Table t({"stream", "audit statistic", "this run", "published", "published / this run", "gate"},
          {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  int rows = 0;
  for (const auto& a : run.audits) {
    const stats::StreamAuditStats* pa = nullptr;
    if (ps) {
      for (const auto& x : ps->audits) {
        if (x.stream == a.stream) pa = &x;
      }
    }
    const auto* sv = aggregate_stream(pj, a.stream);
    for (const auto& m : a.metrics) {
      std::optional<double> pub_mean;
      if (pa) {
        for (const auto& pm : pa->metrics) {
          if (pm.metric == m.metric && pm.value.n > 0) pub_mean = pm.value.mean;
        }
      }
      if (!pub_mean && sv && sv->contains("audit") && (*sv)["audit"].contains(m.metric) &&
          (*sv)["audit"][m.metric].contains("mean")) {
        pub_mean = (*sv)["audit"][m.metric]["mean"].get<double>();
      }
      if (!pub_mean || m.value.n == 0) continue;
      const double mine = m.value.mean;
      t.add_row({stream_cell(a.stream), fmt::format("`{}`", m.metric), fmt_sig(mine, 3), fmt_sig(*pub_mean, 3),
                 mine != 0 ? fmt_sig(*pub_mean / mine, 3) : std::string(kNotAvailable), fmt_short(m.gate)});
      ++rows;
    }
  }
  if (rows == 0) return;
  d.paragraph(
      "Why the ratios may differ: the stream statistics of SPEC section 4 (means over passages) in this run and in the "
      "published streams. A stream far from Gaussian (large kurtosis, isotropy or Hadamard ratio) is where a lattice "
      "codec and FP8's per-block scales behave differently, so streams with different statistics need not give the "
      "same ratio.");
  d.table(t);
}

// SPEC section 6's layer-weighted figure and bit change of the published side.
void layer_weighted_text(Document& d, const stats::StudySummary& run, const PublishedInput& pub,
                         const std::string& codec) {
  const auto* ps = published_summary(pub);
  const auto* lw = ps ? ps->find_layer_weighted(codec) : nullptr;
  if (!lw || !lw->complete) return;
  const auto* mine = run.find_layer_weighted(codec);
  d.paragraph(fmt::format(
      "Layer weighted over the published layer mix (SPEC section 6), published `{}`: {} / FP8 = {} (root-sum-square "
      "half-width of the published report; paired over passages {}), {} bits vs FP8 {} bits ({} bits).{}",
      pub.summary ? pub.experiment : pub.linked_experiment, codec_label(codec), fmt_pm_fixed(lw->mean, lw->rss_hw, 3),
      ratio_with_ci(lw->paired), fmt_fixed(lw->weighted_bits, 0), fmt_fixed(lw->weighted_fp8_bits, 0),
      fmt_percent(-lw->bit_saving),
      mine && mine->complete
          ? fmt::format(" This run, layer weighted the same way: {} (paired {}).", fmt_pm_fixed(mine->mean, mine->rss_hw, 3),
                        ratio_with_ci(mine->paired))
          : std::string()));
}

}  // namespace

void published_vs_run_section(Document& d, const stats::StudySummary& run, const std::optional<PublishedInput>& pub,
                              const std::string& codec) {
  d.heading(2, "Published vs this run");
  if (!pub) {
    d.paragraph(
        "No published experiment was given (`--published-db FILE --published-experiment NAME`; import the "
        "published files first with `kvlab import published`), so this report does not set the run beside the "
        "published study.");
    return;
  }
  d.paragraph(fmt::format(
      "{} / baseline rel-MSE ratio per stream in this run (`{}`, baseline `{}`) and in the published experiment "
      "`{}` (database `{}`, baseline `fp8_per64`), each with its 95 % interval. *Overlap*: whether the two "
      "intervals share a point (n/a when either has none). Overlapping intervals do not make the studies agree: "
      "they differ in the causes listed under the table.",
      codec_label(codec), run.experiment.name, run.baseline, pub->experiment, pub->database_file));
  if (!pub->summary && pub->linked_summary) {
    d.paragraph(fmt::format(
        "`{}` is an aggregate-only import (no per-passage values). `{}` in the same database holds the same runs: "
        "its FP8 and lattice rel-MSE means equal the file's on every stream and shared Q, with the same passages' "
        "count and seqlen. So the published ratio below is the *paired* ratio of `{}` (mean over passages of the "
        "per-passage ratio, the figure the findings reports quote) wherever it has the codec, and the weights and "
        "simulate_fp8 it states apply to `{}` too. The file's *ratio of means* (mean codec rel-MSE / mean FP8 "
        "rel-MSE) is a different estimator and can differ in the third decimal; it is named where shown.",
        pub->experiment, pub->linked_experiment, pub->linked_experiment, pub->experiment));
  }
  Table t({"stream", "this run: ratio [95 % CI]", "published: ratio [95 % CI]", "published interval from",
           "overlap"},
          {Align::kLeft, Align::kRight, Align::kRight, Align::kLeft, Align::kLeft});
  for (const auto& stream : run.streams) {
    const auto* cell = run.find_cell(stream, codec);
    PublishedRatio mine;
    if (cell && cell->ratio_vs_fp8) {
      const auto& x = *cell->ratio_vs_fp8;
      mine.found = true;
      mine.mean = x.mean;
      if (x.ci95_hw) {
        mine.lo = x.mean - *x.ci95_hw;
        mine.hi = x.mean + *x.ci95_hw;
      }
    }
    const auto p = published_ratio(*pub, stream, codec);
    std::string overlap = kNotAvailable;
    if (mine.lo && p.lo) overlap = (*mine.lo <= *p.hi && *p.lo <= *mine.hi) ? "yes" : "no";
    t.add_row({stream_cell(stream), mine.found ? interval_text(mine) : "not measured", interval_text(p),
               p.found ? p.how : kNotAvailable, overlap});
  }
  d.table(t);
  layer_weighted_text(d, run, *pub, codec);
  audit_table(d, run, *pub);
  const auto rj = parse_or_empty(run.experiment.params_json);
  const auto pj = parse_or_empty(pub->params_json);
  auto or_unstated = [](const std::string& v) { return v.empty() ? std::string("not stated") : v; };
  std::vector<std::string> causes;
  causes.push_back(fmt::format("Weights: this run `{}`; published {} (weights kind {}).",
                               or_unstated(rj.contains("weights") ? rj["weights"].dump() : ""),
                               published_param(*pub, pj, "weights", nullptr, true),
                               published_param(*pub, pj, "weights", "kind")));
  causes.push_back(fmt::format("Host (hidden states): this run `{}`; published `{}`.",
                               or_unstated(text_at(rj, "host", "spec")), or_unstated(text_at(pj, "host", "spec"))));
  causes.push_back(fmt::format(
      "Write-path mode: this run `{}`; published: the published harness (SPEC.md section 2: main KV RoPE base "
      "10000 without YaRN on every layer, its own FP8 with amax/448 scales).",
      run.experiment.write_path.empty() ? "published" : run.experiment.write_path));
  causes.push_back(
      "FP8 scale precision: the published GPU run computed the FP8 block scale in bf16 and rounded the FP8 output "
      "to bf16 before its rel-MSE; kvlab computes in fp32 and stores the scale as uf16 (fp8_per64) or UE8M0 "
      "(v4_native).");
  causes.push_back(fmt::format("Baseline format: this run `{}`; published `fp8_per64` (4224 bits, fp16 scales, "
                               "RoPE dims in FP8).",
                               run.baseline));
  causes.push_back(fmt::format(
      "The write path's own FP8 simulation: this run simulate_fp8 = {}; published simulate_fp8 = {} (with it on, "
      "the stream already lies near the FP8 grid and the baseline's error shrinks).",
      or_unstated(text_at(rj, "weights", "simulate_fp8")),
      published_param(*pub, pj, "weights", "simulate_fp8")));
  d.paragraph("Known causes of a difference:");
  d.bullets(causes);
}

}  // namespace kvlab::report::detail

namespace kvlab::report {

bool same_published_runs(const PublishedInput& agg, const std::string& candidate_params_json,
                         const stats::StudySummary& candidate, std::string* why) {
  auto fail = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  const auto aj = detail::parse_or_empty(agg.params_json);
  const auto cj = detail::parse_or_empty(candidate_params_json);
  if (!aj.contains("published_aggregate") || !aj["published_aggregate"].is_object() ||
      aj["published_aggregate"].empty()) {
    return fail("not an aggregate-only import");
  }
  for (const char* k : {"seqlen"}) {
    if (aj.contains(k) && cj.contains(k) && aj[k] != cj[k]) return fail(fmt::format("{} differs", k));
  }
  const auto ah = detail::text_at(aj, "host", "spec"), ch = detail::text_at(cj, "host", "spec");
  if (!ah.empty() && !ch.empty() && ah != ch) return fail("host differs");
  auto same = [](double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b)); };
  for (const auto& [stream, sv] : aj["published_aggregate"].items()) {
    const auto* base = candidate.find_cell(stream, "fp8_per64");
    if (!base || !sv.contains("fp8_per64")) return fail(fmt::format("no FP8 baseline on {}", stream));
    const auto& f = sv["fp8_per64"]["rel_mse"];
    if (f.value("n", 0) != base->rel_mse.n || !same(f["mean"].get<double>(), base->rel_mse.mean)) {
      return fail(fmt::format("FP8 mean or n differs on {}", stream));
    }
    int shared = 0;
    for (const auto& [codec, v] : sv.items()) {
      if (codec == "fp8_per64" || codec == "audit" || !v.contains("rel_mse")) continue;
      const auto* c = candidate.find_cell(stream, codec);
      if (!c) continue;
      if (v["rel_mse"].value("n", 0) != c->rel_mse.n || !same(v["rel_mse"]["mean"].get<double>(), c->rel_mse.mean)) {
        return fail(fmt::format("{} mean or n differs on {}", codec, stream));
      }
      ++shared;
    }
    if (shared == 0) return fail(fmt::format("no shared lattice codec on {}", stream));
  }
  return true;
}

}  // namespace kvlab::report
