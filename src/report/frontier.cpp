// FRONTIER report and the `kvlab frontier` console/JSON views: see
// frontier.h. Formatting only; the numbers come from stats::Frontier.
#include "report/frontier.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/metric_table.h"
#include "report/console_format.h"
#include "report/markdown.h"
#include "report/sections.h"
#include "report/stats_json.h"

namespace kvlab::report {

using namespace detail;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "swa" for sliding_window_kv; other streams by name, with characters other
// than [a-z0-9_] replaced.
std::string stream_file_part(const std::string& stream) {
  std::string s = lower(stream_short(stream));
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  return s;
}

std::string plot_file(const std::string& stem, const std::string& stream) {
  return stem + "_" + stream_file_part(stream) + ".svg";
}

std::string opt_pm_sci(const std::optional<stats::Summary>& s) {
  return s ? fmt_pm_sci(s->mean, s->ci95_hw, 2, 4) : kNotAvailable;
}
std::string opt_pm_sig(const std::optional<stats::Summary>& s) {
  return s ? fmt_pm_sig(s->mean, s->ci95_hw, 2, 4) : kNotAvailable;
}
std::string opt_pm_fixed(const std::optional<stats::Summary>& s, int decimals) {
  return s ? fmt_pm_fixed(s->mean, s->ci95_hw, decimals) : kNotAvailable;
}
std::string opt_sci(const std::optional<stats::Summary>& s) { return s ? fmt_sci(s->mean, 3) : kNotAvailable; }

std::string interval_sig(const stats::Summary& s) {
  const auto lo = s.lower(), hi = s.upper();
  if (!lo || !hi) return kNoInterval;
  return "[" + fmt_sig(*lo, 3) + ", " + fmt_sig(*hi, 3) + "]";
}

bool any_attention(const stats::Frontier& f) {
  for (const auto& s : f.streams)
    for (const auto& p : s.points)
      if (p.attn_out_rel) return true;
  return false;
}

std::string baseline_label(const stats::Frontier& f) {
  return f.baseline.empty() ? std::string("none recorded") : "`" + f.baseline + "` (" + codec_label(f.baseline) + ")";
}

// "E8", "INT per-64 fp16", "Hadamard + Lloyd-Max": a rate-distortion curve's name.
std::string variant_label(const stats::FrontierPoint& p) {
  if (!p.rate) return codec_label(p.codec);
  const auto spec = stats::parse_codec_spec(p.codec);
  if (p.family == "d4" || p.family == "e8") return p.family == "d4" ? "D4" : "E8";
  if (p.family == "int" || p.family == "hadamard_int")
    return fmt::format("{}INT per-{} {}", p.family == "int" ? "" : "Hadamard + ", spec.param("block"),
                       spec.param("scale"));
  if (p.family == "hadamard_lloyd") return "Hadamard + Lloyd-Max";
  return p.variant;
}

void summary_section(Document& d, const stats::Frontier& f) {
  d.heading(2, "Summary");
  d.paragraph(fmt::format(
      "At a given storage rate, does a nested-lattice codec (D4, E8) reconstruct the KV cache with less error "
      "than the best scalar format at no more bits per vector? Experiment `{}`, write path `{}`, baseline {}, "
      "n = {} passages. Each lattice point is set against the non-lattice codec (integer, Hadamard + integer, "
      "Hadamard + Lloyd-Max, FP8, V4 native) with the least mean rel-MSE among those with no more bits per "
      "vector on the same stream; the verdict reads the 95 % interval of their per-passage rel-MSE ratio.",
      f.experiment.name, f.write_path, baseline_label(f), f.n_passages));
  Table t({"stream", "lattice", "points", "lattice better", "tied", "lattice worse", "no CI (n < 2)",
           "no scalar at <= bits", "ratio range (lattice / scalar)"},
          {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
           Align::kRight, Align::kRight});
  for (const auto& s : f.streams) {
    std::vector<std::string> fams;
    for (const auto& m : s.matched) {
      const std::string fam = stats::parse_codec_spec(m.lattice).family;
      if (std::find(fams.begin(), fams.end(), fam) == fams.end()) fams.push_back(fam);
    }
    std::sort(fams.begin(), fams.end());
    for (const auto& fam : fams) {
      std::map<stats::MatchedVerdict, int> n;
      int points = 0;
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (const auto& m : s.matched) {
        if (stats::parse_codec_spec(m.lattice).family != fam) continue;
        ++points;
        ++n[m.verdict];
        if (m.scalar && std::isfinite(m.ratio.mean)) {
          lo = std::min(lo, m.ratio.mean);
          hi = std::max(hi, m.ratio.mean);
        }
      }
      const std::string range = lo > hi ? std::string(kNotAvailable)
                                        : lo == hi ? fmt_sig(lo, 3) : fmt_sig(lo, 3) + " to " + fmt_sig(hi, 3);
      t.add_row({stream_cell(s.stream), fam == "d4" ? "D4" : fam == "e8" ? "E8" : fam, fmt_int(points),
                 fmt_int(n[stats::MatchedVerdict::kLatticeBetter]), fmt_int(n[stats::MatchedVerdict::kTied]),
                 fmt_int(n[stats::MatchedVerdict::kLatticeWorse]), fmt_int(n[stats::MatchedVerdict::kNoInterval]),
                 fmt_int(n[stats::MatchedVerdict::kNoScalar]), range});
    }
  }
  d.table(t, "Lattice points by verdict; ratio range: the mean paired ratios of those points (below 1: the "
             "lattice has less error). Each row of the matched-rate section below gives one point.");
}

void definitions_section(Document& d, const stats::Frontier& f) {
  d.heading(2, "Definitions");
  d.bullets({
      "**bits/dim** = recorded bits per stored vector / D (D = 512 for the V4 streams): the fixed-length "
      "byte format each codec writes, side information (scales, norms) included.",
      "**rel-MSE** = sum ||x - x'||^2 / sum ||x - mean||^2 over the vectors of one stream and passage; "
      "mean ± Student-t 95 % half-width over the passages.",
      fmt::format("**ratio to the baseline** = per passage rel-MSE(codec) / rel-MSE({}), then averaged "
                  "(paired).", f.baseline.empty() ? std::string("baseline") : f.baseline),
      "**entropy rate** (`entropy_bits_per_dim`) = the ideal entropy-coded rate of the same run: the "
      "empirical entropy of the stored symbols (lattice block indices, integer codes, per symbol position "
      "class) plus the side information as stored, per dimension. It is what an ideal entropy coder over "
      "those symbols would write, not what the codec writes.",
      "**Gaussian bound** (`gauss_bound_rel_mse`) = sigma^2 2^(-2R) as rel-MSE at the codec's rate "
      "R = bits/dim: the distortion-rate function of an i.i.d. Gaussian source with the stream's variance.",
      "**Water-filling bound** (`rwf_bound_rel_mse`) = reverse water-filling D(R) of a Gaussian with the "
      "stream's own covariance eigenvalues, at the same R (only where the stream has at least D vectors).",
      "**What the bounds are not.** Both assume a Gaussian source. Among sources with a given covariance the "
      "Gaussian is the hardest to compress, so for the (non-Gaussian) KV streams the true distortion-rate "
      "function lies at or below these lines: they are references, not lower bounds, and a codec may sit "
      "below them. The water-filling line uses the covariance (correlations, unequal variances); the "
      "Gaussian line only the total variance, so it lies at or above the water-filling line.",
      "**Why the water-filling line can sit many decades low.** It is computed from the sample covariance of "
      "the stream's N vectors. When the stream spans fewer than D directions (N close to D, a short passage "
      "repeated to fill the sequence, or a host with few distinct token vectors) the smallest eigenvalues are "
      "near zero and D(R) collapses: the line then measures how much a decorrelating transform could gain on "
      "this sample, not a distortion any codec of these families could reach. Compare codecs with each other "
      "and with the Gaussian line.",
      "**dB to a bound** = per passage 10 log10(rel-MSE / bound), mean ± 95 % half-width (positive: above "
      "the bound; 6.02 dB is one bit per dimension at high rate).",
      "**Pareto**: no other codec of the stream has no more bits and no more mean rel-MSE, one of them "
      "strictly less. **Hull**: a vertex of the lower convex hull of (bits/dim, mean rel-MSE) from the "
      "cheapest point to the point of least error (time-sharing two codecs reaches the segment between them).",
      "**Matched rate**: for each lattice point, the non-lattice codec with the least mean rel-MSE among those "
      "with bits per vector <= the lattice point's; ratio = per passage lattice rel-MSE / scalar rel-MSE over "
      "the passages both ran. Verdict: lattice better when the interval's upper end is below 1, lattice worse "
      "when its lower end is above 1, tied otherwise (never more than the interval shows).",
      "Intervals are conditional on these passages, this host and these weights: the passages are not "
      "independent samples of all text (each is one text repeated to fill the sequence), and one weight seed "
      "is used.",
  });
}

void matched_section(Document& d, const stats::Frontier& f) {
  d.heading(2, "Matched rate: each lattice point against the best scalar codec at no more bits");
  for (const auto& s : f.streams) {
    d.heading(3, stream_cell(s.stream));
    if (s.matched.empty()) {
      d.paragraph("No lattice codec ran on this stream.");
      continue;
    }
    Table t({"lattice", "bits/vec", "bits/dim", "rel-MSE", "best scalar at <= bits", "bits/vec", "rel-MSE",
             "ratio lattice / scalar", "95 % CI", "n", "verdict", "rate gap (bits/dim)", "lattice Pareto"},
            {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kLeft, Align::kRight, Align::kRight,
             Align::kRight, Align::kRight, Align::kRight, Align::kLeft, Align::kRight, Align::kLeft});
    for (const auto& m : s.matched) {
      if (!m.scalar) {
        t.add_row({codec_label(m.lattice), fmt_bits(m.lattice_bits), fmt_fixed(m.lattice_bits_per_dim, 3),
                   fmt_pm_sci(m.lattice_rel_mse.mean, m.lattice_rel_mse.ci95_hw), "none", kNotAvailable,
                   kNotAvailable, kNotAvailable, kNotAvailable, "0", to_string(m.verdict)});
        continue;
      }
      t.add_row({codec_label(m.lattice), fmt_bits(m.lattice_bits), fmt_fixed(m.lattice_bits_per_dim, 3),
                 fmt_pm_sci(m.lattice_rel_mse.mean, m.lattice_rel_mse.ci95_hw), codec_label(*m.scalar),
                 fmt_bits(m.scalar_bits), fmt_pm_sci(m.scalar_rel_mse.mean, m.scalar_rel_mse.ci95_hw),
                 fmt_pm_sig(m.ratio.mean, m.ratio.ci95_hw, 2, 4), interval_sig(m.ratio), fmt_int(m.ratio.n),
                 to_string(m.verdict), fmt_fixed(m.rate_gap_bits_per_dim, 3), m.lattice_pareto ? "yes" : "no"});
    }
    d.table(t, "rel-MSE: mean ± 95 % half-width over passages; ratio: per-passage lattice / scalar, paired. Rate "
               "gap: the lattice's extra bits/dim over its comparator (the scalar grid is coarse, so a verdict "
               "across a wide gap compares unequal rates); lattice Pareto: no codec of the stream has no more "
               "bits and no more error.");
  }
}

std::string flags(const stats::FrontierPoint& p) {
  std::string s;
  if (p.on_hull) s = "hull";
  if (p.pareto) s += s.empty() ? "Pareto" : ", Pareto";
  if (p.is_baseline) s += s.empty() ? "baseline" : ", baseline";
  return s.empty() ? "-" : s;
}

void stream_table(Document& d, const stats::Frontier& f, const stats::FrontierStream& s, bool attention) {
  std::vector<std::string> h = {"codec", "bits/vec", "bits/dim", "entropy bits/dim", "rel-MSE",
                                "ratio to " + codec_label(f.baseline), "Gaussian bound", "dB to Gaussian",
                                "water-filling bound", "dB to water-filling"};
  if (attention) {
    h.push_back("attn-out err");
    h.push_back("attn-out ratio");
  }
  h.push_back("n");
  h.push_back("frontier");
  std::vector<Align> a(h.size(), Align::kRight);
  a.front() = Align::kLeft;
  a.back() = Align::kLeft;
  Table t(h, a);
  for (const auto& p : s.points) {
    std::vector<std::string> r = {codec_label(p.codec), fmt_bits(p.bits_per_vector), fmt_fixed(p.bits_per_dim, 3),
                                  opt_pm_fixed(p.entropy_bits_per_dim, 3), fmt_pm_sci(p.rel_mse.mean, p.rel_mse.ci95_hw),
                                  p.is_baseline ? std::string("1 (baseline)") : opt_pm_sig(p.ratio_vs_baseline),
                                  opt_sci(p.gauss_bound), opt_pm_fixed(p.gauss_gap_db, 2), opt_sci(p.rwf_bound),
                                  opt_pm_fixed(p.rwf_gap_db, 2)};
    if (attention) {
      r.push_back(opt_pm_sci(p.attn_out_rel));
      r.push_back(p.is_baseline ? std::string("1 (baseline)") : opt_pm_sig(p.attn_out_ratio));
    }
    r.push_back(fmt_int(p.n_passages));
    r.push_back(flags(p));
    t.add_row(r);
  }
  d.table(t, "Ascending bits. n/a: metric not recorded for this run (e.g. no entropy hook, or fewer vectors "
             "than D for the water-filling bound).");
}

void frontier_section(Document& d, const stats::Frontier& f, const std::string& stem) {
  d.heading(2, "Frontier per stream");
  const bool attention = any_attention(f);
  d.paragraph(attention ? "Every codec the experiment ran, with the attention-output error (V4 attention, "
                          "`attn_out_rel`) and its paired ratio to the baseline."
                        : "Every codec the experiment ran. No attention-output error was recorded for this "
                          "experiment.");
  for (const auto& s : f.streams) {
    d.heading(3, stream_cell(s.stream));
    d.image("rel-MSE vs bits/dim, " + s.stream, plot_file(stem, s.stream));
    stream_table(d, f, s, attention);
  }
}

// " (the experiment's layer mix: SWA 2, CSA 21, HCA 20 layers)" or "".
std::string layer_mix_text(const stats::Frontier& f) {
  std::string o;
  for (const auto& [stream, layers] : f.experiment.layer_mix)
    o += fmt::format("{}{} {}", o.empty() ? "" : ", ", stream_short(stream), fmt_short(layers));
  return o.empty() ? o : " (the experiment's layer mix: " + o + " layers)";
}

void caveats_section(Document& d, const stats::Frontier& f) {
  d.heading(2, "Caveats");
  d.bullets({
      fmt::format("Write path `{}`: {} Every figure here is per stream; no layer weighting is applied{}.",
                  f.write_path,
                  f.write_path == "v4" ? "SPEC-V4-ATTENTION.md (per-layer-kind RoPE base and YaRN, UE8M0 FP8 "
                                         "scales)."
                                       : "SPEC.md section 2 (the published harness's write path).",
                  layer_mix_text(f)),
      fmt::format("Baseline {}: every ratio to the baseline uses it; the matched-rate table does not (it compares "
                  "each lattice point with the best scalar codec at no more bits).",
                  baseline_label(f)),
      "Rates are the codecs' fixed-length formats; the entropy column says how much an entropy coder over "
      "the same symbols could save, but no codec here writes that many bits.",
  });
  std::vector<std::string> w;
  for (const auto& x : f.warnings) w.push_back(x);
  if (!w.empty()) {
    d.paragraph("Warnings from the statistics:");
    d.bullets(w);
  }
}

}  // namespace

svg::Plot frontier_plot(const stats::Frontier& f, const stats::FrontierStream& s) {
  svg::Plot plot;
  plot.title = "rel-MSE vs bits/dim, " + stream_short(s.stream) + " (" + s.stream + ")";
  plot.subtitle = fmt::format("experiment {}, write path {}, n = {} passages; bars: 95 % CI over passages",
                              f.experiment.name, f.write_path, f.n_passages);
  plot.x.label = "bits per dimension";
  plot.y.label = "rel-MSE (log scale)";
  plot.y.scale = svg::Scale::kLog;
  const std::vector<svg::Marker> markers = {svg::Marker::kCircle, svg::Marker::kSquare, svg::Marker::kDiamond,
                                            svg::Marker::kTriangle, svg::Marker::kCross};
  std::vector<std::string> variants;
  for (const auto& p : s.points)
    if (std::find(variants.begin(), variants.end(), p.variant) == variants.end()) variants.push_back(p.variant);
  std::sort(variants.begin(), variants.end());
  std::size_t k = 0;  // index among the non-baseline series
  for (std::size_t i = 0; i < variants.size(); ++i) {
    svg::Series se;
    // The baseline in black squares; the others take the palette without its
    // black (entry 6), a marker each, hollow from the sixth series on.
    if (variants[i] == f.baseline) {
      se.color = "#000000";
      se.marker = svg::Marker::kSquare;
    } else {
      se.color = svg::palette(static_cast<int>(k < 6 ? k : k + 1));
      se.marker = markers[k % markers.size()];
      se.filled = k < markers.size();
      ++k;
    }
    se.connect = true;
    se.dodge = false;
    for (const auto& p : s.points) {
      if (p.variant != variants[i] || !(p.rel_mse.mean > 0) || !std::isfinite(p.rel_mse.mean)) continue;
      if (se.name.empty()) se.name = variant_label(p);
      svg::Point pt;
      pt.x = p.bits_per_dim;
      pt.y = p.rel_mse.mean;
      const auto lo = p.rel_mse.lower(), hi = p.rel_mse.upper();
      if (lo && hi && *lo > 0) {
        pt.y_lo = *lo;
        pt.y_hi = *hi;
      }
      pt.tooltip = fmt::format("{}: {} bits/dim, rel-MSE {}", p.codec, fmt_fixed(p.bits_per_dim, 3),
                               fmt_pm_sci(p.rel_mse.mean, p.rel_mse.ci95_hw));
      se.points.push_back(pt);
    }
    if (!se.points.empty()) plot.series.push_back(std::move(se));
  }
  KVLAB_CHECK(!plot.series.empty(), "stream {} of experiment '{}' has no point with a positive rel-MSE to plot",
              s.stream, f.experiment.name);
  // The bounds at each recorded rate (ascending bits/dim, the first point of each rate).
  const auto bound_series = [&](const char* name, const std::string& color,
                                std::optional<stats::Summary> stats::FrontierPoint::*m) {
    svg::Series se;
    se.name = name;
    se.color = color;
    se.marker = svg::Marker::kCross;
    se.filled = false;
    se.connect = true;
    se.dodge = false;
    std::map<double, double> by_rate;
    for (const auto& p : s.points)
      if ((p.*m) && (p.*m)->mean > 0 && std::isfinite((p.*m)->mean)) by_rate.emplace(p.bits_per_dim, (p.*m)->mean);
    for (const auto& [x, y] : by_rate) se.points.push_back({x, y, std::nullopt, std::nullopt, "", ""});
    if (!se.points.empty()) plot.series.push_back(std::move(se));
  };
  bound_series("Gaussian bound (i.i.d., same variance)", "#555555", &stats::FrontierPoint::gauss_bound);
  bound_series("water-filling bound (stream covariance)", "#999999", &stats::FrontierPoint::rwf_bound);
  // Every codec again at its ideal entropy-coded rate (same error, fewer bits).
  svg::Series ent;
  ent.name = "any codec at its entropy-coded rate";
  ent.color = "#999999";
  ent.marker = svg::Marker::kCircle;
  ent.filled = false;
  ent.dodge = false;
  for (const auto& p : s.points) {
    if (!p.entropy_bits_per_dim || !(p.rel_mse.mean > 0) || !std::isfinite(p.rel_mse.mean) ||
        !std::isfinite(p.entropy_bits_per_dim->mean))
      continue;
    ent.points.push_back({p.entropy_bits_per_dim->mean, p.rel_mse.mean, std::nullopt, std::nullopt, "",
                          fmt::format("{} entropy-coded: {} bits/dim (stored: {})", p.codec,
                                      fmt_fixed(p.entropy_bits_per_dim->mean, 3), fmt_fixed(p.bits_per_dim, 3))});
  }
  if (!ent.points.empty()) plot.series.push_back(std::move(ent));
  return plot;
}

RenderedReport render_frontier(const stats::Frontier& f, const ReportProvenance& prov,
                               const FrontierReportOptions& opt) {
  KVLAB_CHECK(!f.streams.empty(), "experiment '{}' has no finished runs to put on a frontier", f.experiment.name);
  RenderedReport out;
  Document d;
  d.heading(1, "Rate-distortion frontier: " + f.experiment.name);
  d.paragraph(generated_note(opt.command));
  summary_section(d, f);
  matched_section(d, f);
  frontier_section(d, f, opt.file_stem);
  definitions_section(d, f);
  caveats_section(d, f);
  stats::StudySummary s;  // what the shared provenance section reads
  s.experiment = f.experiment;
  s.n_passages = f.n_passages;
  provenance_section(d, s, prov);
  out.markdown = d.str();
  for (const auto& st : f.streams)
    out.files.push_back({plot_file(opt.file_stem, st.stream), svg::render(frontier_plot(f, st))});
  return out;
}

// ---------------------------------------------------------------- console

std::string frontier_text(const stats::Frontier& f) {
  std::string o = fmt::format("experiment {}: write path {}, baseline {}, n = {} passages\n", f.experiment.name,
                              f.write_path, f.baseline.empty() ? "none" : f.baseline, f.n_passages);
  for (const auto& s : f.streams) {
    o += fmt::format("\n{}\n  {:<40} {:>8} {:>7} {:>8} {:>22} {:>20} {:>15} {:>15}  {}\n", s.stream, "codec",
                     "bits/vec", "bits/d", "H bits/d", "rel-MSE ± CI95", "ratio ± CI95", "dB to Gauss", "dB to RWF",
                     "frontier");
    for (const auto& p : s.points) {
      const auto ci = [](const std::optional<stats::Summary>& x, int sig) {
        return x ? console_ci(*x, sig) : std::string("-");
      };
      o += fmt::format("  {:<40} {:>8} {:>7.3f} {:>8} {:>22} {:>20} {:>15} {:>15}  {}\n", p.codec,
                       console_num(p.bits_per_vector, 6), p.bits_per_dim,
                       p.entropy_bits_per_dim ? console_num(p.entropy_bits_per_dim->mean) : "-",
                       console_ci(p.rel_mse, 3), p.is_baseline ? "baseline" : ci(p.ratio_vs_baseline, 3),
                       ci(p.gauss_gap_db, 3), ci(p.rwf_gap_db, 3), flags(p));
    }
    if (s.matched.empty()) continue;
    o += fmt::format("  matched rate (best non-lattice codec at <= bits per vector, paired ratio lattice / scalar)\n");
    for (const auto& m : s.matched) {
      if (!m.scalar) {
        o += fmt::format("  {:<16} {:>7} bits: {}\n", m.lattice, console_num(m.lattice_bits, 6), to_string(m.verdict));
        continue;
      }
      o += fmt::format("  {:<16} {:>7} bits vs {:<40} {:>7} bits (gap {:.3f} bits/dim): ratio {} (n={}) {}\n",
                       m.lattice, console_num(m.lattice_bits, 6), *m.scalar, console_num(m.scalar_bits, 6),
                       m.rate_gap_bits_per_dim, console_ci(m.ratio, 3), m.ratio.n, to_string(m.verdict));
    }
  }
  for (const auto& w : f.warnings) o += "note: " + w + "\n";
  return o;
}

std::string frontier_json(const stats::Frontier& f) {
  using nlohmann::json;
  const auto opt = [](const std::optional<stats::Summary>& s) { return s ? summary_json(*s) : json(nullptr); };
  json j;
  j["experiment"] = f.experiment.name;
  j["baseline"] = f.baseline;
  j["write_path"] = f.write_path;
  j["n_passages"] = f.n_passages;
  j["streams"] = json::array();
  for (const auto& s : f.streams) {
    json js;
    js["stream"] = s.stream;
    js["points"] = json::array();
    for (const auto& p : s.points) {
      js["points"].push_back({{"codec", p.codec},
                              {"family", p.family},
                              {"variant", p.variant},
                              {"rate", optional_json(p.rate)},
                              {"is_baseline", p.is_baseline},
                              {"lattice", p.lattice},
                              {"dim", p.dim},
                              {"n_passages", p.n_passages},
                              {"bits_per_vector", p.bits_per_vector},
                              {"bits_per_dim", p.bits_per_dim},
                              {"rel_mse", summary_json(p.rel_mse)},
                              {"ratio_vs_baseline", opt(p.ratio_vs_baseline)},
                              {"entropy_bits_per_dim", opt(p.entropy_bits_per_dim)},
                              {"gauss_bound_rel_mse", opt(p.gauss_bound)},
                              {"rwf_bound_rel_mse", opt(p.rwf_bound)},
                              {"gauss_gap_db", opt(p.gauss_gap_db)},
                              {"rwf_gap_db", opt(p.rwf_gap_db)},
                              {"attn_out_rel", opt(p.attn_out_rel)},
                              {"attn_out_ratio", opt(p.attn_out_ratio)},
                              {"pareto", p.pareto},
                              {"on_hull", p.on_hull}});
    }
    js["matched"] = json::array();
    for (const auto& m : s.matched) {
      js["matched"].push_back({{"lattice", m.lattice},
                               {"lattice_bits_per_vector", m.lattice_bits},
                               {"lattice_bits_per_dim", m.lattice_bits_per_dim},
                               {"lattice_rel_mse", summary_json(m.lattice_rel_mse)},
                               {"scalar", optional_json(m.scalar)},
                               {"scalar_bits_per_vector", m.scalar ? json(m.scalar_bits) : json(nullptr)},
                               {"scalar_bits_per_dim", m.scalar ? json(m.scalar_bits_per_dim) : json(nullptr)},
                               {"scalar_rel_mse", m.scalar ? summary_json(m.scalar_rel_mse) : json(nullptr)},
                               {"ratio", m.scalar ? summary_json(m.ratio) : json(nullptr)},
                               {"rate_gap_bits_per_dim", m.scalar ? json(m.rate_gap_bits_per_dim) : json(nullptr)},
                               {"lattice_pareto", m.lattice_pareto},
                               {"verdict", to_string(m.verdict)}});
    }
    j["streams"].push_back(std::move(js));
  }
  j["warnings"] = f.warnings;
  return j.dump(2) + "\n";
}

}  // namespace kvlab::report
