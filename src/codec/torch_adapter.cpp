// LibTorch adapter; see torch_adapter.h.
#include "codec/torch_adapter.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace kvlab::codec {

namespace {
std::string shape_str(const at::Tensor& x) {
  std::string s = "[";
  for (int64_t i = 0; i < x.dim(); ++i) s += (i ? ", " : "") + std::to_string(x.size(i));
  return s + "]";
}
}  // namespace

at::Tensor roundtrip(const Codec& codec, const at::Tensor& x) {
  KVLAB_CHECK(x.defined(), "{} roundtrip: undefined tensor", codec.spec());
  KVLAB_CHECK(x.dim() >= 1 && x.size(-1) == codec.dim(),
              "{} roundtrip: tensor of shape {} (expected [..., {}])", codec.spec(), shape_str(x),
              codec.dim());
  KVLAB_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16,
              "{} roundtrip: tensor dtype {} (expected float32 or bfloat16)", codec.spec(),
              std::string(c10::toString(x.scalar_type())));
  at::Tensor in = x.to(at::kCPU, at::kFloat).contiguous();
  at::Tensor out = at::empty_like(in);
  const int64_t n = in.numel() / codec.dim();
  codec.roundtrip(in.data_ptr<float>(), n, out.data_ptr<float>());
  return out.to(x.device());
}

}  // namespace kvlab::codec
