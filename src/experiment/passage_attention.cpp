// Attention metrics of experiment runs; see passage_attention.h.
#include "experiment/passage_attention.h"

#include <fmt/format.h>

#include "common/error.h"
#include "common/streams.h"
#include "experiment/phase_times.h"

namespace kvlab::experiment {

model::LayerKind stream_layer_kind(const std::string& stream) {
  for (auto k : {model::LayerKind::SWA, model::LayerKind::CSA, model::LayerKind::HCA})
    if (stream == model::layer_kind_stream(k)) return k;
  throw Error(fmt::format("attention metrics: stream '{}' is not a V4 KV stream (expected one of {})", stream,
                          known_streams_text()));
}

PassageAttention::PassageAttention(AttentionSettings s, model::V4Config cfg, at::Tensor hidden, AttentionSources src)
    : s_(s), cfg_(std::move(cfg)), src_(std::move(src)) {
  KVLAB_CHECK(hidden.defined() && (hidden.dim() == 2 || (hidden.dim() == 3 && hidden.size(0) == 1)),
              "attention metrics: hidden states must be [S, hidden] or [1, S, hidden], got {}",
              hidden.defined() ? c10::str(hidden.sizes()) : std::string("(missing)"));
  hidden_ = hidden.dim() == 3 ? hidden[0] : hidden;
}

const model::AttentionProbe& PassageAttention::probe(const std::string& stream) {
  auto it = probes_.find(stream);
  if (it != probes_.end()) return *it->second;
  const model::V4QueryWeights* w = nullptr;
  {
    phase_times::Scope t(label_, "attention query weights");
    w = &src_.query_weights(stream);  // generated or loaded once per executor
  }
  const model::LayerKind kind = stream_layer_kind(stream);
  const bool swa = kind == model::LayerKind::SWA;
  model::AttentionInputs in;
  {
    phase_times::Scope t(label_, "attention inputs");
    const at::Tensor window = swa ? src_.rows(stream) : src_.window_kv(stream);
    const at::Tensor compressed = swa ? at::Tensor() : src_.rows(stream);
    in = model::layer_attention_inputs(cfg_, model::V4AttentionConfig{}, *w, kind,
                                       swa ? model::CodedPart::kWindow : model::CodedPart::kCompressed, hidden_,
                                       window, compressed, s_.queries, s_.seed);
  }
  phase_times::Scope t(label_, "attention reference");
  it = probes_.emplace(stream, std::make_unique<model::AttentionProbe>(in)).first;
  return *it->second;
}

void PassageAttention::add_metrics(const std::string& stream, const at::Tensor& decoded,
                                   std::map<std::string, double>& metrics) {
  const model::AttentionProbe& p = probe(stream);
  phase_times::Scope t(label_, "attention score");
  const model::AttentionMetrics a = p.score(decoded);
  metrics["logit_rel_mse"] = a.logit_rel_mse;
  metrics["kl_mean"] = a.kl_mean;
  metrics["kl_p99"] = a.kl_p99;
  metrics["attn_out_rel"] = a.attn_out_rel;
}

}  // namespace kvlab::experiment
