// Reading named tensors from a V4 checkpoint with the loader of
// weights_load.cpp (single .safetensors file, sharded folder with
// model.safetensors.index.json, Hugging Face cache folder; FP8-E4M3 weights
// dequantised with their `.scale` per 128x128 tile; an optional "model."
// prefix). For code outside the KV write path (e.g. the attention read
// path's query weights). Not here: which tensors a module needs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace kvlab::model {

struct CheckpointTensorRequest {
  std::vector<std::string> names;  // candidates, tried in order (each also with "model." prepended)
  std::vector<int64_t> shape;      // expected shape
  std::string role;                // for messages, e.g. "layer 2 wq_a"
};

// float32 CPU tensors, one per request, in order. Throws kvlab::Error naming
// the checkpoint and tensor for a missing tensor, a wrong shape or dtype, a
// missing or bad scale, or a non-finite value.
std::vector<at::Tensor> load_checkpoint_tensors(const std::string& path,
                                                const std::vector<CheckpointTensorRequest>& requests);

}  // namespace kvlab::model
