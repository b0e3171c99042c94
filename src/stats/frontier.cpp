// The rate-distortion frontier and the matched-rate view: see frontier.h.
#include "stats/frontier.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/streams.h"
#include "stats/stages.h"

namespace kvlab::stats {

bool is_lattice_family(const std::string& family) { return family == "d4" || family == "e8"; }

const char* to_string(MatchedVerdict v) {
  switch (v) {
    case MatchedVerdict::kLatticeBetter: return "lattice better";
    case MatchedVerdict::kTied: return "tied";
    case MatchedVerdict::kLatticeWorse: return "lattice worse";
    case MatchedVerdict::kNoInterval: return "no CI (n < 2)";
    case MatchedVerdict::kNoScalar: return "no scalar codec at <= bits";
    case MatchedVerdict::kNotComparable: return "not comparable (rate gap)";
    case MatchedVerdict::kBelowEnvelope: return "below the scalar grid";
  }
  return "?";
}

MatchedVerdict read_verdict(const Summary& ratio, double rate_gap, double tolerance) {
  if (!ratio.has_interval()) return MatchedVerdict::kNoInterval;
  if (*ratio.lower() > 1.0) return MatchedVerdict::kLatticeWorse;
  if (rate_gap > tolerance) return MatchedVerdict::kNotComparable;
  return *ratio.upper() < 1.0 ? MatchedVerdict::kLatticeBetter : MatchedVerdict::kTied;
}

const FrontierStream* Frontier::find_stream(const std::string& stream) const {
  for (const auto& s : streams)
    if (s.stream == stream) return &s;
  return nullptr;
}

std::vector<std::size_t> lower_hull(const std::vector<double>& xs, const std::vector<double>& ys) {
  KVLAB_CHECK(xs.size() == ys.size(), "lower_hull: {} x values but {} y values", xs.size(), ys.size());
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (std::isfinite(xs[i]) && std::isfinite(ys[i])) idx.push_back(i);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    return xs[a] != xs[b] ? xs[a] < xs[b] : ys[a] != ys[b] ? ys[a] < ys[b] : a < b;
  });
  // Keep the lowest point of each x, and stop at the (first) point of least y.
  std::vector<std::size_t> pts;
  for (std::size_t i : idx)
    if (pts.empty() || xs[pts.back()] != xs[i]) pts.push_back(i);
  if (pts.empty()) return {};
  std::size_t best = 0;
  for (std::size_t k = 1; k < pts.size(); ++k)
    if (ys[pts[k]] < ys[pts[best]]) best = k;
  pts.resize(best + 1);
  // Andrew's monotone chain, lower half: keep strictly convex (counter-clockwise) turns.
  std::vector<std::size_t> hull;
  for (std::size_t p : pts) {
    while (hull.size() >= 2) {
      const std::size_t o = hull[hull.size() - 2], a = hull.back();
      const double cross = (xs[a] - xs[o]) * (ys[p] - ys[o]) - (ys[a] - ys[o]) * (xs[p] - xs[o]);
      if (cross > 0) break;
      hull.pop_back();
    }
    hull.push_back(p);
  }
  return hull;
}

namespace {

using stages::CellData;

// Per-passage rel-MSE of a cell (passage id -> value).
std::map<std::int64_t, double> per_passage(const CellData& c, const std::string& metric) {
  std::map<std::int64_t, double> out;
  for (const auto& [pid, pv] : c.by_passage)
    if (pv.has(metric)) out[pid] = pv.get(metric);
  return out;
}

std::optional<Summary> metric_of(const CellStats& c, const std::string& m) {
  const Summary* s = c.metric(m);
  return s ? std::optional<Summary>(*s) : std::nullopt;
}

// Per passage 10 log10(rel_mse / bound), over the passages that recorded the bound.
std::optional<Summary> gap_db(const CellData& c, const std::string& bound) {
  std::vector<double> v;
  for (const auto& [pid, pv] : c.by_passage)
    if (pv.has(bound) && pv.has("rel_mse")) v.push_back(10.0 * std::log10(pv.get("rel_mse") / pv.get(bound)));
  if (v.empty()) return std::nullopt;
  return describe(v);
}

FrontierPoint make_point(const CellStats& c, const CellData& cd, const std::string& baseline) {
  FrontierPoint p;
  p.stream = c.stream;
  p.codec = c.codec;
  p.family = cd.spec.family;
  p.variant = cd.spec.variant();
  p.rate = cd.spec.rate;
  p.is_baseline = c.codec == baseline;
  p.lattice = is_lattice_family(p.family);
  p.dim = c.dim;
  p.n_passages = c.n_passages;
  p.bits_per_vector = c.bits_per_vector;
  p.bits_per_dim = c.bits_per_dim;
  p.rel_mse = c.rel_mse;
  p.ratio_vs_baseline = c.ratio_vs_fp8;
  p.entropy_bits_per_dim = metric_of(c, "entropy_bits_per_dim");
  p.range_bits_per_dim = metric_of(c, "range_bits_per_dim");
  p.gauss_bound = metric_of(c, "gauss_bound_rel_mse");
  p.rwf_bound = metric_of(c, "rwf_bound_rel_mse");
  p.gauss_gap_db = gap_db(cd, "gauss_bound_rel_mse");
  p.rwf_gap_db = gap_db(cd, "rwf_bound_rel_mse");
  p.attn_out_rel = metric_of(c, "attn_out_rel");
  if (const Summary* r = c.metric_ratio("attn_out_rel")) p.attn_out_ratio = *r;
  return p;
}

using Cells = std::map<std::string, const CellData*>;

// The lattice point against the scalar envelope (hull: the non-lattice lower
// convex hull's vertices, ascending bits/dim) at its own rate.
EnvelopeComparison envelope_at(const FrontierPoint& lat, const std::vector<const FrontierPoint*>& hull,
                               const Cells& cells, double tolerance) {
  EnvelopeComparison e;
  if (hull.empty()) return e;
  const double r = lat.bits_per_dim;
  if (r < hull.front()->bits_per_dim) {
    e.verdict = MatchedVerdict::kBelowEnvelope;
    return e;
  }
  std::size_t k = 0;
  while (k + 1 < hull.size() && hull[k + 1]->bits_per_dim <= r) ++k;
  const FrontierPoint& a = *hull[k];
  const FrontierPoint& b = k + 1 < hull.size() ? *hull[k + 1] : a;
  e.lower = a.codec;
  e.upper = b.codec;
  e.lower_bits_per_dim = a.bits_per_dim;
  e.upper_bits_per_dim = b.bits_per_dim;
  e.weight_upper = &a == &b ? 0.0 : (r - a.bits_per_dim) / (b.bits_per_dim - a.bits_per_dim);
  e.bits_per_dim = &a == &b ? a.bits_per_dim : r;
  e.rate_gap_bits_per_dim = r - e.bits_per_dim;
  const double w = e.weight_upper;
  e.rel_mse = (1 - w) * a.rel_mse.mean + w * b.rel_mse.mean;
  const auto lp = per_passage(*cells.at(lat.codec), "rel_mse");
  const auto ap = per_passage(*cells.at(a.codec), "rel_mse");
  const auto bp = per_passage(*cells.at(b.codec), "rel_mse");
  std::vector<double> ratios;
  for (const auto& [pid, v] : lp) {
    const auto ia = ap.find(pid);
    const auto ib = bp.find(pid);
    if (ia == ap.end() || ib == bp.end()) continue;
    ratios.push_back(v / ((1 - w) * ia->second + w * ib->second));
  }
  e.ratio = describe(ratios);
  e.verdict = read_verdict(e.ratio, e.rate_gap_bits_per_dim, tolerance);
  return e;
}

// The matched-rate row of one lattice point among the stream's points.
MatchedRateRow match(const FrontierPoint& lat, const std::vector<FrontierPoint>& pts, const Cells& cells,
                     const std::vector<const FrontierPoint*>& hull, double tolerance) {
  MatchedRateRow r;
  r.stream = lat.stream;
  r.lattice = lat.codec;
  r.lattice_bits = lat.bits_per_vector;
  r.lattice_bits_per_dim = lat.bits_per_dim;
  r.lattice_rel_mse = lat.rel_mse;
  r.lattice_pareto = lat.pareto;
  r.envelope = envelope_at(lat, hull, cells, tolerance);
  const FrontierPoint* best = nullptr;
  for (const auto& p : pts) {
    if (p.lattice || p.bits_per_vector > lat.bits_per_vector || !std::isfinite(p.rel_mse.mean)) continue;
    if (!best || p.rel_mse.mean < best->rel_mse.mean ||
        (p.rel_mse.mean == best->rel_mse.mean &&
         (p.bits_per_vector < best->bits_per_vector ||
          (p.bits_per_vector == best->bits_per_vector && p.codec < best->codec))))
      best = &p;
  }
  if (!best) return r;
  r.scalar = best->codec;
  r.scalar_bits = best->bits_per_vector;
  r.scalar_bits_per_dim = best->bits_per_dim;
  r.scalar_rel_mse = best->rel_mse;
  r.rate_gap_bits_per_dim = lat.bits_per_dim - best->bits_per_dim;
  const auto a = per_passage(*cells.at(lat.codec), "rel_mse");
  const auto b = per_passage(*cells.at(best->codec), "rel_mse");
  std::vector<double> ratios;
  for (const auto& [pid, v] : a) {
    const auto it = b.find(pid);
    if (it != b.end()) ratios.push_back(v / it->second);
  }
  r.ratio = describe(ratios);
  r.verdict = read_verdict(r.ratio, r.rate_gap_bits_per_dim, tolerance);
  return r;
}

// Vertices of the lower convex hull of the stream's non-lattice points, ascending bits/dim.
std::vector<const FrontierPoint*> scalar_hull(const std::vector<FrontierPoint>& pts) {
  std::vector<const FrontierPoint*> scalar;
  std::vector<double> xs, ys;
  for (const auto& p : pts) {
    if (p.lattice) continue;
    scalar.push_back(&p);
    xs.push_back(p.bits_per_dim);
    ys.push_back(p.rel_mse.mean);
  }
  std::vector<const FrontierPoint*> hull;
  for (std::size_t i : lower_hull(xs, ys)) hull.push_back(scalar[i]);
  return hull;
}

// Pareto flags (stage 10's rows) and hull flags of one stream's points.
void flag_frontier(FrontierStream& fs, const StudySummary& s) {
  for (auto& p : fs.points)
    for (const auto& row : s.pareto)
      if (row.stream == p.stream && row.codec == p.codec) p.pareto = row.on_frontier;
  std::vector<double> xs, ys;
  for (const auto& p : fs.points) {
    xs.push_back(p.bits_per_dim);
    ys.push_back(p.rel_mse.mean);
  }
  for (std::size_t i : lower_hull(xs, ys)) fs.points[i].on_hull = true;
}

}  // namespace

Frontier compute_frontier(const ExperimentData& data, const FrontierOptions& opt) {
  SummaryOptions so;
  so.streams = opt.streams;
  so.baseline = opt.baseline;
  StudySummary s;
  s.experiment = data.info;
  stages::Ctx x{data, so, s, {}, {}, {}, {}};
  s.baseline = stages::choose_baseline(data, so);
  stages::group_rows(x);
  stages::build_cells(x);
  stages::pareto(x);
  for (const auto& want : opt.streams)
    KVLAB_CHECK(std::find(s.streams.begin(), s.streams.end(), want) != s.streams.end(),
                "stream '{}': experiment '{}' has no finished runs on it (streams with runs: {})", want,
                data.info.name, s.streams.empty() ? std::string("none") : fmt::format("{}", fmt::join(s.streams, ", ")));

  KVLAB_CHECK(opt.rate_gap_tolerance >= 0 && std::isfinite(opt.rate_gap_tolerance),
              "rate-gap tolerance {}: expected a finite number of bits/dim >= 0", opt.rate_gap_tolerance);
  Frontier f;
  f.experiment = data.info;
  f.rate_gap_tolerance = opt.rate_gap_tolerance;
  for (const auto& p : data.passages)
    if (std::any_of(data.results.begin(), data.results.end(),
                    [&](const RunResult& r) { return r.passage_id == p.id; }))
      f.passages.push_back(p);
  f.baseline = s.baseline;
  f.write_path = data.info.write_path.empty() ? "published" : data.info.write_path;
  f.n_passages = s.n_passages;
  f.warnings = s.warnings;
  for (const auto& stream : s.streams) {
    FrontierStream fs;
    fs.stream = stream;
    std::map<std::string, const CellData*> cells;
    for (const auto& c : s.cells) {
      if (c.stream != stream) continue;
      const CellData& cd = x.cell_map.at({c.stream, c.codec});
      cells[c.codec] = &cd;
      fs.points.push_back(make_point(c, cd, s.baseline));
    }
    std::sort(fs.points.begin(), fs.points.end(), [](const FrontierPoint& a, const FrontierPoint& b) {
      return a.bits_per_vector != b.bits_per_vector ? a.bits_per_vector < b.bits_per_vector : a.codec < b.codec;
    });
    flag_frontier(fs, s);
    const auto hull = scalar_hull(fs.points);
    for (const auto& p : fs.points)
      if (p.lattice) fs.matched.push_back(match(p, fs.points, cells, hull, opt.rate_gap_tolerance));
    f.streams.push_back(std::move(fs));
  }
  return f;
}

}  // namespace kvlab::stats
