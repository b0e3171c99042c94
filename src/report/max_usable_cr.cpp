// MAX_USABLE_CR report of a Q sweep: see reports.h. Formatting only; the
// numbers come from stats::StudySummary (best_q, strategies, pareto,
// monotonicity, suggestions).
#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "common/error.h"
#include "report/published.h"
#include "report/markdown.h"
#include "report/reports.h"
#include "report/sections.h"
#include "report/plots.h"

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

// Thresholds and views in the order the summary holds them.
std::vector<stats::Threshold> thresholds_of(const stats::StudySummary& s) {
  std::vector<stats::Threshold> out;
  for (const auto& b : s.best_q) {
    if (std::none_of(out.begin(), out.end(), [&](const auto& t) { return t.name == b.threshold.name; })) {
      out.push_back(b.threshold);
    }
  }
  return out;
}

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
      "Margin = (budget - used) / budget. CR = compression ratio (FP8 bits or 16 D bits of bf16, "
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
             "bit change vs FP8", "margin", "note"},
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
          t.add_row({stream_cell(stream), thl, view_label(v), fmt_int(*b->q_min),
                     b->q_recommended ? fmt_int(*b->q_recommended) : kNotAvailable, fmt_bits(b->bits),
                     fmt_cr(b->cr_vs_fp8), fmt_cr(b->cr_vs_bf16),
                     b->bit_saving ? fmt_percent(-*b->bit_saving) : kNotAvailable, fmt_percent(b->margin),
                     b->note});
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
      "*per_stream*: each stream its own Q_min. Bits are layer-weighted, sum w_s bits_s, with the "
      "weights of the layer mix.");
  Table t({"family", "threshold", "view", "strategy", "Q", "layer-weighted bits", "CR vs FP8", "CR vs bf16",
           "bit change vs FP8", "note"},
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
    t.add_row({upper(st.family), thl, view_label(st.view), st.name, q, fmt_bits(st.weighted_bits),
               fmt_cr(st.cr_vs_fp8), fmt_cr(st.cr_vs_bf16), fmt_percent(-st.bit_saving), st.note});
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

void pareto_section(Document& d, const stats::StudySummary& s, const std::string& stem) {
  d.heading(2, "Pareto table: every swept Q");
  d.paragraph(
      "All swept (stream, codec) points with their recorded bits. *frontier*: no other point of the "
      "stream has at most as many bits and a lower mean rel-MSE. The last columns list the thresholds "
      "each point meets in each view.");
  const auto views = views_of(s);
  std::vector<std::string> headers = {"stream", "codec", "bits", "CR vs FP8", "CR vs bf16", "rel-MSE",
                                      "ratio to FP8", "frontier"};
  std::vector<Align> aligns = {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight,
                               Align::kRight, Align::kRight, Align::kRight, Align::kCenter};
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
                                  row.ratio_vs_fp8 ? fmt_ratio(*row.ratio_vs_fp8) : kNotAvailable,
                                  row.on_frontier ? "yes" : ""};
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
    return;
  }
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
  provenance_section(d, s, prov);
  method_section(d, s);
  overview_section(d, s);
  published_vs_run_section(d, s, opt.published, opt.codec);
  best_q_section(d, s);
  strategies_section(d, s);
  pareto_section(d, s, opt.file_stem);
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
