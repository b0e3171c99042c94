// The V4 write path's projection GEMM, y[M, N] = x[M, K] W[N, K]^T with
// float32 output, on one of two paths:
//
//   fp32  at::mm on float32 operands (LibTorch -> the system BLAS).
//   bf16  oneDNN's matmul primitive on bfloat16 operands with float32
//         accumulation and float32 output (AMX / AVX512-BF16 on CPUs that
//         have them). Used only when every operand is exactly representable
//         in bf16: then each product a*b (8 + 8 significant bits) is exact in
//         float32 and the two paths differ only in the order of the float32
//         accumulation, as two BLAS libraries do. The output is never rounded
//         to bf16 (LibTorch's own bf16 matmul would).
//
// GemmMode picks the path: auto (bf16 when the CPU has a fast bf16 matmul
// and the operands are bf16-exact, else fp32), fp32, bf16 (an error when it
// cannot run). The hardware's bf16 dot products treat bf16 subnormals
// (|v| < 2^-126) as zero, so is_bf16_exact() rejects nonzero subnormals.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <ATen/ATen.h>

namespace kvlab::model {

enum class GemmMode { kAuto, kFp32, kBf16 };

// "auto" | "fp32" | "bf16"; anything else throws kvlab::Error naming the value
// and the accepted ones. `what` prefixes the message (e.g. "[weights] gemm").
GemmMode parse_gemm_mode(const std::string& s, const std::string& what = "gemm");
const char* gemm_mode_name(GemmMode m);

// Whether this build and CPU have a fast bf16 x bf16 -> f32 matmul: built
// with oneDNN, the CPU reports AVX512-BF16 or AMX-BF16, and oneDNN picks a
// JIT implementation (not its reference one) for the V4 shape. `impl` is
// oneDNN's implementation name (e.g. "brg:avx512_core_amx_bf16") when fast,
// `why_not` says why not otherwise. Probed once per process.
struct Bf16GemmSupport {
  bool fast = false;
  std::string impl;
  std::string onednn_version;
  std::string why_not;
};
const Bf16GemmSupport& bf16_gemm_support();

// True when every element of `t` (float32, any device) is exactly a bf16
// value that is zero, normal, infinite or NaN (no nonzero subnormal). A bf16
// tensor is bf16-exact unless it holds a nonzero subnormal.
bool is_bf16_exact(const at::Tensor& t);

// oneDNN bf16 matmul with a fixed weight W [N, K] (float32 or bf16 values,
// bf16-exact), kept as bf16. Throws kvlab::Error when bf16_gemm_support() is
// not fast or W is not bf16-exact. Thread-safe.
class Bf16Gemm {
 public:
  explicit Bf16Gemm(const at::Tensor& w);
  ~Bf16Gemm();
  Bf16Gemm(const Bf16Gemm&) = delete;
  Bf16Gemm& operator=(const Bf16Gemm&) = delete;

  // x [M, K] bfloat16 on the CPU -> y [M, N] float32 (contiguous), or with
  // rows >= 0 only W's rows [row_begin, row_begin + rows): y [M, rows].
  at::Tensor run(const at::Tensor& x, int64_t row_begin = 0, int64_t rows = -1) const;
  int64_t n() const;
  int64_t k() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvlab::model
