// Hidden-state sources ("hosts") feeding the V4 KV write path, and reading
// already captured KV streams (kv-file).
//
// A host turns one passage into hidden states [1, seqlen, hidden]. Kinds are
// chosen by a spec string "<kind>[:<options>]":
//
//   synthetic[:seed=N][,kind=realistic|iid][,dtype=fp32|bf16][,vocab=V]
//       Seeded, no model needed (synthetic.cpp documents the generator).
//       The hidden states depend on the host seed, the passage seed and,
//       when the passage has text, a SHA-256 of that text.
//   hf:PATH...
//       A Hugging Face model's token embeddings projected to `hidden`
//       (src/host/hf_host.{h,cpp}, the tokenizer engineer's files).
//
// Adding a kind (the seam for hf_host): either
//   - call register_host_kind("hf", factory) before make_host() is used; or
//   - provide src/host/hf_host.h declaring
//       std::unique_ptr<kvlab::host::HiddenSource> make_hf_host(const std::string& spec);
//     host.cpp includes it when present (__has_include) and registers it
//     under "hf"; the direct call also keeps hf_host.o in every link (a
//     static registrar object alone would be dropped from the static library).
//     After adding the header, re-run the build so host.cpp is recompiled.
//
// Not here: tokenisation (tokenizer.h), the write path itself (model/).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace kvlab::host {

struct PassageInput {
  std::string name;
  std::string text;  // may be empty (purely seeded passages)
  uint64_t seed = 0;
};

class HiddenSource {
 public:
  virtual ~HiddenSource();
  // [1, seqlen, hidden] float32 or bfloat16 on `device`. Deterministic in
  // (host parameters, passage). Throws kvlab::Error on bad arguments.
  virtual at::Tensor hidden(const PassageInput& passage, int64_t seqlen, int64_t hidden_size,
                            c10::Device device) = 0;
  // "synthetic", "hf", ...
  virtual std::string kind() const = 0;
  // Every parameter that determines the output (recorded with each run).
  virtual nlohmann::json describe() const = 0;
};

using HostFactory = std::function<std::unique_ptr<HiddenSource>(const std::string& spec)>;

// Registers (or replaces) the factory for specs "<prefix>" / "<prefix>:...".
// The factory receives the whole spec string.
void register_host_kind(const std::string& prefix, HostFactory factory);
// Registered prefixes, sorted.
std::vector<std::string> host_kinds();
// Builds a host from its spec; throws kvlab::Error naming the spec and the
// known kinds when the prefix is unknown or the options are bad.
std::unique_ptr<HiddenSource> make_host(const std::string& spec);

// The built-in synthetic host (also reachable through make_host).
std::unique_ptr<HiddenSource> make_synthetic_host(const std::string& spec);

// Captured KV streams: a safetensors file with one tensor per stream
// ([tokens, D] or [B, tokens, D]; F32, BF16, F16 or F64), returned as
// float32 CPU tensors keyed by tensor name. Throws kvlab::Error for an empty
// file, a rank other than 2 or 3, a non-float dtype, or non-finite values
// (naming the tensor).
std::map<std::string, at::Tensor> load_kv_file(const std::string& path);

}  // namespace kvlab::host
