// FRONTIER report and the `kvlab frontier` console/JSON views: see
// frontier.h. Formatting only; the numbers come from stats::Frontier.
#include "report/frontier.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/metric_table.h"
#include "report/console_format.h"
#include "report/data_caveats.h"
#include "report/derived.h"
#include "report/markdown.h"
#include "report/sections.h"
#include "report/summary.h"
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

// What the report knows about its data: provenance flags and the passages' words.
struct Ctx {
  const stats::Frontier& f;
  const ReportProvenance& prov;
  const FrontierReportOptions& opt;
  bool random = false;
  bool synthetic = false;
  bool published = false;
  std::optional<long long> seqlen;
  std::vector<PassageWords> passages;  // the passages with runs, by idx
  int repeated = 0;                    // passages known to be repeated to fill seqlen
  int not_repeated = 0;                // ... known not to be
};

Ctx make_ctx(const stats::Frontier& f, const ReportProvenance& prov, const FrontierReportOptions& opt) {
  Ctx c{f, prov, opt, false, false, false, std::nullopt, {}, 0, 0};
  const std::string& params = f.experiment.params_json;
  stats::StudySummary ss;  // what the shared data-source check reads
  ss.experiment = f.experiment;
  const DataSource src = detail::data_source(ss, prov);
  c.random = src.random_weights;
  c.synthetic = src.synthetic_host;
  c.published = src.published_import;
  c.seqlen = params_seqlen(params);
  std::vector<store::PassageText> used;
  for (const auto& p : f.passages) {
    const auto it = std::find_if(opt.passages.begin(), opt.passages.end(),
                                 [&](const store::PassageText& t) { return t.id == p.id; });
    if (it != opt.passages.end()) {
      used.push_back(*it);
    } else {
      store::PassageText t;
      t.id = p.id;
      t.idx = p.idx;
      t.name = p.name;
      t.content_hash = p.content_hash;
      t.source = p.source;
      used.push_back(std::move(t));
    }
  }
  c.passages = passage_words(used, c.seqlen, host_repeats_words(prov, params));
  for (const auto& w : c.passages) {
    if (w.repeated && *w.repeated) ++c.repeated;
    if (w.repeated && !*w.repeated) ++c.not_repeated;
  }
  return c;
}

// "random V4 weights and synthetic hidden states" / "" from the provenance.
std::string data_source_short(const Ctx& c) {
  if (c.random && c.synthetic) return "random (seeded) V4 weights and synthetic hidden states";
  if (c.random) return "random (seeded) V4 weights";
  if (c.synthetic) return "synthetic hidden states";
  return "";
}

std::string lattice_label(const std::string& fam) { return fam == "d4" ? "D4" : fam == "e8" ? "E8" : fam; }

std::vector<std::string> lattice_families(const stats::FrontierStream& s) {
  std::vector<std::string> fams;
  for (const auto& m : s.matched) {
    const std::string fam = stats::parse_codec_spec(m.lattice).family;
    if (std::find(fams.begin(), fams.end(), fam) == fams.end()) fams.push_back(fam);
  }
  std::sort(fams.begin(), fams.end(), [](const std::string& a, const std::string& b) {
    return a == "e8" ? b != "e8" : b == "e8" ? false : a < b;  // E8 first: the codec of the study
  });
  return fams;
}

// Counts of one (stream, lattice family): matched-rate and no-more-bits verdicts.
struct Tally {
  int points = 0;
  std::map<stats::MatchedVerdict, int> env, nmb;
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  int no_verdict() const {
    int n = 0;
    for (const auto& [v, k] : env)
      if (v != stats::MatchedVerdict::kLatticeBetter && v != stats::MatchedVerdict::kTied &&
          v != stats::MatchedVerdict::kLatticeWorse)
        n += k;
    return n;
  }
  int at(const std::map<stats::MatchedVerdict, int>& m, stats::MatchedVerdict v) const {
    const auto it = m.find(v);
    return it == m.end() ? 0 : it->second;
  }
};

Tally tally(const stats::FrontierStream& s, const std::string& fam) {
  Tally t;
  for (const auto& m : s.matched) {
    if (stats::parse_codec_spec(m.lattice).family != fam) continue;
    ++t.points;
    ++t.env[m.envelope.verdict];
    ++t.nmb[m.verdict];
    if (!m.envelope.lower.empty() && std::isfinite(m.envelope.ratio.mean)) {
      t.lo = std::min(t.lo, m.envelope.ratio.mean);
      t.hi = std::max(t.hi, m.envelope.ratio.mean);
    }
  }
  return t;
}

// "at matched rate, E8 beats the scalar envelope at 2 of 6 points, ties at 1 and loses at 3".
std::string conclusion(const stats::FrontierStream& s) {
  using V = stats::MatchedVerdict;
  std::string o;
  for (const auto& fam : lattice_families(s)) {
    const Tally t = tally(s, fam);
    std::string part = fmt::format("{} beats the best scalar codec at {} of {} points, ties at {} and loses at {}",
                                   lattice_label(fam), t.at(t.env, V::kLatticeBetter), t.points, t.at(t.env, V::kTied),
                                   t.at(t.env, V::kLatticeWorse));
    if (t.no_verdict() > 0) part += fmt::format(" ({} without a verdict)", t.no_verdict());
    o += (o.empty() ? "at matched rate, " : "; ") + part;
  }
  return o.empty() ? "no lattice codec ran" : o;
}

std::string passages_line(const Ctx& c) {
  std::vector<std::string> names;
  long long lo = -1, hi = -1;
  for (const auto& w : c.passages) {
    names.push_back(w.name);
    if (w.words) {
      lo = lo < 0 ? *w.words : std::min(lo, *w.words);
      hi = std::max(hi, *w.words);
    }
  }
  std::string o = fmt::format("{} passage{} ({})", c.passages.size(), c.passages.size() == 1 ? "" : "s",
                              fmt::format("{}", fmt::join(names, ", ")));
  if (lo >= 0) o += fmt::format(", {} words each", lo == hi ? fmt_int(lo) : fmt_int(lo) + "-" + fmt_int(hi));
  if (c.seqlen) o += fmt::format(", seqlen {} tokens", fmt_int(*c.seqlen));
  const int n = static_cast<int>(c.passages.size());
  if (c.repeated > 0)
    o += fmt::format(": {} of {} texts {} shorter than seqlen and {} repeated to fill it", c.repeated, n,
                     c.repeated == 1 ? "is" : "are", c.repeated == 1 ? "was" : "were");
  else if (c.not_repeated == n && n > 0)
    o += ": no text was repeated to fill the sequence";
  else
    o += ": whether a text was repeated is not known (no text or no word-to-token host recorded)";
  return o;
}

void summary_table(Document& d, const stats::Frontier& f) {
  using V = stats::MatchedVerdict;
  Table t({"stream", "lattice", "points", "lattice better", "tied", "lattice worse", "no verdict",
           "ratio range (lattice / envelope)", "at no more bits: better", "tied", "worse",
           fmt::format("not comparable (gap > {})", fmt_fixed(f.rate_gap_tolerance, 2))},
          {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
           Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  for (const auto& s : f.streams) {
    for (const auto& fam : lattice_families(s)) {
      const Tally n = tally(s, fam);
      const std::string range = n.lo > n.hi     ? std::string(kNotAvailable)
                                : n.lo == n.hi ? fmt_sig(n.lo, 3)
                                                : fmt_sig(n.lo, 3) + " to " + fmt_sig(n.hi, 3);
      t.add_row({stream_cell(s.stream), lattice_label(fam), fmt_int(n.points), fmt_int(n.at(n.env, V::kLatticeBetter)),
                 fmt_int(n.at(n.env, V::kTied)), fmt_int(n.at(n.env, V::kLatticeWorse)), fmt_int(n.no_verdict()), range,
                 fmt_int(n.at(n.nmb, V::kLatticeBetter)), fmt_int(n.at(n.nmb, V::kTied)),
                 fmt_int(n.at(n.nmb, V::kLatticeWorse)), fmt_int(n.at(n.nmb, V::kNotComparable))});
    }
  }
  d.table(t, "Lattice points by verdict. The first verdict columns and the ratio range (mean paired ratios; below 1: "
             "the lattice has less error) are at matched rate, against the scalar envelope at the lattice point's "
             "own rate; no verdict: fewer than two passages, a rate below every scalar codec's, or beyond the "
             "scalar grid by more than the tolerance. The last four columns are the no-more-bits comparison, for "
             "reference.");
}

void summary_section(Document& d, const Ctx& c) {
  const auto& f = c.f;
  d.heading(2, "Summary");
  DataSource src;
  src.random_weights = c.random;
  src.synthetic_host = c.synthetic;
  src.published_import = c.published;
  d.paragraph(fmt::format(
      "At a given storage rate, does a nested-lattice codec (D4, E8) reconstruct {} with less error than the "
      "scalar formats (integer, Hadamard + integer, Hadamard + Lloyd-Max, FP8, V4 native) at the same rate? "
      "Experiment `{}`, write path `{}`, baseline {}, n = {}.",
      data_source_text(src), f.experiment.name, f.write_path, baseline_label(f), passages_line(c)));
  std::vector<std::string> lines;
  for (const auto& s : f.streams) lines.push_back("**" + stream_short(s.stream) + "**: " + conclusion(s) + ".");
  d.bullets(lines);
  d.paragraph(fmt::format(
      "Matched rate: each lattice point against the scalar envelope at its own bits/dim, i.e. time-sharing "
      "between the two neighbouring scalar operating points on the lower convex hull (an achievable mix: a "
      "fraction of the vectors coded with each), paired per passage; the verdict reads the 95 % interval of the "
      "ratio. The older comparison with the best scalar codec at no more bits is kept below for reference; its "
      "comparator often has fewer bits, so a lattice \"win\" there with a rate gap over {} bits/dim is marked "
      "not comparable.",
      fmt_fixed(f.rate_gap_tolerance, 2)));
  summary_table(d, f);
}

void definitions_section(Document& d, const Ctx& c) {
  const auto& f = c.f;
  d.heading(2, "Definitions");
  std::string sources = "N close to D";
  if (c.repeated > 0) sources += ", a short passage repeated to fill the sequence";
  sources += ", or a host with few distinct token vectors";
  std::string independence = "the passages are not independent samples of all text";
  if (c.repeated > 0) independence += " (the shorter ones are repeated to fill the sequence)";
  if (c.synthetic) independence += ", they share the synthetic host's token vectors";
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
      "**range-coded bits/dim** (`range_bits_per_dim`) = what a real coder wrote for the same run: the stored "
      "records range-coded (the entropy rate's symbol classes through adaptive models, side information raw, "
      "stream header included; `kvlab codec --spec 'e8:q=38,entropy=range'` writes and decodes such a stream), "
      "per dimension. Above the entropy rate by the models' learning cost and the header (most on short "
      "streams); n/a for the FP8 baselines, which have no range coder.",
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
      "the stream's N vectors. When the stream spans fewer than D directions (" + sources + ") the smallest "
      "eigenvalues are near zero and D(R) collapses: the line then measures how much a decorrelating transform "
      "could gain on this sample, not a distortion any codec of these families could reach. Compare codecs "
      "with each other and with the Gaussian line.",
      "**dB to a bound** = per passage 10 log10(rel-MSE / bound), mean ± 95 % half-width (positive: above "
      "the bound; 6.02 dB is one bit per dimension at high rate).",
      "**Pareto**: no other codec of the stream has no more bits and no more mean rel-MSE, one of them "
      "strictly less. **Hull**: a vertex of the lower convex hull of (bits/dim, mean rel-MSE) from the "
      "cheapest point to the point of least error (time-sharing two codecs reaches the segment between them).",
      "**Scalar envelope at matched rate** (the verdict the summary counts): the lower convex hull of the "
      "stream's non-lattice points (every family but D4 and E8, the baselines included). At a lattice rate R "
      "between hull vertices a and b, time-sharing codes a fraction w = (R - R_a) / (R_b - R_a) of the vectors "
      "with b and the rest with a: its rate is exactly R and its rel-MSE per passage is (1 - w) rel-MSE_a + "
      "w rel-MSE_b, an achievable operating point (log-linear interpolation between a and b would be lower, "
      "but no codec is known to reach it). Ratio = per passage lattice rel-MSE / envelope rel-MSE over the "
      "passages all three ran. Below the cheapest scalar point there is no envelope; beyond the last hull "
      "vertex (the scalar point of least error) the envelope is that vertex, at fewer bits.",
      fmt::format("**At no more bits** (reference): the non-lattice codec with the least mean rel-MSE among "
                  "those with bits per vector <= the lattice point's; ratio paired as above. Its rate gap (the "
                  "lattice's extra bits/dim) can be large because the scalar grid is coarse."),
      fmt::format("**Verdict** of a paired ratio: lattice better when the interval's upper end is below 1, "
                  "lattice worse when its lower end is above 1, tied otherwise (never more than the interval "
                  "shows). When the comparator has more than {} bits/dim fewer than the lattice point, \"better\" "
                  "and \"tied\" become \"not comparable (rate gap)\": the extra bits alone may explain them "
                  "(about 6 dB, a factor 4 in MSE, per bit/dim at high rate); \"worse\" stands, since a codec "
                  "that loses with more bits also loses at matched rate.",
                  fmt_fixed(f.rate_gap_tolerance, 2)),
      "Intervals are conditional on these passages, this host and these weights: " + independence +
          ", and one weight seed is used.",
  });
}

// "0.56 x INT4/64 fp16 + 0.44 x INT5/64 fp16" (time-sharing), or one codec.
std::string envelope_label(const stats::EnvelopeComparison& e) {
  if (e.lower.empty()) return "none";
  if (e.lower == e.upper || e.weight_upper == 0.0) {
    return codec_label(e.lower) + (e.rate_gap_bits_per_dim > 0 ? " (last hull vertex)" : "");
  }
  if (e.weight_upper == 1.0) return codec_label(e.upper);
  return fmt::format("{} x {} + {} x {}", fmt_fixed(1 - e.weight_upper, 2), codec_label(e.lower),
                     fmt_fixed(e.weight_upper, 2), codec_label(e.upper));
}

void envelope_table(Document& d, const stats::FrontierStream& s) {
  Table t({"lattice", "bits/dim", "lattice rel-MSE", "scalar envelope at this rate", "envelope bits/dim", "envelope rel-MSE",
           "ratio lattice / envelope", "95 % CI", "n", "verdict"},
          {Align::kLeft, Align::kRight, Align::kRight, Align::kLeft, Align::kRight, Align::kRight, Align::kRight,
           Align::kRight, Align::kRight, Align::kLeft});
  for (const auto& m : s.matched) {
    const auto& e = m.envelope;
    const std::string lat = fmt_pm_sci(m.lattice_rel_mse.mean, m.lattice_rel_mse.ci95_hw);
    if (e.lower.empty()) {
      t.add_row({codec_label(m.lattice), fmt_fixed(m.lattice_bits_per_dim, 3), lat, "none", kNotAvailable,
                 kNotAvailable, kNotAvailable, kNotAvailable, "0", to_string(e.verdict)});
      continue;
    }
    t.add_row({codec_label(m.lattice), fmt_fixed(m.lattice_bits_per_dim, 3), lat, envelope_label(e),
               fmt_fixed(e.bits_per_dim, 3), fmt_sci(e.rel_mse, 3), fmt_pm_sig(e.ratio.mean, e.ratio.ci95_hw, 2, 4),
               interval_sig(e.ratio), fmt_int(e.ratio.n), to_string(e.verdict)});
  }
  d.table(t, "Envelope: time-sharing between the two neighbouring vertices of the scalar lower convex hull (weights "
             "= fractions of the vectors), at the lattice point's own bits/dim; its rel-MSE is the same mix of "
             "the two codecs' mean rel-MSE. Ratio: per passage lattice / envelope, paired.");
}

void no_more_bits_table(Document& d, const stats::FrontierStream& s) {
  Table t({"lattice", "bits/dim", "best scalar at <= bits", "bits/dim", "rate gap (bits/dim)", "scalar rel-MSE",
           "ratio lattice / scalar", "95 % CI", "n", "verdict", "lattice Pareto"},
          {Align::kLeft, Align::kRight, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
           Align::kRight, Align::kRight, Align::kLeft, Align::kLeft});
  for (const auto& m : s.matched) {
    if (!m.scalar) {
      t.add_row({codec_label(m.lattice), fmt_fixed(m.lattice_bits_per_dim, 3), "none", kNotAvailable, kNotAvailable,
                 kNotAvailable, kNotAvailable, kNotAvailable, "0", to_string(m.verdict),
                 m.lattice_pareto ? "yes" : "no"});
      continue;
    }
    std::string verdict = to_string(m.verdict);
    if (m.verdict == stats::MatchedVerdict::kNotComparable)
      verdict = fmt::format("rate gap {}: not comparable", fmt_fixed(m.rate_gap_bits_per_dim, 3));
    t.add_row({codec_label(m.lattice), fmt_fixed(m.lattice_bits_per_dim, 3), codec_label(*m.scalar),
               fmt_fixed(m.scalar_bits_per_dim, 3), fmt_fixed(m.rate_gap_bits_per_dim, 3),
               fmt_pm_sci(m.scalar_rel_mse.mean, m.scalar_rel_mse.ci95_hw),
               fmt_pm_sig(m.ratio.mean, m.ratio.ci95_hw, 2, 4), interval_sig(m.ratio), fmt_int(m.ratio.n), verdict,
               m.lattice_pareto ? "yes" : "no"});
  }
  d.table(t, "Scalar rel-MSE: mean ± 95 % half-width over passages; ratio: per passage lattice / "
             "scalar, paired. Rate gap: the lattice's extra bits/dim over its comparator. Lattice Pareto: no codec "
             "of the stream has no more bits and no more error.");
}

void matched_section(Document& d, const stats::Frontier& f) {
  d.heading(2, "Matched rate: each lattice point against the scalar codecs");
  for (const auto& s : f.streams) {
    d.heading(3, stream_cell(s.stream));
    if (s.matched.empty()) {
      d.paragraph("No lattice codec ran on this stream.");
      continue;
    }
    d.paragraph("At matched rate (the scalar envelope at the lattice point's rate):");
    envelope_table(d, s);
    d.paragraph(fmt::format("At no more bits (reference; a lattice \"better\" or \"tied\" across a rate gap over "
                            "{} bits/dim is not comparable):",
                            fmt_fixed(f.rate_gap_tolerance, 2)));
    no_more_bits_table(d, s);
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
  std::vector<std::string> h = {"codec", "bits/vec", "bits/dim", "entropy bits/dim", "range-coded bits/dim", "rel-MSE",
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
                                  opt_pm_fixed(p.entropy_bits_per_dim, 3), opt_pm_fixed(p.range_bits_per_dim, 3),
                                  fmt_pm_sci(p.rel_mse.mean, p.rel_mse.ci95_hw),
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

// Other experiments of the database and how many of this one's passages (by content hash) they share.
std::vector<std::string> other_passage_sets(const Ctx& c) {
  std::vector<std::string> mine;
  for (const auto& p : c.f.passages) mine.push_back(p.content_hash);
  std::vector<std::string> out;
  for (const auto& e : c.opt.passage_sets) {
    if (e.id == c.f.experiment.id || e.passage_hashes.empty()) continue;
    int shared = 0;
    for (const auto& h : e.passage_hashes)
      if (std::find(mine.begin(), mine.end(), h) != mine.end()) ++shared;
    const bool same = shared == static_cast<int>(mine.size()) && shared == static_cast<int>(e.passage_hashes.size());
    if (same) {
      out.push_back(fmt::format("`{}` (write path {}): the same {} passages.", e.name,
                                e.write_path.empty() ? "published" : e.write_path, shared));
      continue;
    }
    out.push_back(fmt::format("`{}` (write path {}, baseline {}): **other passages** ({} of its {} shared with this "
                              "experiment: {}), so its numbers for the same codecs differ from these.",
                              e.name, e.write_path.empty() ? "published" : e.write_path,
                              e.baseline.empty() ? "not recorded" : e.baseline, shared, e.passage_hashes.size(),
                              fmt::format("{}", fmt::join(e.passage_names, ", "))));
  }
  return out;
}

void passages_section(Document& d, const Ctx& c) {
  d.heading(2, "Passages");
  d.paragraph("This experiment: " + passages_line(c) + ".");
  Table t({"#", "passage", "source", "words", "repeated to fill seqlen"},
          {Align::kRight, Align::kLeft, Align::kLeft, Align::kRight, Align::kLeft});
  int i = 0;
  for (const auto& w : c.passages) {
    std::string rep = "unknown";
    if (w.repeated) rep = *w.repeated ? fmt::format("yes (text used {} times)", fmt_fixed(w.fills, 1)) : "no";
    t.add_row({fmt_int(++i), "`" + w.name + "`", w.source.empty() ? std::string("-") : "`" + w.source + "`",
               w.words ? fmt_int(*w.words) : std::string(kNotAvailable), rep});
  }
  d.table(t, c.seqlen ? fmt::format("Words: whitespace-separated, as the host cuts the text; a text with fewer words "
                                    "than seqlen = {} tokens is repeated to fill the sequence (when the host maps "
                                    "words to tokens).",
                                    fmt_int(*c.seqlen))
                      : std::string("Words: whitespace-separated. seqlen not recorded."));
  const auto others = other_passage_sets(c);
  if (!others.empty()) {
    d.paragraph("Other experiments in this database:");
    d.bullets(others);
  }
}

void caveats_section(Document& d, const Ctx& c) {
  const auto& f = c.f;
  d.heading(2, "Caveats");
  std::vector<std::string> items;
  if (c.random) items.push_back(random_weights_caveat());
  if (c.synthetic) items.push_back(synthetic_host_caveat());
  if (c.repeated > 0) {
    items.push_back(fmt::format(
        "{} of the {} passages {} shorter than seqlen and {} repeated to fill it, so {} streams hold fewer "
        "distinct vectors than tokens (see Passages).",
        c.repeated, c.passages.size(), c.repeated == 1 ? "is" : "are", c.repeated == 1 ? "was" : "were",
        c.repeated == 1 ? "its" : "their"));
  }
  items.push_back(fmt::format("Write path `{}`: {} Every figure here is per stream; no layer weighting is applied{}.",
                              f.write_path,
                              f.write_path == "v4" ? "SPEC-V4-ATTENTION.md (per-layer-kind RoPE base and YaRN, UE8M0 "
                                                     "FP8 scales)."
                                                   : "SPEC.md section 2 (the published harness's write path).",
                              layer_mix_text(f)));
  items.push_back(fmt::format("Baseline {}: every ratio to the baseline uses it; the matched-rate tables do not (they "
                              "compare each lattice point with the scalar codecs).",
                              baseline_label(f)));
  items.push_back("Rates are the codecs' fixed-length formats; the entropy column says how much an entropy coder over "
                  "the same symbols could save, but no codec here writes that many bits.");
  items.push_back("The scalar envelope is built from the scalar grid this experiment ran; a finer scalar grid could "
                  "only lower it (more lattice losses, fewer wins).");
  for (const auto& x : f.warnings) items.push_back("stats: " + x);
  d.bullets(items);
}

// "Rate-distortion frontier: nested lattices (D4, E8) against scalar KV-cache codecs (random V4 weights, ...)".
std::string title(const Ctx& c) {
  std::vector<std::string> fams;
  for (const auto& s : c.f.streams)
    for (const auto& fam : lattice_families(s))
      if (std::find(fams.begin(), fams.end(), lattice_label(fam)) == fams.end()) fams.push_back(lattice_label(fam));
  std::sort(fams.begin(), fams.end());
  std::string t = "Rate-distortion frontier: ";
  t += fams.empty() ? std::string("KV-cache codecs by rate")
                    : fmt::format("nested lattices ({}) against scalar KV-cache codecs at matched rate",
                                  fmt::join(fams, ", "));
  const std::string src = data_source_short(c);
  return src.empty() ? t : t + " (" + src + ")";
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
  const Ctx c = make_ctx(f, prov, opt);
  Document d;
  d.heading(1, title(c));
  d.paragraph(generated_note(opt.command));
  summary_section(d, c);
  matched_section(d, f);
  frontier_section(d, f, opt.file_stem);
  definitions_section(d, c);
  passages_section(d, c);
  caveats_section(d, c);
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
    o += fmt::format("  matched rate (scalar envelope at the lattice's rate, time-sharing; paired ratio lattice / envelope)\n");
    for (const auto& m : s.matched) {
      const auto& e = m.envelope;
      if (e.lower.empty()) {
        o += fmt::format("  {:<16} {:>7.3f} bits/d: {}\n", m.lattice, m.lattice_bits_per_dim, to_string(e.verdict));
        continue;
      }
      o += fmt::format("  {:<16} {:>7.3f} bits/d vs {} at {:.3f} bits/d: ratio {} (n={}) {}\n", m.lattice,
                       m.lattice_bits_per_dim, envelope_label(e), e.bits_per_dim, console_ci(e.ratio, 3), e.ratio.n,
                       to_string(e.verdict));
    }
    o += fmt::format("  at no more bits (best non-lattice codec at <= bits per vector, paired ratio lattice / scalar; "
                     "rate-gap tolerance {:.2f} bits/dim)\n", f.rate_gap_tolerance);
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

namespace {

nlohmann::json envelope_json(const stats::EnvelopeComparison& e) {
  using nlohmann::json;
  if (e.lower.empty()) return json{{"verdict", to_string(e.verdict)}};
  return json{{"lower", e.lower},
              {"upper", e.upper},
              {"lower_bits_per_dim", e.lower_bits_per_dim},
              {"upper_bits_per_dim", e.upper_bits_per_dim},
              {"weight_upper", e.weight_upper},
              {"bits_per_dim", e.bits_per_dim},
              {"rel_mse", e.rel_mse},
              {"rate_gap_bits_per_dim", e.rate_gap_bits_per_dim},
              {"ratio", summary_json(e.ratio)},
              {"verdict", to_string(e.verdict)}};
}

}  // namespace

std::string frontier_json(const stats::Frontier& f) {
  using nlohmann::json;
  const auto opt = [](const std::optional<stats::Summary>& s) { return s ? summary_json(*s) : json(nullptr); };
  json j;
  j["experiment"] = f.experiment.name;
  j["baseline"] = f.baseline;
  j["write_path"] = f.write_path;
  j["n_passages"] = f.n_passages;
  j["rate_gap_tolerance_bits_per_dim"] = f.rate_gap_tolerance;
  j["passages"] = json::array();
  for (const auto& p : f.passages) j["passages"].push_back({{"name", p.name}, {"source", p.source}});
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
                              {"range_bits_per_dim", opt(p.range_bits_per_dim)},
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
                               {"verdict", to_string(m.verdict)},
                               {"envelope", envelope_json(m.envelope)}});
    }
    j["streams"].push_back(std::move(js));
  }
  j["warnings"] = f.warnings;
  return j.dump(2) + "\n";
}

}  // namespace kvlab::report
