// The console renderers of the query commands; see console.h.
#include "report/console.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/streams.h"
#include "report/console_format.h"

namespace kvlab::report {
namespace {

std::string pct(double saving) { return fmt::format("{:+.1f} %", -100.0 * saving); }
std::string short_stream(const std::string& s) { return stream_label(s); }

}  // namespace

const char* view_text(stats::QView v) {
  switch (v) {
    case stats::QView::kPoint: return "point (mean rel-MSE <= budget)";
    case stats::QView::kCiSafe: return "CI-safe, published (mean + CI95 half-width of rel-MSE <= budget)";
    case stats::QView::kPairedCiSafe: return "CI-safe, paired (upper end of the per-passage ratio CI95 <= threshold)";
  }
  return "";
}

std::vector<std::string> best_q_families(const stats::StudySummary& s, const std::vector<std::string>& codecs) {
  if (codecs.empty()) return s.families;
  std::vector<std::string> f;
  for (const auto& c : codecs) {
    const std::string fam = c.substr(0, c.find(':'));
    if (fam != stats::kFp8Codec && std::find(f.begin(), f.end(), fam) == f.end()) f.push_back(fam);
  }
  return f;
}

bool best_q_any_inadmissible(const stats::StudySummary& s, const BestQSelection& sel) {
  for (const auto& st : s.streams) {
    bool any = false, seen = false;
    for (const auto& f : sel.families)
      if (const auto* b = s.find_best_q(st, f, sel.threshold.name, sel.view)) {
        seen = true;
        any |= b->admissible;
      }
    if (seen && !any) return true;
  }
  return false;
}

namespace {
// The baseline the ratios are against, as the console columns name it.
std::string base_name(const stats::StudySummary& s) {
  return s.baseline == "fp8_per64" || s.baseline.empty() ? std::string("FP8") : s.baseline;
}
}  // namespace

std::string stats_text(const stats::StudySummary& s, bool per_passage) {
  std::string o;
  o += fmt::format("experiment {} (id {}, origin {}): {} passages, {} finished runs\n", s.experiment.name,
                   s.experiment.id, s.experiment.origin, s.n_passages, s.experiment.counts.done);
  const std::string base = base_name(s);
  o += fmt::format("mean ± CI95 half-width over passages (Student t, n-1 df); ratio = per-passage rel-MSE / {} rel-MSE\n",
                   base);
  for (const auto& st : s.streams) {
    o += fmt::format("\n{} ({})\n", st, short_stream(st));
    o += fmt::format("  {:<12} {:>3} {:>7} {:>7} {:>24} {:>26} {:>22}\n", "codec", "n", "bits", "CR/" + base,
                     "rel-MSE", "cosine", "ratio vs " + base);
    for (const auto& c : s.cells) {
      if (c.stream != st) continue;
      o += fmt::format("  {:<12} {:>3} {:>7} {:>7} {:>24} {:>26} {:>22}\n", c.codec, c.n_passages,
                       console_num(c.bits_per_vector, 6), c.cr_vs_fp8 ? fmt::format("{:.3f}", *c.cr_vs_fp8) : "-",
                       console_ci(c.rel_mse), console_ci(c.cos_sim, 6), c.ratio_vs_fp8 ? console_ci_fixed(*c.ratio_vs_fp8) : "-");
      for (const auto& [m, v] : c.metrics) {
        if (m == "rel_mse" || m == "cos_sim") continue;
        const stats::Summary* r = c.metric_ratio(m);
        o += fmt::format("    {:<30} {:>24} {:>26} {:>22}\n", m, console_ci(v), "", r ? console_ci_fixed(*r) : "-");
      }
      if (per_passage)
        for (const auto& p : c.passages)
          o += fmt::format("      {:<10} rel-MSE {}  {} {}  ratio {:.4f}\n", p.passage, console_num(p.rel_mse), base,
                           console_num(p.fp8_rel_mse), p.ratio);
    }
  }
  if (!s.layer_weighted.empty()) {
    std::string w;
    for (const auto& sw : s.weights)
      w += fmt::format("{}{} {:g}/{:g}", w.empty() ? "" : ", ", short_stream(sw.stream), sw.layers,
                       sw.layers / sw.weight);
    o += fmt::format("\nlayer-weighted ratio vs {} (weights {})\n", base, w);
    o += "  published CI = sqrt(sum (w_s hw_s)^2); paired CI = t interval of per-passage sum w_s ratio_s\n";
    o += fmt::format("  {:<12} {:>9} {:>16} {:>22} {:>10} {:>8} {:>9}\n", "codec", "ratio", "published CI",
                     "paired", "bits", "CR/" + base, "saving");
    for (const auto& l : s.layer_weighted) {
      if (!l.complete) {
        o += fmt::format("  {:<12} incomplete: no data on {}\n", l.codec, fmt::join(l.missing_streams, ", "));
        continue;
      }
      o += fmt::format("  {:<12} {:>9.3f} {:>16} {:>22} {:>10.1f} {:>8.3f} {:>9}\n", l.codec, l.mean,
                       l.rss_hw ? fmt::format("± {:.3f}", *l.rss_hw) : "no CI", console_ci_fixed(l.paired), l.weighted_bits,
                       l.cr_vs_fp8, pct(l.bit_saving));
    }
  }
  if (!s.audits.empty()) {
    o += "\naudit (mean ± CI95 over passages; '!' = mean exceeds the published gate)\n";
    for (const auto& au : s.audits) {
      o += fmt::format("  {} ({} vectors x {})\n", au.stream, au.n_vectors, au.dim);
      for (const auto& m : au.metrics)
        o += fmt::format("    {:<37} {:>26}  gate {:<5g} {} ({} of {} passages above)\n", m.metric, console_ci(m.value),
                         m.gate, m.fires ? "!" : " ", m.passages_firing, m.value.n);
    }
    o += "  (rms_wasserstein2_over_sigma_per_dim is a tail-quantile ratio; name kept for comparability)\n";
  }
  for (const auto& m : s.monotonicity) o += "warning: " + m.message + "\n";
  for (const auto& w : s.warnings) o += "note: " + w + "\n";
  return o;
}
std::string best_q_text(const stats::StudySummary& s, const BestQSelection& sel) {
  const auto& th = sel.threshold;
  const auto view = sel.view;
  const auto& fams = sel.families;
  const std::string base = base_name(s);
  std::string o;
  o += fmt::format("experiment {}: threshold {} (rel-MSE <= {:.2f} x {}), {}\n", s.experiment.name, th.name,
                   th.factor, base, view_text(view));
  for (const auto& f : fams) {
    o += fmt::format("\n{}: max usable Q per stream (smallest swept Q that fits)\n", f);
    o += fmt::format("  {:<22} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>8}\n", "stream", "Q_min", "use Q", "bits",
                     "CR/" + base, "CR/bf16", "saving", "margin");
    for (const auto& st : s.streams) {
      const auto* b = s.find_best_q(st, f, th.name, view);
      if (!b) continue;
      if (!b->admissible) {
        o += fmt::format("  {:<22} {}\n", st, b->note);
        continue;
      }
      o += fmt::format("  {:<22} {:>6} {:>6} {:>7} {:>7.3f} {:>8.3f} {:>9} {:>7.1f}%\n", st, *b->q_min,
                       *b->q_recommended, console_num(b->bits, 6), *b->cr_vs_fp8, b->cr_vs_bf16, pct(*b->bit_saving),
                       100.0 * b->margin);
      if (!b->note.empty()) o += fmt::format("  {:<22} ({})\n", "", b->note);
    }
    for (const char* name : {"uniform", "per_stream"}) {
      const auto* st = s.find_strategy(name, f, th.name, view);
      if (!st) continue;
      if (!st->admissible) {
        o += fmt::format("  strategy {:<11}: not admissible ({})\n", name, st->note);
        continue;
      }
      std::string qs;
      for (const auto& x : st->streams)
        qs += fmt::format("{}{}={}", qs.empty() ? "" : " ", short_stream(x.stream), x.q ? std::to_string(*x.q) : "-");
      o += fmt::format("  strategy {:<11}: {}; layer-weighted bits {:.1f}, CR/{} {:.3f}, CR/bf16 {:.3f}, saving {}\n",
                       name, std::string(name) == "uniform" ? fmt::format("Q={} on all streams", *st->uniform_q) : qs,
                       st->weighted_bits, base, st->cr_vs_fp8, st->cr_vs_bf16, pct(st->bit_saving));
    }
  }
  if (sel.suggest) {
    o += "\nQ values worth running (largest Q of each bit class between the last failing and first passing swept Q):\n";
    int n = 0;
    for (const auto& x : s.suggestions)
      if (std::find(fams.begin(), fams.end(), x.family) != fams.end()) {
        o += fmt::format("  {:<22} {:<10} {:>6} bits  {}\n", x.stream, x.codec(), console_num(x.bits, 6), x.reason);
        ++n;
      }
    if (n == 0) o += "  none\n";
  }
  for (const auto& m : s.monotonicity) o += "warning: " + m.message + "\n";
  for (const auto& w : s.warnings) o += "note: " + w + "\n";
  return o;
}

namespace {

std::string candidate_line(const std::string& label, const stats::BestCandidate& k) {
  return fmt::format("  {:<22} {:<40} {:>8} {:>7.3f} {:>22} {:>9}\n", label, k.codec, console_num(k.bits_per_vector, 6),
                     k.bits_per_dim, console_ci_fixed(k.ratio, 4), std::isfinite(k.used) ? fmt::format("{:.4f}", k.used) : "-");
}

}  // namespace

std::string best_text(const stats::BestResult& b) {
  std::string o;
  o += fmt::format("experiment {}: lowest-bit {} point whose {} ratio to {} is <= {:.2f} (threshold {}), {}\n",
                   b.experiment, b.family, b.metric, b.baseline, b.threshold.factor, b.threshold.name,
                   b.ci_safe ? "CI-safe (upper end of the paired ratio's CI95)" : "point (mean paired ratio)");
  o += fmt::format("  {:<22} {:<40} {:>8} {:>7} {:>22} {:>9}\n", "stream", "codec", "bits/vec", "bits/d",
                   "ratio ± CI95", "used");
  for (const auto& s : b.streams) {
    if (s.best) o += candidate_line(s.stream, *s.best);
    else o += fmt::format("  {:<22} {}\n", s.stream, s.note);
  }
  const auto& lw = b.layer_weighted;
  for (const auto& w : b.warnings) o += "note: " + w + "\n";
  if (!lw.available) return o + fmt::format("layer weighted: {}\n", lw.note);
  std::string w;
  for (const auto& sw : b.weights)
    w += fmt::format("{}{} {:g}/{:g}", w.empty() ? "" : ", ", short_stream(sw.stream), sw.layers,
                     sw.layers / sw.weight);
  o += fmt::format("layer weighted (weights {}; {} {:.1f} bits/vector)\n", w, b.baseline, lw.baseline_bits);
  if (lw.best) o += candidate_line("one codec", *lw.best);
  else o += fmt::format("  {:<22} {}\n", "one codec", lw.note);
  if (lw.per_stream_admissible)
    o += fmt::format("  {:<22} {:<40} {:>8.1f} {:>7.3f}\n", "per-stream points", "(each stream its best)",
                     lw.per_stream_bits, lw.per_stream_bits_per_dim);
  else
    o += fmt::format("  {:<22} not admissible (a weighted stream has no point that clears)\n", "per-stream points");
  return o;
}

std::string decisions_text(const std::vector<store::DecisionRow>& rows) {
  std::string o;
  if (!rows.empty()) {
    // The look-corrected rule (experiment/sequential.h): a resolved row is its resolving look, all at one level.
    bool legacy = !(rows.front().alpha > 0 && rows.front().alpha < 1);
    for (const auto& r : rows)
      legacy = legacy || r.alpha != rows.front().alpha || (r.n_needed && r.n_evaluated != *r.n_needed);
    if (legacy)
      o += "note: rows of the earlier rule (each look at the full alpha, Holm within stream x threshold, no "
           "correction for the repeated looks): resolved is nominal; rerun `kvlab run --until-resolved`\n";
    else
      o += fmt::format(
          "looks at n = 2..cap passages (K = cap - 1 = alpha / level: {:.0f} for the default alpha 0.05), each: "
          "Holm over the open decisions (all {} in one family) at family-wise level {:.3g}; resolved at the first "
          "look with p (Holm) below it, and stays so; overall level K x {:.3g} = alpha (union bound)\n"
          "below/above: mean ratio below/above the threshold (meets/fails); ratio, CI95 (plain t, not widened) and "
          "p at the look n shown: the resolving one, else the last\n",
          0.05 / rows.front().alpha, rows.size(), rows.front().alpha, rows.front().alpha);
  }
  o += fmt::format("{:<22} {:<30} {:<9} {:>18} {:>10} {:>4} {:<10} {}\n", "stream", "codec", "threshold",
                   "ratio ± CI95", "p (Holm)", "n", "verdict", "passages needed");
  for (const auto& r : rows) {
    const std::string ratio = !r.ratio_mean      ? std::string("-")
                              : r.ratio_ci95_hw ? fmt::format("{:.4f} ± {:.4f}", *r.ratio_mean, *r.ratio_ci95_hw)
                                                : fmt::format("{:.4f} (no CI)", *r.ratio_mean);
    o += fmt::format("{:<22} {:<30} {:<9} {:>18} {:>10} {:>4} {:<10} {}\n", r.stream, r.codec,
                     fmt::format("{} {:.2f}", r.threshold, r.factor), ratio,
                     r.p_holm ? fmt::format("{:.3g}", *r.p_holm) : "-", r.n_evaluated, r.verdict,
                     r.n_needed ? std::to_string(*r.n_needed) : fmt::format("> {}", r.n_evaluated));
  }
  return o;
}

std::string status_text(const std::vector<store::StatusRow>& rows, const std::map<std::int64_t, std::int64_t>& recent,
                        double window_s, const std::string& db_path) {
  std::string o = fmt::format("{:<28} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n", "experiment", "queued", "running", "done",
                              "failed", "total", "progress");
  store::StatusRow sum;
  for (const auto& r : rows) {
    std::string progress =
        fmt::format("{:.1f} %", r.total() ? 100.0 * double(r.done + r.failed) / double(r.total()) : 100.0);
    const auto it = recent.find(r.experiment_id);
    const double rate = double(it == recent.end() ? 0 : it->second) / window_s;
    if (r.queued + r.running > 0) {
      if (rate > 0) {
        const double eta = double(r.queued + r.running) / rate;
        progress += fmt::format(", {:.2f} runs/s, ETA {:.0f} s", rate, eta);
      } else {
        progress += ", no run finished in the last minute";
      }
    }
    o += fmt::format("{:<28} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n", r.experiment, r.queued, r.running, r.done, r.failed,
                     r.total(), progress);
    sum.queued += r.queued;
    sum.running += r.running;
    sum.done += r.done;
    sum.failed += r.failed;
  }
  if (rows.size() > 1)
    o += fmt::format("{:<28} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "(all)", sum.queued, sum.running, sum.done, sum.failed,
                     sum.total());
  if (rows.empty()) o += fmt::format("(no experiments; queue one with `kvlab queue SPEC --db {}`)\n", db_path);
  return o;
}

}  // namespace kvlab::report
