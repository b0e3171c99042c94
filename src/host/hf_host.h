// Host "hf:PATH": a Hugging Face model's token embeddings as hidden states,
// the published study's recipe (SPEC.md section 2, "Host hidden states"):
//
//   ids    = tokenizer(text * repeat, padding="max_length", truncation=True,
//                      max_length=seqlen)            (tokenizer.h)
//   x      = embed_tokens[ids]  cast to bf16          [1, seqlen, native]
//   hidden = x P^T  rounded to bf16                   [1, seqlen, hidden_size]
//   P      = bf16(randn(hidden_size, native; CPU generator seeded proj_seed))
//            * native^-1/2, in bf16                   (only if native != hidden_size)
//
// P is the PyTorch/LibTorch CPU generator's randn (float32), so it can be
// regenerated in Python with torch.manual_seed(proj_seed) on the CPU; the
// published run drew it on CUDA, which gives different (equally
// distributed) numbers. The product accumulates in float32 (as a bf16 GEMM
// does) and is rounded to bf16 once.
//
// PATH is a model directory (config.json, tokenizer.json, optional
// tokenizer_config.json, model.safetensors or model-*.safetensors with
// model.safetensors.index.json) or a Hugging Face cache repository folder
// (models--Org--Name, resolved through refs/main to its snapshot). Only the
// embedding tensor is read, through the memory-mapped safetensors reader,
// and only the rows of the passage's tokens are touched.
//
// Spec: hf:PATH[,proj_seed=N][,repeat=R][,pad_token=TOKEN]   (defaults
// 20260425 and 8, the published values; PATH may not contain commas).
// pad_token names the padding token for tokenizers without one (Llama 3:
// e.g. <|eot_id|>); transformers refuses to pad there, and so does kvlab
// unless told.
//
// What it is not: no transformer layers (embeddings only), no remote
// downloads, no PyTorch .bin checkpoints.
#pragma once

#include <memory>
#include <string>

#include "host/host.h"

namespace kvlab::host {

// Builds the host; throws kvlab::Error naming the file and field for a
// missing or malformed config.json / tokenizer.json / safetensors file, an
// unsupported tokenizer, an embedding tensor that cannot be found, or an
// embedding width that disagrees with config.json.
std::unique_ptr<HiddenSource> make_hf_host(const std::string& spec);

// The projection seed used when the spec gives none (the published one).
inline constexpr uint64_t kHfDefaultProjectionSeed = 20260425;

}  // namespace kvlab::host
