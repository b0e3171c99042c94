// Null distributions of the non-Gaussian audit (SPEC section 4,
// kernels::non_gaussian_audit) for exactly Gaussian data: X [n, d] with
// i.i.d. N(0, 1) entries (isotropic, so every gate's premise holds exactly),
// simulated `replicates` times from a fixed seed. Each metric's quantiles
// (50 / 95 / 99 %) say what a stream of the same n and d would show from
// sampling noise and the metric's own bias alone: for example the tail-
// quantile "W2" metric is about 0.107 for any large Gaussian sample (p99 of
// |z| is 2.576, not the 2.326 it is divided by), above its 0.05 gate, and
// with n = 16 vectors the kurtosis and variance-ratio metrics of a Gaussian
// exceed their gates too.
//
// Deterministic: SplitMix64 normals (common/rng.h), replicate r seeded from
// (seed, n, d, r), quantiles by linear interpolation between order
// statistics (type 7); no clock, no threads, so the same (n, d, replicates,
// seed) gives the same numbers on every run (across platforms, up to last-ulp
// differences of libm's log, cos and sin).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvlab::stats {

// Replicates: up to 200, fewer for large samples so that one null costs at
// most about kAuditNullElementBudget simulated values (about 0.6 s on one
// core: Box-Muller normals and the audit each cost ~35-70 ns per value), but
// never fewer than 10. Large samples need fewer: their metrics concentrate.
inline constexpr int kAuditNullReplicates = 200;
inline constexpr int kAuditNullMinReplicates = 10;
inline constexpr std::int64_t kAuditNullElementBudget = std::int64_t{1} << 22;
inline constexpr std::uint64_t kAuditNullSeed = 0x6175646974ull;  // "audit"

struct AuditNullMetric {
  std::string metric;  // kernels::kAuditGates name, e.g. "excess_kurtosis_abs"
  double gate = 0;     // the published gate
  double q50 = 0, q95 = 0, q99 = 0;
  double max = 0;            // the largest replicate
  double gate_exceeded = 0;  // fraction of Gaussian replicates above the gate
};

struct AuditNull {
  std::int64_t n_vectors = 0;
  std::int64_t dim = 0;
  int replicates = 0;
  std::uint64_t seed = 0;
  std::vector<AuditNullMetric> metrics;  // kernels::kAuditGates order
  // nullptr when `metric` is not an audit metric.
  const AuditNullMetric* find(const std::string& metric) const;
};

// Simulates the null. n >= 2, d a power of two (as the audit requires),
// 1 <= replicates <= 100000; else kvlab::Error naming the value.
AuditNull simulate_audit_null(std::int64_t n, std::int64_t d, int replicates = kAuditNullReplicates,
                              std::uint64_t seed = kAuditNullSeed);

// clamp(kAuditNullElementBudget / (n d), kAuditNullMinReplicates,
// kAuditNullReplicates): 200 for n d <= 2^14, 10 for an n = 2048, d = 512 stream.
int default_null_replicates(std::int64_t n, std::int64_t d);

// simulate_audit_null() computed once per (n, d, replicates, seed) in this
// process and cached (thread-safe); the reference stays valid. replicates = 0:
// default_null_replicates(n, d).
const AuditNull& audit_null(std::int64_t n, std::int64_t d, int replicates = 0,
                            std::uint64_t seed = kAuditNullSeed);

// Type-7 quantile (linear interpolation between order statistics) of
// `values` at p in [0, 1]; `values` non-empty (else kvlab::Error).
double quantile_type7(std::vector<double> values, double p);

}  // namespace kvlab::stats
