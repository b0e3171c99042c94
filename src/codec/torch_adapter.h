// Thin LibTorch adapter for codecs: [..., D] tensors in, fp32 tensors out.
// Only this header/TU of codec/ sees LibTorch; the codecs themselves work
// on raw float buffers.
#pragma once

#include <ATen/core/Tensor.h>

#include "codec/codec.h"

namespace kvlab::codec {

// x: float32 or bfloat16, any device, rank >= 1, last dim == codec.dim().
// Returns decode(encode(x)) as float32 of x's shape on x's device.
// Throws kvlab::Error naming the shape/dtype on anything else.
at::Tensor roundtrip(const Codec& codec, const at::Tensor& x);

}  // namespace kvlab::codec
