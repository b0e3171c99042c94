// The rate-distortion frontier of one experiment and the matched-rate view
// (issue 14 item 6): every (family, rate) point per stream with its rate,
// error, entropy-coded rate, distance to the two Gaussian bounds, and, for
// each lattice point, the best non-lattice codec at no more bits per vector
// with the paired interval of their error ratio.
//
// Computed from an ExperimentData with the stages of stats::summarize
// (stages.h: group_rows, build_cells, pareto), so replicates are averaged,
// the baseline is chosen and the paired ratios to it are taken exactly as
// in `kvlab stats`. Definitions:
//  - bits/dim = recorded bits per vector / D;
//  - entropy rate = mean over passages of the run metric
//    entropy_bits_per_dim (the ideal entropy-coded rate of the stored
//    symbols, side information included);
//  - range-coded rate = mean over passages of range_bits_per_dim (the
//    actual size of the run's records range-coded, codec/entropy_stream.h;
//    d4, e8, int, hadamard_int, hadamard_lloyd only);
//  - bounds = mean over passages of gauss_bound_rel_mse (sigma^2 2^(-2R),
//    i.i.d. Gaussian) and rwf_bound_rel_mse (reverse water-filling on the
//    stream's covariance eigenvalues), both at the codec's bits/dim and as
//    rel-MSE; distance to a bound in dB = per passage
//    10 log10(rel_mse / bound), mean and CI95 over passages (positive:
//    above the bound);
//  - Pareto set (stage 10): no other point of the stream has <= bits and
//    <= mean rel-MSE with one of them strict;
//  - lower convex hull: the vertices of the lower convex hull of
//    (bits/dim, mean rel-MSE) from the cheapest point to the point of least
//    error (time-sharing between two codecs reaches every point on the
//    segment between them, so these are the operationally useful points);
//  - scalar envelope at matched rate (the comparison the verdicts count):
//    the lower convex hull of the stream's non-lattice points (any family
//    but d4/e8, the baselines included) in (bits/dim, mean rel-MSE). At a
//    lattice point's rate R between two hull vertices a < R <= b,
//    time-sharing codes a fraction 1 - w of the vectors with a and w with
//    b, w = (R - R_a) / (R_b - R_a): its rate is exactly R and its error
//    per passage is (1 - w) rel_mse_a,i + w rel_mse_b,i (achievable, and on
//    or below log-linear interpolation between the two). The paired ratio
//    per passage is lattice rel_mse_i / envelope_i over the passages all
//    three ran. Below the cheapest scalar point there is no envelope (no
//    verdict); above the hull's last (least-error) vertex the envelope is
//    that vertex, at fewer bits (rate gap R - R_last);
//  - at no more bits (kept for reference): the non-lattice codec with the
//    least mean rel-MSE among those with bits per vector <= the lattice
//    point's on the same stream (ties: fewer bits, then the codec spec);
//    paired per passage as above;
//  - verdicts read the CI95 of a paired ratio: upper end < 1 lattice
//    better, lower end > 1 lattice worse, else tied (no verdict without an
//    interval, n < 2). When the comparator has fewer bits than the lattice
//    point by more than the rate-gap tolerance (FrontierOptions, default
//    0.1 bits/dim), "better" and "tied" become "not comparable": the
//    lattice's extra bits, not the lattice, may explain them; "worse" stands
//    (a codec that loses with more bits also loses at matched rate).
//
// Not here: SQL (store/query.h), formatting (report/frontier.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "stats/study.h"

namespace kvlab::stats {

// Families the matched-rate table treats as lattices: "d4", "e8".
bool is_lattice_family(const std::string& family);

// One (stream, codec) point.
struct FrontierPoint {
  std::string stream;
  std::string codec;    // canonical spec
  std::string family;   // codec family: 'e8', 'int', 'v4_native'
  std::string variant;  // spec without its rate: 'e8', 'int:block=64,scale=fp16'
  std::optional<int> rate;
  bool is_baseline = false;  // the experiment's baseline codec
  bool lattice = false;
  int dim = 512;
  int n_passages = 0;
  double bits_per_vector = 0.0;
  double bits_per_dim = 0.0;
  Summary rel_mse;
  std::optional<Summary> ratio_vs_baseline;  // paired per passage; none for the baseline itself
  std::optional<Summary> entropy_bits_per_dim;
  std::optional<Summary> range_bits_per_dim;  // none for codecs without a range coder
  std::optional<Summary> gauss_bound;       // rel-MSE
  std::optional<Summary> rwf_bound;         // rel-MSE
  std::optional<Summary> gauss_gap_db;      // per passage 10 log10(rel_mse / bound)
  std::optional<Summary> rwf_gap_db;
  std::optional<Summary> attn_out_rel;
  std::optional<Summary> attn_out_ratio;    // paired ratio to the baseline
  bool pareto = false;
  bool on_hull = false;
};

// Default FrontierOptions::rate_gap_tolerance, bits per dimension.
inline constexpr double kRateGapTolerance = 0.1;

enum class MatchedVerdict {
  kLatticeBetter,
  kTied,
  kLatticeWorse,
  kNoInterval,
  kNoScalar,
  kNotComparable,  // comparator cheaper by more than the tolerance, lattice not worse
  kBelowEnvelope,  // lattice rate below every scalar codec's: no time-sharing reaches it
};
// "lattice better", "tied", "lattice worse", "no CI (n < 2)", "no scalar codec at <= bits",
// "not comparable (rate gap)", "below the scalar grid".
const char* to_string(MatchedVerdict v);

// Verdict of a paired ratio (lattice / comparator) whose comparator has
// `rate_gap` fewer bits/dim than the lattice point (see above).
MatchedVerdict read_verdict(const Summary& ratio, double rate_gap, double tolerance);

// A lattice point against the scalar envelope at its own rate (time-sharing
// between two neighbouring vertices of the non-lattice lower convex hull).
struct EnvelopeComparison {
  std::string lower;  // hull vertex at or below the rate (canonical spec); empty: no envelope
  std::string upper;  // hull vertex above it; == lower at a vertex or beyond the last vertex
  double lower_bits_per_dim = 0.0;
  double upper_bits_per_dim = 0.0;
  double weight_upper = 0.0;   // w: the fraction of vectors coded with `upper`
  double bits_per_dim = 0.0;   // the envelope point's rate (the lattice's, or the last vertex's)
  double rel_mse = 0.0;        // (1 - w) mean_lower + w mean_upper
  double rate_gap_bits_per_dim = 0.0;  // lattice rate - bits_per_dim (> 0 only beyond the last vertex)
  Summary ratio;  // paired per passage: lattice / envelope
  MatchedVerdict verdict = MatchedVerdict::kNoScalar;
};

// One lattice point against the best non-lattice codec at no more bits.
struct MatchedRateRow {
  std::string stream;
  std::string lattice;  // canonical spec
  double lattice_bits = 0.0;
  double lattice_bits_per_dim = 0.0;
  Summary lattice_rel_mse;
  std::optional<std::string> scalar;  // none when no non-lattice codec has <= bits
  double scalar_bits = 0.0;
  double scalar_bits_per_dim = 0.0;
  Summary scalar_rel_mse;
  // lattice_bits_per_dim - scalar_bits_per_dim (>= 0): the bits the lattice
  // point spends beyond its comparator; a verdict across a wide gap compares
  // unequal rates (the lattice's Pareto flag then says whether any codec at
  // no more bits beats it).
  double rate_gap_bits_per_dim = 0.0;
  bool lattice_pareto = false;  // the lattice point's FrontierPoint::pareto
  Summary ratio;  // paired per passage: lattice / scalar (n = passages both ran)
  // At no more bits: kNotComparable when the gap exceeds the tolerance and the lattice is not worse.
  MatchedVerdict verdict = MatchedVerdict::kNoScalar;
  EnvelopeComparison envelope;  // at matched rate: the verdict the summary counts
};

struct FrontierStream {
  std::string stream;
  std::vector<FrontierPoint> points;  // ascending bits per vector, then codec spec
  std::vector<MatchedRateRow> matched;  // one per lattice point, ascending bits
};

struct Frontier {
  ExperimentInfo experiment;
  std::string baseline;    // codec the ratios are against
  std::string write_path;  // experiment's write path ('published' when not recorded)
  int n_passages = 0;
  std::vector<PassageInfo> passages;    // the experiment's passages with at least one finished run, by idx
  double rate_gap_tolerance = kRateGapTolerance;
  std::vector<FrontierStream> streams;  // canonical stream order
  std::vector<std::string> warnings;    // the summary stages' (e.g. a stream without baseline)
  const FrontierStream* find_stream(const std::string& stream) const;
};

struct FrontierOptions {
  std::vector<std::string> streams;  // empty = all
  std::string baseline;              // empty = the experiment's (stages::choose_baseline)
  double rate_gap_tolerance = kRateGapTolerance;  // bits/dim; must be >= 0
};

// Throws kvlab::Error for rows stats::summarize rejects, and when a
// requested stream has no finished runs.
Frontier compute_frontier(const ExperimentData& data, const FrontierOptions& opt = {});

// Indices (into xs/ys, both of equal length) of the lower convex hull's
// vertices from the point of least x to the point of least y, ascending x.
// Exposed for tests.
std::vector<std::size_t> lower_hull(const std::vector<double>& xs, const std::vector<double>& ys);

}  // namespace kvlab::stats
