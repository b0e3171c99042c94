// MAX_USABLE_CR report of a Q sweep: see reports.h. Formatting only; the
// numbers come from stats::StudySummary (best_q, strategies, pareto,
// monotonicity, suggestions).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "report/published.h"
#include "report/markdown.h"
#include "report/reports.h"
#include "report/sections.h"
#include "report/plots.h"
#include "report/summary.h"

namespace kvlab::report {

using namespace detail;

namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string view_label(stats::QView v) {
  switch (v) {
    case stats::QView::kPoint: return "point";
    case stats::QView::kCiSafe: return "CI-safe";
    case stats::QView::kPairedCiSafe: return "paired CI-safe";
  }
  return "?";
}

// Views in the order the summary holds them (thresholds: thresholds_of, plots.h).
std::vector<stats::QView> views_of(const stats::StudySummary& s) {
  std::vector<stats::QView> out;
  for (const auto& b : s.best_q) {
    if (std::find(out.begin(), out.end(), b.view) == out.end()) out.push_back(b.view);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void method_section(Document& d, const stats::StudySummary& s) {
  d.heading(2, "Question and method");
  std::string th;
  for (const auto& t : thresholds_of(s)) {
    th += (th.empty() ? "" : ", ") + fmt::format("{} = {} x", t.name, fmt_fixed(t.factor, 2));
  }
  d.paragraph(fmt::format(
      "Which is the smallest swept Q (fewest bits) whose rel-MSE stays within a budget relative to FP8, "
      "per stream? Budget = m x mean FP8 rel-MSE over the passages, with m for thresholds {}. "
      "Views: *point* compares the codec's mean rel-MSE with the budget; *CI-safe* (published) "
      "compares mean + 95 % half-width; *paired CI-safe* requires the upper end of the per-passage "
      "ratio interval to be <= m. Q_min is the smallest admissible swept Q; several Q share one bit "
      "count, so the recommended Q is the largest swept Q with Q_min's bits that also fits. "
      "Margin = (budget - used) / budget at the Q it names (marginal: below 2 %). CR = compression ratio (FP8 bits or 16 D bits of bf16, "
      "over the codec's bits). Bit change vs FP8 = bits / FP8 bits - 1 (negative: fewer bits than FP8), "
      "the same convention as the findings report.",
      th));
}

// "Q=38, 3296 bits, 1.282x" or "not admissible".
std::string compact_cell(const stats::BestQ* b) {
  if (!b) return kNotAvailable;
  if (!b->admissible || !b->q_min) return "not admissible";
  const int q = b->q_recommended.value_or(*b->q_min);
  return fmt::format("Q={}, {} bits, {}", q, fmt_bits(b->bits), fmt_cr(b->cr_vs_fp8));
}

// Whether a BestQ's answer is exact on the integer Q grid: every Q between the
// largest failing swept Q and Q_min shares Q_min's bits (trivially when
// Q_min - 1 was run and fails), so no unswept Q could give more compression.
struct GridStatus {
  bool exact = false;
  std::string text;
};

GridStatus grid_status(const stats::BestQ& b, const stats::BitsFn& bits_of) {
  GridStatus g;
  if (!b.admissible || !b.q_min) {
    g.text = fmt::format("none up to Q={}", b.max_swept_q);
    return g;
  }
  std::optional<int> fail;
  for (const auto& ch : b.checks) {
    if (ch.q < *b.q_min) fail = ch.q;
  }
  const int first_unknown = fail ? *fail + 1 : 1;
  const auto bc = bit_class(bits_of, b.family, *b.q_min, b.dim);
  const int lo = bc ? bc->lo : *b.q_min;
  if (first_unknown >= lo) {
    g.exact = true;
    const std::string same =
        fail && *fail + 1 < *b.q_min ? fmt::format("; Q={}-{} cost Q_min's bits", *fail + 1, *b.q_min - 1) : "";
    g.text = !fail              ? std::string("exact (smallest Q)")
             : bc && *fail + 1 == lo ? fmt::format("exact (Q={}, the largest Q with fewer bits, fails{})", *fail, same)
                               : fmt::format("exact (Q={} fails{})", *fail, same);
  } else {
    g.text = fmt::format("lower bound on the CR: Q_min in {}..{} ({}not run)", first_unknown, *b.q_min,
                         fail ? fmt::format("Q={} fails; {}..{} ", *fail, first_unknown, *b.q_min - 1) : "");
  }
  return g;
}

// Answers whose margin is below this are flagged "marginal".
constexpr double kMarginalMargin = 0.02;

// The margin of a BestQ's view at swept Q (nullopt when Q was not checked).
std::optional<double> margin_at(const stats::BestQ& b, int q) {
  for (const auto& ch : b.checks) {
    if (ch.q == q && ch.has_interval) return ch.margin;
  }
  return std::nullopt;
}

// "+0.6 % marginal" / "+10.0 %".
std::string margin_text(double m) {
  return fmt_percent(m) + (m < kMarginalMargin ? " marginal" : "");
}

std::string q_cell(const stats::BestQ* b) {
  if (!b) return kNotAvailable;
  if (!b->admissible || !b->q_min) return "not admissible";
  return fmt::format("Q={}", b->q_recommended.value_or(*b->q_min));
}

// Per stream x threshold: the paired CI-safe answer, its CI, grid status,
// and the published CI-safe answer beside it.
void answer_table(Document& d, const stats::StudySummary& s, const std::string& fam, const stats::BitsFn& bits_of,
                  bool* any_bound, bool* same_abc) {
  const std::string bl = baseline_label(s);
  Table t({"stream", "threshold", "Q (paired CI-safe)", "bits", "CR vs " + bl, "ratio at Q [95 % CI]",
           "margin at Q", "on the Q grid", "Q (CI-safe view)", "Q (point view)"},
          {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
           Align::kLeft, Align::kRight, Align::kRight});
  for (const auto& stream : s.streams) {
    std::set<std::string> answers;
    bool stream_bound = false;
    int rows = 0;
    for (const auto& th : thresholds_of(s)) {
      const auto* b = s.find_best_q(stream, fam, th.name, stats::QView::kPairedCiSafe);
      if (!b) continue;
      ++rows;
      const auto g = grid_status(*b, bits_of);
      stream_bound = stream_bound || (!g.exact && b->admissible);
      answers.insert(q_cell(b));
      std::string bits = kNotAvailable, cr = kNotAvailable, ratio = kNotAvailable, margin = kNotAvailable;
      if (b->admissible && b->q_min) {
        const int q = b->q_recommended.value_or(*b->q_min);
        bits = fmt_bits(b->bits);
        cr = fmt_cr(b->cr_vs_fp8);
        if (const auto m = margin_at(*b, q)) margin = margin_text(*m);
        if (const auto* cell = s.find_cell(stream, fmt::format("{}:q={}", fam, q)); cell && cell->ratio_vs_fp8) {
          ratio = ratio_with_ci(*cell->ratio_vs_fp8);
        }
      }
      t.add_row({stream_cell(stream), fmt::format("{} ({}x)", th.name, fmt_fixed(th.factor, 2)), q_cell(b), bits, cr,
                 ratio, margin, g.text, q_cell(s.find_best_q(stream, fam, th.name, stats::QView::kCiSafe)),
                 q_cell(s.find_best_q(stream, fam, th.name, stats::QView::kPoint))});
    }
    *any_bound = *any_bound || stream_bound;
    if (rows > 1 && answers.size() == 1 && stream_bound) *same_abc = true;
  }
  d.table(t);
}

// One whole-cache strategy in numbers: memory-weighted bits, KV bytes per
// token with V4's uncompressed FP8 indexer keys (as the findings forecast
// counts them), and the smallest per-stream margin at the Q it uses.
struct CacheRow {
  bool ok = false;
  std::string q;
  double wb = 0.0, wf = 0.0;                 // memory-weighted bits: codec, baseline
  double bytes = 0.0, base_bytes = 0.0;      // KV bytes per token, indexer keys included
  std::optional<double> min_margin;
  std::string min_stream;
};

CacheRow cache_row(const stats::StudySummary& s, const V4Memory& mem, const stats::Strategy& st) {
  CacheRow r;
  std::map<std::string, double> bits, base;
  for (const auto& ss : st.streams) {
    bits[ss.stream] = ss.bits;
    base[ss.stream] = ss.fp8_bits;
    r.q += (r.q.empty() ? "" : ", ") + fmt::format("{} {}", stream_short(ss.stream), ss.q ? fmt_int(*ss.q) : "-");
    const auto* b = ss.q ? s.find_best_q(ss.stream, st.family, st.threshold.name, st.view) : nullptr;
    if (const auto m = b ? margin_at(*b, *ss.q) : std::nullopt; m && (!r.min_margin || *m < *r.min_margin)) {
      r.min_margin = *m;
      r.min_stream = stream_short(ss.stream);
    }
  }
  if (st.name == "uniform" && st.uniform_q) r.q = fmt::format("Q={}", *st.uniform_q);
  const auto wb = memory_weighted_bits(mem, bits), wf = memory_weighted_bits(mem, base);
  if (!st.admissible || !wb || !wf || *wb <= 0) return r;
  r.ok = true;
  r.wb = *wb;
  r.wf = *wf;
  const double keys = mem.indexer_keys_per_token * kV4IndexerKeyBytes, v = mem.total_vectors_per_token();
  r.bytes = v * *wb / 8.0 + keys;
  r.base_bytes = v * *wf / 8.0 + keys;
  return r;
}

// Whole cache: the per-stream and uniform strategies of the paired view (the
// headline) and of the CI-safe view beside it, with memory-weighted bits.
void whole_cache_table(Document& d, const stats::StudySummary& s, const std::string& fam) {
  std::string src;
  const auto mem = experiment_memory(s, &src);
  if (!mem) return;
  const std::string bl = baseline_label(s);
  const bool keys = mem->indexer_keys_per_token > 0;
  Table t({"threshold", "view", "strategy", "Q", "memory-weighted bits", "CR vs " + bl, "bit change vs " + bl,
           keys ? "KV bytes per token (with indexer keys)" : "KV bytes per token", "smallest margin"},
          {Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight,
           Align::kRight, Align::kRight});
  for (const auto& th : thresholds_of(s)) {
    for (auto view : {stats::QView::kPairedCiSafe, stats::QView::kCiSafe}) {
      for (const char* name : {"per_stream", "uniform"}) {
        const auto* st = s.find_strategy(name, fam, th.name, view);
        if (!st) continue;
        const std::string thl = fmt::format("{} ({}x)", th.name, fmt_fixed(th.factor, 2));
        const auto r = cache_row(s, *mem, *st);
        if (!r.ok) {
          t.add_row({thl, view_label(view), name, "not admissible", kNotAvailable, kNotAvailable, kNotAvailable,
                     kNotAvailable, kNotAvailable});
          continue;
        }
        t.add_row({thl, view_label(view), name, r.q, fmt_fixed(r.wb, 1), fmt_cr(r.wf / r.wb),
                   fmt_percent(r.wb / r.wf - 1.0),
                   fmt::format("{} ({})", fmt_fixed(r.bytes, 1), fmt_percent(r.bytes / r.base_bytes - 1.0)),
                   r.min_margin ? fmt::format("{} ({})", margin_text(*r.min_margin), r.min_stream) : kNotAvailable});
      }
    }
  }
  d.paragraph(fmt::format(
      "Whole cache: *per_stream* gives each stream its own Q, *uniform* one Q for all; the paired CI-safe view is "
      "the headline, the CI-safe view (SPEC section 5) is shown beside it. Bit change counts the codec-compressed "
      "streams only{}. *Smallest margin*: the least (budget - used) / budget over the streams at the Q each uses; "
      "below {} the answer is *marginal*: a little more noise or another draw could flip it.",
      keys ? "; KV bytes per token add V4's FP8 indexer keys (132 B per CSA entry, not compressed by any codec "
             "here), as the findings reports' deployment forecast does"
           : "",
      fmt_fixed(100.0 * kMarginalMargin, 0) + " %"));
  d.table(t);
  d.paragraph(memory_weighting_note(*mem, src));
}

// Streams where the paired and the published CI-safe view disagree at a threshold.
std::vector<std::string> view_splits(const stats::StudySummary& s, const std::string& fam) {
  std::vector<std::string> out;
  for (const auto& stream : s.streams) {
    for (const auto& th : thresholds_of(s)) {
      const auto* p = s.find_best_q(stream, fam, th.name, stats::QView::kPairedCiSafe);
      const auto* c = s.find_best_q(stream, fam, th.name, stats::QView::kCiSafe);
      if (!p || !c || q_cell(p) == q_cell(c) || !p->q_min) continue;
      std::string why;
      for (const auto& ch : c->checks) {
        if (ch.q == *p->q_min && !ch.fits) {
          why = fmt::format(" (at Q={}: mean + half-width {} > budget {})", ch.q, fmt_sci(ch.used, 3),
                            fmt_sci(ch.budget, 3));
        }
      }
      out.push_back(fmt::format("{} at threshold {}: the paired view admits {}, the CI-safe view {}{}",
                                stream_short(stream), th.name, q_cell(p), q_cell(c), why));
    }
  }
  return out;
}

// Streams whose paired answer is marginal, or whose CI-safe answer needs
// more bits, while the whole-cache CR barely moves because the stream holds a
// small share of the stored vectors: the headline's robustness comes from
// that small weight, not from the stream's own answer.
std::string small_weight_text(const stats::StudySummary& s, const V4Memory& mem, const std::string& fam) {
  std::vector<std::string> out;
  for (const auto& th : thresholds_of(s)) {
    const auto* p = s.find_strategy("per_stream", fam, th.name, stats::QView::kPairedCiSafe);
    const auto* c = s.find_strategy("per_stream", fam, th.name, stats::QView::kCiSafe);
    if (!p || !c) continue;
    const auto rp = cache_row(s, mem, *p), rc = cache_row(s, mem, *c);
    if (!rp.ok) continue;
    for (const auto& ss : p->streams) {
      if (!ss.q) continue;
      const auto* b = s.find_best_q(ss.stream, fam, th.name, stats::QView::kPairedCiSafe);
      const auto m = b ? margin_at(*b, *ss.q) : std::nullopt;
      std::optional<int> ci_q;
      for (const auto& cs : c->streams) {
        if (cs.stream == ss.stream) ci_q = cs.q;
      }
      const bool marginal = m && *m < kMarginalMargin;
      const bool needs_more = c->admissible && ci_q && *ci_q != *ss.q;
      const double share = mem.share(ss.stream);
      if (!(marginal || needs_more) || share >= 0.1) continue;
      out.push_back(fmt::format(
          "at threshold {} the paired answer on {} (Q={}{}) {}, yet {} holds only {} of the stored vectors, so the "
          "whole-cache CR {}",
          th.name, stream_short(ss.stream), *ss.q, m ? ", margin " + fmt_percent(*m) : std::string(),
          needs_more ? fmt::format("differs from the CI-safe view's Q={}", *ci_q) : std::string("is marginal"),
          stream_short(ss.stream), fmt_fixed(100.0 * share, 1) + " %",
          rc.ok ? fmt::format("is {} in the paired and {} in the CI-safe view", fmt_cr(rp.wf / rp.wb),
                              fmt_cr(rc.wf / rc.wb))
                : std::string("hardly depends on it")));
    }
  }
  if (out.empty()) return "";
  return fmt::format("The headline is robust to this stream's answer only because its weight is small: {}. ",
                     fmt::join(out, "; "));
}

// "What this means": the whole-cache answer at each threshold in the paired view.
std::string meaning_text(const stats::StudySummary& s, bool any_bound) {
  std::string src;
  const auto mem = experiment_memory(s, &src);
  std::string t;
  for (const auto& fam : s.families) {
    std::vector<std::string> parts;
    for (const auto& th : thresholds_of(s)) {
      const auto* st = s.find_strategy("per_stream", fam, th.name, stats::QView::kPairedCiSafe);
      if (!st || !mem) continue;
      if (!st->admissible) {
        parts.push_back(fmt::format("no swept Q meets {} on every stream", th.name));
        continue;
      }
      const auto r = cache_row(s, *mem, *st);
      if (!r.ok) continue;
      std::string cr = fmt::format("CR {} ({} fewer bits in the compressed streams", fmt_cr(r.wf / r.wb),
                                   fmt_fixed(100.0 * (1.0 - r.wb / r.wf), 1) + " %");
      if (mem->indexer_keys_per_token > 0) {
        cr += fmt::format("; {} fewer KV bytes per token once V4's uncompressed FP8 indexer keys are counted",
                          fmt_fixed(100.0 * (1.0 - r.bytes / r.base_bytes), 1) + " %");
      }
      cr += ")";
      if (r.min_margin && *r.min_margin < kMarginalMargin) {
        cr += fmt::format(", marginal: {} has margin {}", r.min_stream, fmt_percent(*r.min_margin));
      }
      if (!parts.empty() && parts.back().rfind(cr, 0) == 0) {
        parts.back() += " and " + th.name;
      } else {
        parts.push_back(cr + " at threshold " + th.name);
      }
    }
    if (!parts.empty()) {
      t += fmt::format("Keeping every stream within its budget with the interval, not just the mean (paired view), "
                       "{} stores the whole cache at {} against {}. ",
                       upper(fam), fmt::join(parts, "; "), baseline_label(s));
    }
    if (mem) t += small_weight_text(s, *mem, fam);
  }
  if (any_bound) t += "Where the grid leaves a gap these CRs are lower bounds: more compression may be usable. ";
  t += "They hold for streams with this run's statistics (see the caveats), not for the trained V4-Flash cache, "
       "whose published ratios differ (see Published vs this run).";
  return t;
}

// A rise of the quantity a view compares with its budget (point: mean
// rel-MSE; CI-safe: mean + half-width; paired CI-safe: upper end of the ratio
// interval) from one swept Q to the next: the monotonicity the grid's
// exactness assumes, checked in the view the answer uses.
struct ViewRise {
  std::string stream;
  std::string family;
  stats::QView view;
  int q_lo = 0, q_hi = 0;
  double used_lo = 0.0, used_hi = 0.0;
  bool below_answer = false;  // q_lo is below some threshold's Q_min in this view
};

std::vector<ViewRise> view_rises(const stats::StudySummary& s) {
  std::vector<ViewRise> out;
  const auto ths = thresholds_of(s);
  if (ths.empty()) return out;
  for (const auto& stream : s.streams) {
    for (const auto& fam : s.families) {
      for (auto v : views_of(s)) {
        const auto* b = s.find_best_q(stream, fam, ths.front().name, v);  // used does not depend on m
        if (!b) continue;
        int top = 0;
        for (const auto& th : ths) {
          const auto* x = s.find_best_q(stream, fam, th.name, v);
          if (x && x->q_min) top = std::max(top, *x->q_min);
        }
        for (std::size_t i = 0; i + 1 < b->checks.size(); ++i) {
          const auto &a = b->checks[i], &n = b->checks[i + 1];
          if (!a.has_interval || !n.has_interval || !(n.used > a.used)) continue;
          out.push_back({stream, fam, v, a.q, n.q, a.used, n.used, a.q < top});
        }
      }
    }
  }
  return out;
}

std::string grid_exact_text(const stats::StudySummary& s) {
  std::vector<std::string> below;
  for (const auto& r : view_rises(s)) {
    if (r.below_answer) {
      below.push_back(fmt::format("{} {} {} view, Q={} to {}", stream_short(r.stream), upper(r.family),
                                  view_label(r.view), r.q_lo, r.q_hi));
    }
  }
  return fmt::format(
      "**Grid.** Every answer is exact on the integer Q grid in this sense: for each answer a swept Q at or above "
      "the largest Q with fewer bits (the top of the next cheaper bit class) was run and fails, and every Q between "
      "it and Q_min costs Q_min's bits. Smaller Q values were not all run; they are taken to fail because the error "
      "falls with Q. "
      "Checked on the swept Q in each view the answers use (mean, mean + half-width, upper end of the paired "
      "interval): {}.",
      below.empty() ? std::string("the compared quantity never rises with Q below an answer")
                    : fmt::format("it rises below an answer at {} (see the monotonicity check), so there the "
                                  "assumption is not supported by the swept Q",
                                  fmt::join(below, "; ")));
}

// "Not the trained cache" line: the published ratios of the report codec.
std::string published_line(const stats::StudySummary& s, const MaxUsableOptions& opt) {
  if (!opt.published) return "";
  std::vector<std::string> parts;
  for (const auto& stream : s.streams) {
    const auto r = published_ratio(*opt.published, stream, opt.codec);
    if (!r.found) continue;
    parts.push_back(fmt::format("{} {}{}", stream_short(stream), fmt_fixed(r.mean, 3),
                                r.lo && r.hi ? fmt::format(" [{}, {}]", fmt_fixed(*r.lo, 3), fmt_fixed(*r.hi, 3))
                                             : std::string(" (ratio of means)")));
  }
  if (parts.empty()) return "";
  return fmt::format(" The published study's {} / FP8 ratios are {} (see Published vs this run).",
                     codec_label(opt.codec), fmt::join(parts, ", "));
}

void summary_section(Document& d, const stats::StudySummary& s, const ReportProvenance& prov,
                     const MaxUsableOptions& opt) {
  d.heading(2, "Summary");
  std::string th;
  for (const auto& t : thresholds_of(s)) {
    th += (th.empty() ? "" : ", ") + fmt::format("{} = {}x", t.name, fmt_fixed(t.factor, 2));
  }
  const std::string bl = baseline_label(s);
  d.paragraph(fmt::format(
      "**Question.** What is the largest compression ratio (the smallest Q) at which each lattice keeps the rel-MSE "
      "of {} within a budget of the {} baseline's, per stream and for the whole cache? Budgets m x the baseline's "
      "error with {}. Experiment `{}`: n = {} passages, write-path mode `{}`, baseline {}.{}",
      data_source_text(data_source(s, prov)), bl, th, s.experiment.name, s.n_passages, write_path_of(s), baseline_format(s),
      published_line(s, opt)));
  bool any_bound = false, same_abc = false;
  for (const auto& fam : s.families) {
    d.paragraph(fmt::format("**Answer** for {}, per stream:", upper(fam)));
    answer_table(d, s, fam, opt.bits_of, &any_bound, &same_abc);
    whole_cache_table(d, s, fam);
  }
  d.paragraph(
      "**Verdict rules.** The headline is the *paired CI-safe* view: a Q meets threshold m when the upper end of the "
      "95 % interval of its per-passage ratio to the baseline is <= m, so no answer claims more than its interval "
      "shows. Beside it: the published *CI-safe* view (the codec's mean rel-MSE plus its own unpaired 95 % "
      "half-width <= m x the baseline's mean) and the *point* view (means only, no interval: not a verdict). The "
      "answer is the largest swept Q with the bits of the smallest admissible one.");
  if (any_bound) {
    d.paragraph(fmt::format(
        "**Grid.** Where the table says *lower bound*, Q values between the last failing and the first passing swept "
        "Q were not run, so a smaller Q (more compression) may also pass: the CR shown is a lower bound until "
        "`kvlab refine` runs the suggested Q values and the sweep is regenerated.{}",
        same_abc ? " Where A, B and C give the same Q this comes from that gap in the grid, not from the codec: "
                   "every threshold's boundary falls between the same two swept Q values."
                 : ""));
  } else {
    d.paragraph(grid_exact_text(s));
  }
  std::vector<std::string> splits;
  for (const auto& fam : s.families) {
    for (const auto& x : view_splits(s, fam)) splits.push_back(x);
  }
  if (!splits.empty()) {
    d.paragraph(fmt::format(
        "**Two views, one set of runs.** {}. FINDINGS_N8 calls a stream a *win* by the paired definition (upper end "
        "of the ratio interval below 1, this report's paired view at threshold A) and shows the same CI-safe test in "
        "its summary's last column, so the two reports agree once the view is named: the paired ratio cancels the "
        "passage-to-passage variation both codecs share, the CI-safe view adds the codec's whole spread to its mean.",
        fmt::join(splits, "; ")));
  }
  d.paragraph("**What this means.** " + meaning_text(s, any_bound));
  decisions_section(d, opt.decisions);
}

// The published study's own threshold answers (published solver, SPEC
// section 5) beside this run's in the same view, with the published grid.
void published_answers_section(Document& d, const stats::StudySummary& s, const MaxUsableOptions& opt) {
  if (!opt.published) return;
  const auto& pub = *opt.published;
  Table t({"stream", "threshold", "view", "published Q_min", "bits", "CR vs FP8", "margin",
           "below Q_min on the published grid", "this run's Q (same view)", "this run's CR"},
          {Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
           Align::kLeft, Align::kRight, Align::kRight});
  std::vector<int> grid;
  std::string grid_stream;
  for (const auto& fam : s.families) {
    for (const auto& stream : s.streams) {
      for (const auto& th : thresholds_of(s)) {
        for (auto v : {stats::QView::kPoint, stats::QView::kCiSafe}) {
          const auto a = published_answer(pub, stream, fam, th, v == stats::QView::kCiSafe);
          if (!a.found) continue;
          if (a.grid.size() > grid.size()) grid = a.grid;
          const auto* b = s.find_best_q(stream, fam, th.name, v);
          const std::string thl = fmt::format("{} ({}x)", th.name, fmt_fixed(th.factor, 2));
          std::string below = kNotAvailable;
          if (a.admissible) {
            const auto it = std::find(a.grid.begin(), a.grid.end(), a.q_min);
            if (it == a.grid.begin()) {
              below = "nothing: Q_min is the grid's smallest Q";
            } else if (it != a.grid.end()) {
              const int prev = *(it - 1);
              below = prev + 1 < a.q_min ? fmt::format("Q={} fails; Q={}-{} not run", prev, prev + 1, a.q_min - 1)
                                         : fmt::format("Q={} fails", prev);
            }
          }
          t.add_row({stream_cell(stream), thl, view_label(v),
                     a.admissible ? fmt_int(a.q_min) : std::string("not admissible"),
                     a.admissible ? fmt_bits(a.bits) : "", a.admissible ? fmt_cr(a.cr_vs_fp8) : "",
                     a.admissible ? margin_text(a.margin) : "", below, q_cell(b),
                     b && b->admissible ? fmt_cr(b->cr_vs_fp8) : std::string(kNotAvailable)});
        }
      }
    }
  }
  if (t.rows() == 0) return;
  std::string g;
  for (int q : grid) g += (g.empty() ? "" : ", ") + std::to_string(q);
  d.heading(3, "The published study's own answers");
  d.paragraph(fmt::format(
      "The published solver's answers (SPEC section 5: Q_min = the smallest swept Q whose mean, or mean + 95 % "
      "half-width in the CI-safe view, fits m x the mean FP8 rel-MSE; margin at Q_min), computed from `{}`'s "
      "per-stream summaries, beside this run's answer in the same view. The published grid is Q = {}: a Q_min "
      "with a gap below it, or at the grid's smallest Q, is a grid artefact (a smaller Q was not run and may pass), "
      "so published and kvlab answers are comparable only where both grids pin the boundary down.",
      pub.experiment, g.empty() ? std::string(kNotAvailable) : g));
  d.table(t);
}

void overview_section(Document& d, const stats::StudySummary& s) {
  d.heading(2, "Overview");
  const auto ths = thresholds_of(s);
  const auto views = views_of(s);
  const bool has_point = std::find(views.begin(), views.end(), stats::QView::kPoint) != views.end();
  const bool has_ci = std::find(views.begin(), views.end(), stats::QView::kCiSafe) != views.end();
  if (!has_point && !has_ci) return;
  d.paragraph(
      "Recommended Q per stream (the largest swept Q with the bits of the smallest admissible one), its bits "
      "and its compression ratio against FP8, for each threshold in the point and the CI-safe view. The "
      "detail, including the paired view, follows.");
  for (const auto& fam : s.families) {
    std::vector<std::string> headers = {upper(fam) + " stream"};
    std::vector<Align> aligns = {Align::kLeft};
    for (const auto& th : ths) {
      if (has_point) headers.push_back(fmt::format("{} ({}x) point", th.name, fmt_fixed(th.factor, 2)));
      if (has_ci) headers.push_back(fmt::format("{} ({}x) CI-safe", th.name, fmt_fixed(th.factor, 2)));
    }
    aligns.resize(headers.size(), Align::kLeft);
    Table t(headers, aligns);
    bool any = false;
    for (const auto& stream : s.streams) {
      std::vector<std::string> row = {stream_cell(stream)};
      bool stream_any = false;
      for (const auto& th : ths) {
        for (auto v : {stats::QView::kPoint, stats::QView::kCiSafe}) {
          if ((v == stats::QView::kPoint && !has_point) || (v == stats::QView::kCiSafe && !has_ci)) continue;
          const auto* b = s.find_best_q(stream, fam, th.name, v);
          stream_any = stream_any || b != nullptr;
          row.push_back(compact_cell(b));
        }
      }
      if (stream_any) {
        t.add_row(row);
        any = true;
      }
    }
    if (any) d.table(t);
  }
}

void best_q_section(Document& d, const stats::StudySummary& s) {
  d.heading(2, "Max usable Q per stream");
  const auto ths = thresholds_of(s);
  const auto views = views_of(s);
  for (const auto& fam : s.families) {
    d.heading(3, upper(fam));
    Table t({"stream", "threshold", "view", "Q_min", "recommended Q", "bits", "CR vs FP8", "CR vs bf16",
             "bit change vs FP8", "margin (at which Q)", "note"},
            {Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight,
             Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kLeft});
    bool any = false;
    for (const auto& stream : s.streams) {
      for (const auto& th : ths) {
        for (auto v : views) {
          const auto* b = s.find_best_q(stream, fam, th.name, v);
          if (!b) continue;
          any = true;
          const std::string thl = fmt::format("{} ({}x)", th.name, fmt_fixed(th.factor, 2));
          if (!b->admissible || !b->q_min) {
            t.add_row({stream_cell(stream), thl, view_label(v), "not admissible", "", "", "", "", "", "",
                       b->note});
            continue;
          }
          std::string margin = margin_text(b->margin);
          if (b->q_recommended && *b->q_recommended != *b->q_min) {
            const auto mr = margin_at(*b, *b->q_recommended);
            margin = fmt::format("{} at Q_min={}; {} at Q={}", margin, *b->q_min,
                                 mr ? margin_text(*mr) : std::string(kNotAvailable), *b->q_recommended);
          }
          t.add_row({stream_cell(stream), thl, view_label(v), fmt_int(*b->q_min),
                     b->q_recommended ? fmt_int(*b->q_recommended) : kNotAvailable, fmt_bits(b->bits),
                     fmt_cr(b->cr_vs_fp8), fmt_cr(b->cr_vs_bf16),
                     b->bit_saving ? fmt_percent(-*b->bit_saving) : kNotAvailable, margin, b->note});
        }
      }
    }
    if (any) {
      d.table(t);
    } else {
      d.paragraph("No stream of this family has an FP8 baseline to set a budget.");
    }
  }
}

void strategies_section(Document& d, const stats::StudySummary& s) {
  d.heading(2, "Deployment strategies");
  if (s.strategies.empty()) {
    d.paragraph("No strategies: the experiment defines no layer mix, or no stream has a baseline.");
    return;
  }
  d.paragraph(
      "*uniform*: one Q for every stream (the smallest swept Q admissible on all of them); "
      "*per_stream*: each stream its own Q_min. Bits are memory weighted (by stored bytes per token, as in the "
      "summary); CR vs bf16 = 16 D / weighted bits.");
  std::string src;
  const auto mem = experiment_memory(s, &src);
  const std::string bl = baseline_label(s);
  Table t({"family", "threshold", "view", "strategy", "Q", "memory-weighted bits", "CR vs " + bl, "CR vs bf16",
           "bit change vs " + bl, "note"},
          {Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight,
           Align::kRight, Align::kRight, Align::kRight, Align::kLeft});
  for (const auto& st : s.strategies) {
    const std::string thl = fmt::format("{} ({}x)", st.threshold.name, fmt_fixed(st.threshold.factor, 2));
    if (!st.admissible) {
      t.add_row({upper(st.family), thl, view_label(st.view), st.name, "not admissible", "", "", "", "",
                 st.note});
      continue;
    }
    std::string q;
    if (st.name == "uniform" && st.uniform_q) {
      q = fmt::format("Q={}", *st.uniform_q);
    } else {
      for (const auto& ss : st.streams) {
        q += (q.empty() ? "" : ", ") +
             fmt::format("{} {}", stream_short(ss.stream), ss.q ? fmt_int(*ss.q) : std::string("-"));
      }
    }
    std::map<std::string, double> bits, base;
    int dim = 0;
    for (const auto& ss : st.streams) {
      bits[ss.stream] = ss.bits;
      base[ss.stream] = ss.fp8_bits;
      dim = ss.dim;
    }
    const auto wb = mem ? memory_weighted_bits(*mem, bits) : std::nullopt;
    const auto wf = mem ? memory_weighted_bits(*mem, base) : std::nullopt;
    if (!wb || !wf || *wb <= 0) {
      t.add_row({upper(st.family), thl, view_label(st.view), st.name, q, kNotAvailable, kNotAvailable, kNotAvailable,
                 kNotAvailable, "no memory model (layer mix and context needed)"});
      continue;
    }
    t.add_row({upper(st.family), thl, view_label(st.view), st.name, q, fmt_fixed(*wb, 1), fmt_cr(*wf / *wb),
               fmt_cr(16.0 * dim / *wb), fmt_percent(*wb / *wf - 1.0), st.note});
  }
  d.table(t);
}

// Threshold names a swept Q meets on one stream, family and view ("A B C", "-").
std::string meets(const stats::StudySummary& s, const stats::ParetoRow& row, stats::QView v) {
  if (!row.q) return "";
  std::string out;
  bool known = false;
  for (const auto& th : thresholds_of(s)) {
    const auto* b = s.find_best_q(row.stream, row.family, th.name, v);
    if (!b) continue;
    for (const auto& ch : b->checks) {
      if (ch.q != *row.q) continue;
      known = true;
      if (!ch.has_interval) return kNoInterval;
      if (ch.fits) out += (out.empty() ? "" : " ") + th.name;
    }
  }
  if (!known) return kNotAvailable;
  return out.empty() ? "none" : out;
}

// "dominated by E8 Q=40" (measured), "Q=38-40 share these bits: ..." or "".
std::string operating_point(const stats::StudySummary& s, const stats::ParetoRow& row, const stats::BitsFn& bits_of) {
  const auto* cell = s.find_cell(row.stream, row.codec);
  if (!cell || row.codec == s.baseline) return "";
  if (const auto* dom = dominated_by(s, *cell)) return "dominated by " + codec_label(dom->codec);
  if (!row.q) return "";
  const auto bc = bit_class(bits_of, row.family, *row.q, cell->dim);
  if (!bc || bc->hi <= *row.q) return "";
  for (int q = bc->hi; q > *row.q; --q) {
    if (s.find_cell(row.stream, fmt::format("{}:q={}", row.family, q))) return "";  // the measured check above decides
  }
  return fmt::format("Q={}-{} share these bits: Q={} expected lower error (not run)", bc->lo, bc->hi, bc->hi);
}

void pareto_section(Document& d, const stats::StudySummary& s, const std::string& stem,
                    const stats::BitsFn& bits_of) {
  d.heading(2, "Pareto table: every swept Q");
  const auto metrics = extra_metrics(s);
  d.paragraph(fmt::format(
      "All swept (stream, codec) points with their recorded bits. *frontier*: no other point of the "
      "stream has at most as many bits and a lower mean rel-MSE. *operating point*: the point that dominates it "
      "(at most its bits, lower mean rel-MSE), or the larger Q values that cost the same bits and were not run. "
      "The last columns list the thresholds each point meets in each view.{}",
      metrics.empty() ? std::string()
                      : " The attention metrics recorded with the runs are shown as paired ratios to the baseline "
                        "with their 95 % intervals."));
  const auto views = views_of(s);
  const std::string bl = baseline_label(s);
  std::vector<std::string> headers = {"stream", "codec", "bits", "CR vs " + bl, "CR vs bf16", "rel-MSE",
                                      "ratio to " + bl};
  std::vector<Align> aligns = {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight,
                               Align::kRight, Align::kRight, Align::kRight};
  for (const auto* m : metrics) {
    headers.push_back(std::string(m->label) + " ratio [95 % CI]");
    aligns.push_back(Align::kRight);
  }
  headers.push_back("frontier");
  aligns.push_back(Align::kCenter);
  headers.push_back("operating point");
  aligns.push_back(Align::kLeft);
  for (auto v : views) {
    headers.push_back("meets (" + view_label(v) + ")");
    aligns.push_back(Align::kLeft);
  }
  Table t(headers, aligns);
  // Rows grouped by stream (summary order), then by bits, then by Q.
  std::vector<const stats::ParetoRow*> rows;
  for (const auto& row : s.pareto) rows.push_back(&row);
  auto stream_rank = [&](const std::string& st) {
    return std::find(s.streams.begin(), s.streams.end(), st) - s.streams.begin();
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const stats::ParetoRow* a, const stats::ParetoRow* b) {
    return std::make_tuple(stream_rank(a->stream), a->bits, a->q.value_or(0)) <
           std::make_tuple(stream_rank(b->stream), b->bits, b->q.value_or(0));
  });
  for (const auto* rp : rows) {
    const auto& row = *rp;
    const auto* cell = s.find_cell(row.stream, row.codec);
    std::vector<std::string> r = {stream_cell(row.stream), codec_label(row.codec), fmt_bits(row.bits),
                                  cell ? fmt_cr(cell->cr_vs_fp8) : kNotAvailable,
                                  cell ? fmt_cr(cell->cr_vs_bf16) : kNotAvailable, fmt_pm_sci(row.rel_mse.mean, row.rel_mse.ci95_hw),
                                  row.ratio_vs_fp8 ? fmt_ratio(*row.ratio_vs_fp8) : kNotAvailable};
    for (const auto* m : metrics) {
      const auto* x = cell ? cell->metric_ratio(m->name) : nullptr;
      r.push_back(x ? ratio_with_ci(*x) : std::string(kNotAvailable));
    }
    r.push_back(row.on_frontier ? "yes" : "");
    r.push_back(operating_point(s, row, bits_of));
    for (auto v : views) r.push_back(row.family == stats::kFp8Codec ? "" : meets(s, row, v));
    t.add_row(r);
  }
  d.table(t);
  d.image("Pareto plot: bits per vector vs rel-MSE ratio to FP8", stem + "_pareto.svg");
}

void monotonicity_section(Document& d, const stats::StudySummary& s) {
  d.heading(2, "Monotonicity check");
  if (s.monotonicity.empty()) {
    d.paragraph(
        "On every stream and family the mean rel-MSE falls (or stays equal) from each swept Q to the "
        "next, so the smallest admissible Q is well defined.");
  } else {
    d.paragraph(
        "The published solver assumes rel-MSE falls monotonically with Q. Between these consecutive swept "
        "Q values it rose; the paired difference is per passage rel-MSE(higher Q) - rel-MSE(lower Q).");
    Table t({"stream", "family", "Q", "next Q", "rel-MSE at Q", "rel-MSE at next Q", "same bits",
             "paired difference ± 95 % CI", "beyond noise"},
            {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
             Align::kCenter, Align::kRight, Align::kCenter});
    for (const auto& m : s.monotonicity) {
      std::string paired = kNotAvailable, beyond = kNotAvailable;
      if (m.paired) {
        paired = fmt_pm_sci(m.paired->diff, m.paired->ci95_hw, 2, 3);
        if (m.paired->ci95_hw) beyond = m.paired->significant() ? "yes" : "no";
        else beyond = kNoInterval;
      }
      t.add_row({stream_cell(m.stream), upper(m.family), fmt_int(m.q_lo), fmt_int(m.q_hi), fmt_sci(m.mean_lo, 4),
                 fmt_sci(m.mean_hi, 4), m.same_bits ? "yes" : "no", paired, beyond});
    }
    d.table(t, "beyond noise: the paired 95 % interval of the difference excludes 0.");
  }
  const auto rises = view_rises(s);
  if (rises.empty()) {
    d.paragraph(
        "In every view the answers use, the compared quantity (point: mean rel-MSE; CI-safe: mean + 95 % half-width; "
        "paired CI-safe: upper end of the ratio interval) falls or stays equal from each swept Q to the next.");
    return;
  }
  d.paragraph(
      "The same check in the views the answers use: the compared quantity (point: mean rel-MSE; CI-safe: mean + "
      "95 % half-width; paired CI-safe: upper end of the ratio interval) rose between these consecutive swept Q. "
      "*below an answer*: the lower Q lies below some threshold's Q_min in that view, where the grid's exactness "
      "relies on the fall.");
  Table t({"stream", "family", "view", "Q", "next Q", "compared at Q", "compared at next Q", "below an answer"},
          {Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
           Align::kCenter});
  for (const auto& r : rises) {
    const bool ratio = r.view == stats::QView::kPairedCiSafe;
    t.add_row({stream_cell(r.stream), upper(r.family), view_label(r.view), fmt_int(r.q_lo), fmt_int(r.q_hi),
               ratio ? fmt_fixed(r.used_lo, 4) : fmt_sci(r.used_lo, 4),
               ratio ? fmt_fixed(r.used_hi, 4) : fmt_sci(r.used_hi, 4), r.below_answer ? "yes" : "no"});
  }
  d.table(t);
}

void suggestions_section(Document& d, const stats::StudySummary& s) {
  d.heading(2, "Suggested Q values not yet run");
  if (s.suggestions.empty()) {
    d.paragraph("None: every threshold's boundary is pinned down by the swept Q values.");
    return;
  }
  Table t({"stream", "codec", "bits", "threshold", "view", "reason"},
          {Align::kLeft, Align::kLeft, Align::kRight, Align::kLeft, Align::kLeft, Align::kLeft});
  for (const auto& sg : s.suggestions) {
    t.add_row({stream_cell(sg.stream), fmt::format("`{}`", sg.codec()), fmt_bits(sg.bits), sg.threshold,
               view_label(sg.view), sg.reason});
  }
  d.table(t);
}

}  // namespace

RenderedReport render_max_usable_cr(const stats::StudySummary& s, const ReportProvenance& prov,
                                    const MaxUsableOptions& opt) {
  bool any = false;
  for (const auto& c : s.cells) any = any || (c.q && c.ratio_vs_fp8);
  KVLAB_CHECK(any,
              "experiment '{}' has no lattice codec with an FP8 (fp8_per64) baseline on the same passages; "
              "nothing to report",
              s.experiment.name);
  Document d;
  d.heading(1, fmt::format("Max usable compression ratio ({})", s.experiment.name));
  d.paragraph(generated_note("kvlab report max-usable-cr"));
  summary_section(d, s, prov, opt);
  caveats_section(d, s, prov, opt.published);
  published_vs_run_section(d, s, opt.published, opt.codec);
  published_answers_section(d, s, opt);
  provenance_section(d, s, prov);
  method_section(d, s);
  overview_section(d, s);
  best_q_section(d, s);
  strategies_section(d, s);
  pareto_section(d, s, opt.file_stem, opt.bits_of);
  monotonicity_section(d, s);
  suggestions_section(d, s);
  if (!s.warnings.empty()) {
    d.heading(2, "Warnings from the statistics");
    d.bullets(s.warnings);
  }
  RenderedReport r;
  r.markdown = d.str();
  r.files = max_usable_plots(s, opt.file_stem);
  return r;
}

}  // namespace kvlab::report
