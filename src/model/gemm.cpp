// The bf16 projection GEMM on oneDNN and the bf16-exactness checks. See gemm.h.
#include "model/gemm.h"

#include <cstring>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "common/error.h"

#if KVLAB_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace kvlab::model {

GemmMode parse_gemm_mode(const std::string& s, const std::string& what) {
  if (s == "auto") return GemmMode::kAuto;
  if (s == "fp32") return GemmMode::kFp32;
  if (s == "bf16") return GemmMode::kBf16;
  throw Error(fmt::format("{} '{}'; expected auto, fp32 or bf16", what, s));
}

const char* gemm_mode_name(GemmMode m) {
  switch (m) {
    case GemmMode::kAuto: return "auto";
    case GemmMode::kFp32: return "fp32";
    case GemmMode::kBf16: return "bf16";
  }
  return "?";
}

namespace {

// A float32 bit pattern is bf16-exact when its low 16 bits are zero; a
// nonzero subnormal (exponent bits 0) is rejected (bf16 dot products flush
// it). Branch-free integer arithmetic so the loops vectorise.
bool f32_bits_exact(const uint32_t* p, int64_t n) {
  uint32_t low = 0, sub = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = p[i];
    low |= u;
    const uint32_t exp_zero = (u & 0x7F800000u) == 0 ? 0xFFFFFFFFu : 0u;
    sub |= exp_zero & u & 0x007F0000u;
  }
  return (low & 0xFFFFu) == 0 && sub == 0;
}

bool bf16_bits_exact(const uint16_t* p, int64_t n) {
  uint16_t sub = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t v = p[i];
    const uint16_t exp_zero = (v & 0x7F80u) == 0 ? 0xFFFFu : 0u;
    sub = static_cast<uint16_t>(sub | (exp_zero & v & 0x007Fu));
  }
  return sub == 0;
}

}  // namespace

bool is_bf16_exact(const at::Tensor& t) {
  KVLAB_CHECK(t.defined(), "is_bf16_exact: undefined tensor");
  at::Tensor c = t.to(at::kCPU).contiguous();
  if (c.scalar_type() == at::kBFloat16)
    return bf16_bits_exact(reinterpret_cast<const uint16_t*>(c.data_ptr<at::BFloat16>()), c.numel());
  if (c.scalar_type() != at::kFloat) c = c.to(at::kFloat);  // fp16 / fp64: exact iff the float32 value is
  if (t.scalar_type() == at::kDouble) {
    // A double that is not a float32 value is not a bf16 value either.
    if (!at::equal(c.to(at::kDouble), t.to(at::kCPU))) return false;
  }
  return f32_bits_exact(reinterpret_cast<const uint32_t*>(c.data_ptr<float>()), c.numel());
}

#if KVLAB_HAVE_ONEDNN

namespace {

using dnnl::memory;

memory::desc desc_x(int64_t m, int64_t k) { return memory::desc({m, k}, memory::data_type::bf16, memory::format_tag::ab); }
// W [N, K] row-major is the matmul's [K, N] weights in "ba" order.
memory::desc desc_w(int64_t k, int64_t n) { return memory::desc({k, n}, memory::data_type::bf16, memory::format_tag::ba); }
memory::desc desc_y(int64_t m, int64_t n) { return memory::desc({m, n}, memory::data_type::f32, memory::format_tag::ab); }

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

Bf16GemmSupport probe() {
  Bf16GemmSupport s;
  const dnnl_version_t* v = dnnl_version();
  s.onednn_version = fmt::format("{}.{}.{}", v->major, v->minor, v->patch);
  try {
    // The V4 shape: 2048 tokens x hidden 4096 -> 7 * 512 outputs.
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(desc_x(2048, 4096), desc_w(4096, 3584), desc_y(2048, 3584)),
                                    cpu_engine());
    s.impl = pd.impl_info_str();
  } catch (const dnnl::error& e) {
    s.why_not = fmt::format("oneDNN {} has no bf16 matmul here ({})", s.onednn_version, e.what());
    return s;
  }
  // Measured on an AMX CPU (2 cores): AMX brgemm ~520 GFLOP/s; oneDNN's
  // AVX512-BF16 brgemm ~80 GFLOP/s and its AVX-512 emulation ~28 GFLOP/s,
  // both slower than OpenBLAS's fp32 SGEMM (~228 GFLOP/s). Only AMX pays.
  if (s.impl.find("amx") != std::string::npos) {
    s.fast = true;
  } else {
    s.why_not = fmt::format("oneDNN {} picks '{}' (no AMX), slower than the fp32 path", s.onednn_version, s.impl);
  }
  return s;
}

}  // namespace

const Bf16GemmSupport& bf16_gemm_support() {
  static const Bf16GemmSupport s = probe();
  return s;
}

struct Bf16Gemm::Impl {
  int64_t n = 0, k = 0;
  at::Tensor w;  // [N, K] bf16, contiguous
  mutable std::mutex mu;
  // By (M, output columns). The scratchpad is ours (user mode), allocated
  // per call, so concurrent calls from several threads never share one.
  struct Prim {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul mm;
  };
  mutable std::map<std::pair<int64_t, int64_t>, Prim> prims;

  Prim prim(int64_t m, int64_t cols) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = prims.find({m, cols});
    if (it == prims.end()) {
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(desc_x(m, k), desc_w(k, cols), desc_y(m, cols)), attr,
                                      cpu_engine());
      it = prims.emplace(std::pair{m, cols}, Prim{pd, dnnl::matmul(pd)}).first;
    }
    return it->second;  // handles (shared)
  }
};

Bf16Gemm::Bf16Gemm(const at::Tensor& w) : impl_(std::make_unique<Impl>()) {
  const auto& sup = bf16_gemm_support();
  KVLAB_CHECK(sup.fast, "bf16 GEMM: not available: {}", sup.why_not);
  KVLAB_CHECK(w.defined() && w.dim() == 2, "bf16 GEMM: weight must be [N, K]");
  KVLAB_CHECK(is_bf16_exact(w), "bf16 GEMM: the weight [{}, {}] is not exactly representable in bf16", w.size(0),
              w.size(1));
  impl_->n = w.size(0);
  impl_->k = w.size(1);
  impl_->w = w.to(at::kCPU).to(at::kBFloat16).contiguous();
}

Bf16Gemm::~Bf16Gemm() = default;

int64_t Bf16Gemm::n() const { return impl_->n; }
int64_t Bf16Gemm::k() const { return impl_->k; }

at::Tensor Bf16Gemm::run(const at::Tensor& x, int64_t row_begin, int64_t rows) const {
  KVLAB_CHECK(x.dim() == 2 && x.size(1) == impl_->k && x.scalar_type() == at::kBFloat16 && x.device().is_cpu(),
              "bf16 GEMM: input must be a CPU bf16 [M, {}] tensor, got {} {}", impl_->k, c10::toString(x.scalar_type()),
              c10::str(x.sizes()));
  if (rows < 0) rows = impl_->n - row_begin;
  KVLAB_CHECK(row_begin >= 0 && rows >= 1 && row_begin + rows <= impl_->n,
              "bf16 GEMM: rows [{}, {}) are not within the weight's {} rows", row_begin, row_begin + rows, impl_->n);
  const int64_t m = x.size(0);
  at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty({m, rows}, at::TensorOptions().dtype(at::kFloat));
  if (m == 0) return y;
  const Impl::Prim p = impl_->prim(m, rows);
  auto& eng = cpu_engine();
  const auto sp_desc = p.pd.scratchpad_desc();
  at::Tensor sp = at::empty({static_cast<int64_t>(sp_desc.get_size()) + 64}, at::TensorOptions().dtype(at::kByte));
  memory msp(sp_desc, eng, sp.data_ptr());
  memory mx(desc_x(m, impl_->k), eng, xc.data_ptr());
  memory mw(desc_w(impl_->k, rows), eng, impl_->w.data_ptr<at::BFloat16>() + row_begin * impl_->k);
  memory my(desc_y(m, rows), eng, y.data_ptr());
  dnnl::stream s(eng);
  p.mm.execute(s, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}, {DNNL_ARG_SCRATCHPAD, msp}});
  s.wait();
  return y;
}

#else  // !KVLAB_HAVE_ONEDNN

const Bf16GemmSupport& bf16_gemm_support() {
  static const Bf16GemmSupport s{false, "", "", "kvlab was built without oneDNN (libdnnl-dev)"};
  return s;
}

struct Bf16Gemm::Impl {};

Bf16Gemm::Bf16Gemm(const at::Tensor&) { throw Error("bf16 GEMM: not available: kvlab was built without oneDNN"); }
Bf16Gemm::~Bf16Gemm() = default;
int64_t Bf16Gemm::n() const { return 0; }
int64_t Bf16Gemm::k() const { return 0; }
at::Tensor Bf16Gemm::run(const at::Tensor&, int64_t, int64_t) const { throw Error("bf16 GEMM: not available"); }

#endif

}  // namespace kvlab::model
