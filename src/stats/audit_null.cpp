// Gaussian null distributions of the audit metrics; see audit_null.h.
#include "stats/audit_null.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "common/error.h"
#include "common/rng.h"
#include "kernels/metrics.h"

namespace kvlab::stats {

const AuditNullMetric* AuditNull::find(const std::string& metric) const {
  for (const auto& m : metrics) {
    if (m.metric == metric) return &m;
  }
  return nullptr;
}

double quantile_type7(std::vector<double> values, double p) {
  KVLAB_CHECK(!values.empty(), "quantile of an empty sample (p = {})", p);
  KVLAB_CHECK(p >= 0.0 && p <= 1.0, "quantile level p = {}; expected 0 <= p <= 1", p);
  std::sort(values.begin(), values.end());
  const double h = p * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (h - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

AuditNull simulate_audit_null(std::int64_t n, std::int64_t d, int replicates, std::uint64_t seed) {
  KVLAB_CHECK(n >= 2, "audit null: n_vectors = {}; expected at least 2", n);
  KVLAB_CHECK(d >= 1 && (d & (d - 1)) == 0 && d <= (1 << 16),
              "audit null: dim = {}; expected a power of two up to 65536", d);
  KVLAB_CHECK(n * d <= (std::int64_t{1} << 28), "audit null: n x d = {} x {} is too large to simulate", n, d);
  KVLAB_CHECK(replicates >= 1 && replicates <= 100000, "audit null: replicates = {}; expected 1..100000",
              replicates);
  constexpr std::size_t kMetrics = kernels::kAuditGates.size();
  std::vector<std::vector<double>> values(kMetrics);
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (int r = 0; r < replicates; ++r) {
    SplitMix64 rng(mix64(seed) ^ mix64(static_cast<std::uint64_t>(n) * 0x9E3779B97F4A7C15ull) ^
                   mix64(static_cast<std::uint64_t>(d) + 0x64ull) ^ mix64(static_cast<std::uint64_t>(r) + 0x72ull));
    rng.normals(x.data(), x.size());
    const auto a = kernels::non_gaussian_audit(x.data(), n, d);
    for (std::size_t k = 0; k < kMetrics; ++k) values[k].push_back(a.*(kernels::kAuditGates[k].value));
  }
  AuditNull out;
  out.n_vectors = n;
  out.dim = d;
  out.replicates = replicates;
  out.seed = seed;
  for (std::size_t k = 0; k < kMetrics; ++k) {
    const auto& g = kernels::kAuditGates[k];
    AuditNullMetric m;
    m.metric = std::string(g.name);
    m.gate = g.threshold;
    m.q50 = quantile_type7(values[k], 0.50);
    m.q95 = quantile_type7(values[k], 0.95);
    m.q99 = quantile_type7(values[k], 0.99);
    m.max = *std::max_element(values[k].begin(), values[k].end());
    m.gate_exceeded = static_cast<double>(std::count_if(values[k].begin(), values[k].end(),
                                                        [&](double v) { return v > g.threshold; })) /
                      static_cast<double>(replicates);
    out.metrics.push_back(std::move(m));
  }
  return out;
}

int default_null_replicates(std::int64_t n, std::int64_t d) {
  KVLAB_CHECK(n >= 1 && d >= 1, "audit null: n x d = {} x {}; expected positive sizes", n, d);
  const std::int64_t fit = kAuditNullElementBudget / (n * d);
  return static_cast<int>(std::clamp<std::int64_t>(fit, kAuditNullMinReplicates, kAuditNullReplicates));
}

const AuditNull& audit_null(std::int64_t n, std::int64_t d, int replicates, std::uint64_t seed) {
  if (replicates == 0) replicates = default_null_replicates(n, d);
  static std::mutex mu;
  static std::map<std::tuple<std::int64_t, std::int64_t, int, std::uint64_t>, std::unique_ptr<AuditNull>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{n, d, replicates, seed}];
  if (!slot) slot = std::make_unique<AuditNull>(simulate_audit_null(n, d, replicates, seed));
  return *slot;
}

}  // namespace kvlab::stats
