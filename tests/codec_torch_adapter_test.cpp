// The LibTorch adapter: [..., D] fp32/bf16 tensors in, fp32 out on the same
// device, equal to the raw-buffer codec; wrong rank/shape/dtype is an Error.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstring>

#include "codec/codec.h"
#include "codec/torch_adapter.h"
#include "common/error.h"

namespace kvlab::codec {
namespace {

TEST(TorchAdapter, MatchesRawCodecForFp32AndBf16) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({2, 3, 128});
  auto codec = make_codec("e8:q=38", 128);
  const at::Tensor y = roundtrip(*codec, x);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_EQ(y.scalar_type(), at::kFloat);
  std::vector<float> want(6 * 128);
  codec->roundtrip(x.contiguous().data_ptr<float>(), 6, want.data());
  EXPECT_EQ(std::memcmp(y.contiguous().data_ptr<float>(), want.data(), want.size() * 4), 0);
  // bf16 input is widened to fp32 exactly, then coded.
  const at::Tensor xb = x.to(at::kBFloat16);
  const at::Tensor yb = roundtrip(*codec, xb);
  const at::Tensor yb2 = roundtrip(*codec, xb.to(at::kFloat));
  EXPECT_TRUE(at::equal(yb, yb2));
  // Non-contiguous input (a transposed view) gives the same as its copy.
  const at::Tensor xt = at::randn({128, 4}).t();
  EXPECT_TRUE(at::equal(roundtrip(*codec, xt), roundtrip(*codec, xt.contiguous())));
}

TEST(TorchAdapter, RejectsWrongShapeAndDtype) {
  auto codec = make_codec("fp8_per64", 128);
  EXPECT_THROW(roundtrip(*codec, at::randn({4, 64})), kvlab::Error);
  EXPECT_THROW(roundtrip(*codec, at::zeros({4, 128}, at::kInt)), kvlab::Error);
  EXPECT_THROW(roundtrip(*codec, at::randn({4, 128}).to(at::kDouble)), kvlab::Error);
  EXPECT_THROW(roundtrip(*codec, at::scalar_tensor(1.0)), kvlab::Error);
  try {
    roundtrip(*codec, at::randn({4, 64}));
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 64]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvlab::codec
