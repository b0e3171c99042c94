// Configuration of the DeepSeek-V4 KV write path (SPEC section 2).
//
// Defaults are V4-Flash. A config can be read from a model's config.json
// (keys hidden_size, head_dim, qk_rope_head_dim, rope_theta,
// compress_rope_theta, rope_scaling{factor, original_max_position_embeddings,
// beta_fast, beta_slow}, rms_norm_eps, compress_ratios, num_hidden_layers)
// or from a JSON object with the keys of the reference files
// (../shared/reference/dsv4_small.safetensors metadata `config/*`). The
// layer mix (which layer is SWA / CSA / HCA) is data: `compress_ratios`,
// one entry per layer, 0 = sliding window only, 4 = CSA, 128 = HCA.
//
// No LibTorch here: stats/ and report/ may read the layer mix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvlab::model {

enum class LayerKind { SWA, CSA, HCA };
// The V4-Flash layer mix: [0, 0] + [4, 128] x 20 + [0] (43 layers).
std::vector<int64_t> flash_compress_ratios();
// "swa", "csa", "hca"
const char* layer_kind_name(LayerKind k);

struct V4Config {
  int64_t hidden_size = 4096;
  int64_t head_dim = 512;
  int64_t qk_rope_head_dim = 64;  // the LAST rope dims of each vector
  double rope_theta_main = 10000.0;
  double rope_theta_compress = 160000.0;
  double rope_factor = 16.0;
  int64_t original_seq_len = 65536;  // YaRN (compressors only) when S > this; 0 disables
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double rms_norm_eps = 1e-6;
  int64_t fp8_block_size_nope = 64;
  double fp8_max = 448.0;
  bool simulate_fp8 = true;
  int64_t csa_ratio = 4;    // compressor ratio with overlapping windows
  int64_t hca_ratio = 128;  // compressor ratio without overlap
  // Per layer: 0 (SWA), csa_ratio (CSA) or hca_ratio (HCA). V4-Flash: 43
  // layers, [0, 0] + [4, 128] x 20 + [0] -> 3 SWA, 20 CSA, 20 HCA.
  std::vector<int64_t> compress_ratios = flash_compress_ratios();

  // V4-Flash (the defaults above plus its 43-layer mix).
  static V4Config flash();
  // Parses a V4 config.json or a reference-style object. Missing keys keep
  // the V4-Flash defaults; wrong types, unknown keys (reference style) and
  // invalid values throw kvlab::Error naming `where` and the key.
  static V4Config from_json(const nlohmann::json& j, const std::string& where = "config");
  static V4Config from_json_file(const std::string& path);
  // Reference-style keys plus compress_ratios; from_json(to_json()) == *this.
  nlohmann::json to_json() const;
  // Throws kvlab::Error when dims or parameters are inconsistent.
  void validate() const;

  int64_t nope_dim() const { return head_dim - qk_rope_head_dim; }
  int num_layers() const { return static_cast<int>(compress_ratios.size()); }
  // Throws kvlab::Error for a layer id out of range.
  LayerKind layer_kind(int layer) const;
  // Layer ids of one kind, ascending.
  std::vector<int> layers_of(LayerKind k) const;
  // Number of layers per kind.
  int count(LayerKind k) const { return static_cast<int>(layers_of(k).size()); }

  bool operator==(const V4Config&) const = default;
};

}  // namespace kvlab::model
