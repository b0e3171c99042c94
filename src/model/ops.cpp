// ATen implementations of the V4 write-path operators. See ops.h.
#include "model/ops.h"

#include <limits>

#include "common/error.h"
#include "kernels/fp8_block.h"

namespace kvlab::model {

at::Tensor rms_norm(const at::Tensor& v, const at::Tensor& weight, double eps) {
  at::Tensor x = v.to(at::kFloat);
  at::Tensor var = x.square().mean(-1, /*keepdim=*/true);
  return x * at::rsqrt(var + eps) * weight.to(x.device(), at::kFloat);
}

at::Tensor apply_rope(const at::Tensor& x, const RopeParams& p, int64_t seqlen, int64_t stride) {
  KVLAB_CHECK(x.dim() >= 2, "apply_rope: expected [..., n, D], got {} dims", x.dim());
  const int64_t D = x.size(-1);
  const int64_t n = x.size(-2);
  KVLAB_CHECK(p.dim > 0 && p.dim % 2 == 0 && p.dim <= D, "apply_rope: rope dim {} must be even and <= D = {}", p.dim,
              D);
  const RopeTable t = rope_table(p, seqlen, n, stride);
  auto opts = at::TensorOptions().dtype(at::kFloat);
  at::Tensor c = at::from_blob(const_cast<float*>(t.cos.data()), {n, t.half}, opts).to(x.device(), at::kFloat, false, true);
  at::Tensor s = at::from_blob(const_cast<float*>(t.sin.data()), {n, t.half}, opts).to(x.device(), at::kFloat, false, true);
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor nope = xf.narrow(-1, 0, D - p.dim);
  at::Tensor rope = xf.narrow(-1, D - p.dim, p.dim).contiguous();
  std::vector<int64_t> pair_shape(rope.sizes().begin(), rope.sizes().end());
  pair_shape.back() = p.dim / 2;
  pair_shape.push_back(2);
  at::Tensor pr = rope.view(pair_shape);
  at::Tensor a = pr.select(-1, 0);
  at::Tensor b = pr.select(-1, 1);
  at::Tensor re = a * c - b * s;
  at::Tensor im = a * s + b * c;
  at::Tensor rotated = at::stack({re, im}, -1).flatten(-2);
  return at::cat({nope, rotated}, -1);
}

at::Tensor e4m3_round(const at::Tensor& t) {
  KVLAB_CHECK(t.scalar_type() == at::kFloat, "e4m3_round: expected float32, got {}", c10::toString(t.scalar_type()));
  at::Tensor x = t.contiguous();
  // Normal range (|x| >= 2^-6): keep 3 mantissa bits of the float32,
  // rounding the 20 dropped bits to nearest, ties to even.
  at::Tensor u = x.view(at::kInt);
  at::Tensor lsb = at::bitwise_and(u, 0x100000).ne(0).to(at::kInt);
  at::Tensor normal = at::bitwise_and(u + lsb + 0x7FFFF, static_cast<int32_t>(0xFFF00000u)).view(at::kFloat);
  // Subnormal range: multiples of 2^-9 (x * 512 is exact; round() is RNE).
  at::Tensor sub = at::round(x * 512.0) / 512.0;
  return at::where(x.abs() < 0.015625, sub, normal);
}

namespace {

void check_fp8_args(const at::Tensor& x, int64_t ncols, int64_t block, double fp8_max) {
  KVLAB_CHECK(x.dim() >= 1, "fp8_simulate: expected a tensor [..., D], got a scalar");
  KVLAB_CHECK(block > 0 && ncols >= 0 && ncols % block == 0 && ncols <= x.size(-1),
              "fp8_simulate: ncols = {} must be a multiple of block = {} and <= D = {}", ncols, block, x.size(-1));
  KVLAB_CHECK(fp8_max > 0 && fp8_max <= 448.0, "fp8_simulate: fp8_max = {} (expected in (0, 448])", fp8_max);
}

}  // namespace

namespace {
// The ATen FP8 simulation of the first ncols dims in blocks; the block scale
// is a / fp8_max (SPEC) or, with ue8m0, the power of two 2^ceil(log2(a * fl32(1 / fp8_max)))
// taken from the float bits, as kernels::fp8_simulate_rows_ue8m0.
at::Tensor fp8_blocks_aten(const at::Tensor& x, int64_t ncols, int64_t block, double fp8_max, bool ue8m0) {
  at::Tensor xf = x.to(at::kFloat);
  if (ncols == 0) return xf.clone();
  const int64_t D = xf.size(-1);
  std::vector<int64_t> bshape(xf.sizes().begin(), xf.sizes().end());
  bshape.back() = ncols / block;
  bshape.push_back(block);
  at::Tensor v = xf.narrow(-1, 0, ncols).reshape(bshape);
  const float fmax = static_cast<float>(fp8_max);
  at::Tensor a = v.abs().amax(-1, /*keepdim=*/true).clamp_min(1e-4f);
  at::Tensor s;
  if (ue8m0) {
    // y = a * fl32(1 / fp8_max); s = 2^(exponent of y, +1 when its mantissa is non-zero).
    at::Tensor y = (a * at::full({}, 1.0f / fmax, a.options())).contiguous();
    at::Tensor u = y.view(at::kInt);
    at::Tensor e =
        at::bitwise_and(at::bitwise_right_shift(u, 23), 0xff) + at::bitwise_and(u, 0x7fffff).ne(0).to(at::kInt);
    s = at::bitwise_left_shift(e, 23).view(at::kFloat);
  } else {
    s = a / fmax;
  }
  at::Tensor q = e4m3_round((v / s).clamp(-fmax, fmax));
  at::Tensor out = (q * s).flatten(-2);
  if (ncols == D) return out;
  return at::cat({out, xf.narrow(-1, ncols, D - ncols)}, -1);
}
}  // namespace

at::Tensor fp8_simulate_ue8m0_aten(const at::Tensor& x, int64_t ncols, int64_t block, double fp8_max) {
  check_fp8_args(x, ncols, block, fp8_max);
  return fp8_blocks_aten(x, ncols, block, fp8_max, /*ue8m0=*/true);
}

at::Tensor fp8_simulate(const at::Tensor& x, int64_t ncols, int64_t block, double fp8_max, Fp8Scale scale) {
  check_fp8_args(x, ncols, block, fp8_max);
  if (scale == Fp8Scale::kUe8m0) {
    if (!x.device().is_cpu()) return fp8_blocks_aten(x, ncols, block, fp8_max, /*ue8m0=*/true);
    at::Tensor out = x.to(at::kFloat).contiguous().clone();
    if (ncols == 0 || out.numel() == 0) return out;
    const int64_t D = out.size(-1);
    kernels::fp8_simulate_rows_ue8m0(out.data_ptr<float>(), out.numel() / D, D, ncols, block,
                                     static_cast<float>(fp8_max));
    return out;
  }
  return fp8_blocks_aten(x, ncols, block, fp8_max, /*ue8m0=*/false);
}

at::Tensor overlap_windows(const at::Tensor& x, double fill) {
  KVLAB_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "overlap_windows: expected [B, n, r, 2d], got {}",
              c10::str(x.sizes()));
  const int64_t B = x.size(0), n = x.size(1), r = x.size(2), d = x.size(3) / 2;
  at::Tensor first = x.narrow(3, 0, d);   // [B, n, r, d]
  at::Tensor second = x.narrow(3, d, d);  // [B, n, r, d]
  at::Tensor pad = at::full({B, 1, r, d}, fill, x.options());
  at::Tensor prev = at::cat({pad, first.narrow(1, 0, n - 1)}, 1);  // window k-1's first half
  return at::cat({prev, second}, 2);
}

at::Tensor compress_pool(const at::Tensor& kv, const at::Tensor& score, const at::Tensor& ape, int64_t ratio,
                         bool overlap) {
  KVLAB_CHECK(kv.dim() == 3 && score.sizes() == kv.sizes(), "compress_pool: kv and score must be [B, S, C] alike");
  const int64_t B = kv.size(0), S = kv.size(1), C = kv.size(2);
  KVLAB_CHECK(ratio >= 1 && S >= ratio, "compress_pool: S = {} must be >= ratio = {}", S, ratio);
  KVLAB_CHECK(ape.dim() == 2 && ape.size(0) == ratio && ape.size(1) == C,
              "compress_pool: ape must be [{}, {}], got {}", ratio, C, c10::str(ape.sizes()));
  const int64_t n = S / ratio;
  at::Tensor k4 = kv.narrow(1, 0, n * ratio).reshape({B, n, ratio, C});
  at::Tensor s4 = score.narrow(1, 0, n * ratio).reshape({B, n, ratio, C}) + ape.to(kv.device(), at::kFloat);
  if (overlap) {
    k4 = overlap_windows(k4, 0.0);
    s4 = overlap_windows(s4, -std::numeric_limits<double>::infinity());
  }
  at::Tensor w = at::softmax(s4, 2);
  return (k4 * w).sum(2);
}

}  // namespace kvlab::model
