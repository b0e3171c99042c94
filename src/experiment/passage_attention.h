// The attention metrics of experiment runs ([metrics] attention = on in the
// spec, params_json "metrics"): for each (passage, stream) ONE
// model::AttentionProbe of the layer that stores the stream (SWA: the
// window KV is coded; CSA / HCA: the compressed KV is coded, the window KV
// is not), its reference attention computed once, then every codec's
// decoded stream scored against it. The probe's inputs come from
// model::layer_attention_inputs (as in `kvlab attention`).
//
// Stored per run (run_metrics rows of common/metric_table.h):
// logit_rel_mse, kl_mean, kl_p99, attn_out_rel.
//
// Not here: where the streams, query weights and per-layer window KV come
// from (the torch executor supplies them through AttentionSources).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "experiment/attention_settings.h"
#include "model/config.h"
#include "model/v4_attention.h"

namespace kvlab::experiment {

// The layer kind that stores a stream (sliding_window_kv -> SWA, ...);
// kvlab::Error for other names.
model::LayerKind stream_layer_kind(const std::string& stream);

struct AttentionSources {
  // The stream's rows [n, D] float32 as the codecs read them.
  std::function<at::Tensor(const std::string& stream)> rows;
  // The main (window) KV [S, D] of the layer that stores `stream` (asked
  // for CSA / HCA streams only; the SWA stream's window KV is its rows).
  std::function<at::Tensor(const std::string& stream)> window_kv;
  // The query weights of that layer.
  std::function<const model::V4QueryWeights&(const std::string& stream)> query_weights;
};

class PassageAttention {
 public:
  // hidden [S, hidden] (or [1, S, hidden]): the passage's hidden states;
  // cfg: the write path's config (its write_path decides the RoPE).
  PassageAttention(AttentionSettings s, model::V4Config cfg, at::Tensor hidden, AttentionSources src);

  // Adds the four attention metrics of `decoded` (the codec's output of the
  // stream's rows, [n, D]) to `metrics`. Builds the stream's probe on first
  // use.
  void add_metrics(const std::string& stream, const at::Tensor& decoded, std::map<std::string, double>& metrics);

  // The probe of a stream (built on first use).
  const model::AttentionProbe& probe(const std::string& stream);
  // The experiment name the phase timers file this passage's work under
  // (phase_times.h).
  void set_label(std::string label) { label_ = std::move(label); }

 private:
  AttentionSettings s_;
  model::V4Config cfg_;
  at::Tensor hidden_;
  AttentionSources src_;
  std::map<std::string, std::unique_ptr<model::AttentionProbe>> probes_;
  std::string label_;
};

}  // namespace kvlab::experiment
