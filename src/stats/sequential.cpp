// Threshold decisions and Holm's correction; see sequential.h.
#include "stats/sequential.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"

namespace kvlab::stats {

std::vector<double> holm_adjust(const std::vector<double>& p) {
  for (double x : p) KVLAB_CHECK(x >= 0.0 && x <= 1.0, "p-value {} is outside [0, 1]", x);
  const std::size_t m = p.size();
  std::vector<std::size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  std::vector<double> adj(m);
  double running = 0.0;
  for (std::size_t i = 0; i < m; ++i) {
    running = std::max(running, std::min(1.0, static_cast<double>(m - i) * p[order[i]]));
    adj[order[i]] = running;
  }
  return adj;
}

namespace {

// One-sample two-sided t test of the ratios' mean against m.
std::optional<double> p_against(const Summary& r, double m) {
  if (r.n < 2 || !r.sd || !std::isfinite(r.mean)) return std::nullopt;
  if (*r.sd == 0.0) return r.mean == m ? 1.0 : 0.0;
  const double t = (r.mean - m) / (*r.sd / std::sqrt(static_cast<double>(r.n)));
  return t_two_sided_p(t, r.n - 1);
}

}  // namespace

LookSchedule look_schedule(double alpha, int cap) {
  KVLAB_CHECK(alpha > 0 && alpha < 1, "alpha {} must lie in (0, 1)", alpha);
  KVLAB_CHECK(cap >= 2, "passage cap {}: a sequential sweep needs at least 2 passages (a t test needs n >= 2)", cap);
  return LookSchedule{alpha, cap};
}

std::vector<ThresholdDecision> threshold_decisions(const StudySummary& s, const std::vector<Threshold>& thresholds,
                                                   double level, const std::set<DecisionKey>& settled) {
  KVLAB_CHECK(level > 0 && level < 1, "level {} must lie in (0, 1)", level);
  std::vector<ThresholdDecision> out;
  for (const auto& c : s.cells) {
    if (c.codec == s.baseline) continue;
    const Summary* r = c.metric_ratio(s.metric);
    if (!r) continue;
    for (const auto& th : thresholds) {
      if (settled.count({c.stream, c.codec, th.name})) continue;
      ThresholdDecision d;
      d.stream = c.stream;
      d.codec = c.codec;
      d.threshold = th;
      d.ratio = *r;
      d.p_value = p_against(*r, th.factor);
      out.push_back(std::move(d));
    }
  }
  // Holm over the whole family: every open decision that has a p.
  std::vector<std::size_t> idx;
  std::vector<double> p;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!out[i].p_value) continue;
    idx.push_back(i);
    p.push_back(*out[i].p_value);
  }
  const auto adj = holm_adjust(p);
  for (std::size_t k = 0; k < idx.size(); ++k) out[idx[k]].p_holm = adj[k];
  for (auto& d : out) {
    d.resolved = d.p_holm && *d.p_holm < level;
    d.verdict = !d.resolved ? "unresolved" : d.ratio.mean < d.threshold.factor ? "below" : "above";
  }
  return out;
}

}  // namespace kvlab::stats
