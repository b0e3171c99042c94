// Rate kernels (scalar, no LibTorch):
//  - the plug-in (maximum-likelihood) entropy of an empirical symbol
//    distribution, for the ideal entropy-coded rate of what a codec stored
//    (codec::Codec::stored_entropy);
//  - the distortion-rate bounds of a Gaussian source, as rel-MSE (distortion
//    over the total variance): the i.i.d. bound 2^(-2R) and reverse
//    water-filling over covariance eigenvalues.
// Not here: reading symbols out of a codec's bytes (codec/), computing the
// eigenvalues (the torch executor, at::linalg_eigvalsh).
#pragma once

#include <cstdint>

namespace kvlab::kernels {

// -sum_i p_i log2 p_i with p_i = counts[i] / sum(counts), zero counts
// skipped; 0 for an all-zero histogram. Throws kvlab::Error on a negative
// count (naming its index and value).
double entropy_bits_from_counts(const int64_t* counts, int64_t k);

// Plug-in entropy in bits per symbol of symbols[i * stride], 0 <= i < n
// (0 when n == 0). Exact counts: a dense histogram over [min, max] when that
// range has at most 2^20 values, else counts of a sorted copy. The plug-in
// estimate is biased low by about (K - 1) / (2 n ln 2) bits for K symbols
// with non-zero probability. Throws kvlab::Error for n < 0 or stride < 1.
double plugin_entropy_bits(const int32_t* symbols, int64_t n, int64_t stride = 1);
double plugin_entropy_bits(const int16_t* symbols, int64_t n, int64_t stride = 1);
double plugin_entropy_bits(const uint16_t* symbols, int64_t n, int64_t stride = 1);
double plugin_entropy_bits(const uint8_t* symbols, int64_t n, int64_t stride = 1);

// Distortion-rate function of an i.i.d. Gaussian at R bits per dimension,
// over its variance: 2^(-2R) (sigma^2 cancels). Throws kvlab::Error unless
// R is finite and >= 0.
double gauss_bound_rel_mse(double bits_per_dim);

// Reverse water-filling: the distortion-rate function of a Gaussian vector
// with covariance eigenvalues eig[0..d) at a total rate of d * R bits,
// D(R) = sum_i min(theta, lambda_i) with theta chosen so that
// sum_{lambda_i > theta} (1/2) log2(lambda_i / theta) = d R, divided by
// sum_i lambda_i. Computed in closed form: with the k largest eigenvalues
// active, log2 theta = (sum_{i<k} log2 lambda_i - 2 d R) / k, the k whose
// theta lies in [lambda_k, lambda_{k-1}] (descending order). Eigenvalues
// below 1e-12 of the largest (numerical noise of a rank-deficient sample
// covariance, including small negatives) count as 0 (never active). R = 0
// gives 1; the result is <= gauss_bound_rel_mse(R), with equality for a
// white spectrum. Throws kvlab::Error for d < 1, a non-finite eigenvalue,
// sum lambda <= 0, or R not finite and >= 0.
double rwf_bound_rel_mse(const double* eig, int64_t d, double bits_per_dim);

}  // namespace kvlab::kernels
