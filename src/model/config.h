// Configuration of the DeepSeek-V4 KV write path (SPEC section 2).
//
// Defaults are V4-Flash. A config can be read from a model's config.json
// (keys hidden_size, head_dim, qk_rope_head_dim, rope_theta,
// compress_rope_theta, rope_scaling{factor, original_max_position_embeddings,
// beta_fast, beta_slow}, rms_norm_eps, compress_ratios, num_hidden_layers,
// num_nextn_predict_layers)
// or from a JSON object with the keys of the reference files
// (../shared/reference/dsv4_small.safetensors metadata `config/*`). The
// layer mix (which layer is SWA / CSA / HCA) is data: `compress_ratios`,
// one entry per layer, 0 = sliding window only, 4 = CSA, 128 = HCA.
//
// Write-path modes (SPEC-V4-ATTENTION.md): `published` (default) follows
// SPEC section 2, the published harness, bit for bit; `v4` follows V4
// itself: compressor RoPE with YaRN at every length, UE8M0 power-of-two FP8
// scales, and the real layer mix (v4_compress_ratios). The config carries
// two layer lists: compress_ratios (published mode; default SPEC's
// 3 SWA / 20 CSA / 20 HCA) and v4_compress_ratios (v4 mode; default the V4-Flash
// config.json's 2 / 21 / 20). A model config.json's compress_ratios sets both.
//
// No LibTorch here: stats/ and report/ may read the layer mix.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvlab::model {

// The three KV streams of the write path (one per layer kind).
inline constexpr const char* kStreamSWA = "sliding_window_kv";
inline constexpr const char* kStreamCSA = "csa_pool_kv_ratio4";
inline constexpr const char* kStreamHCA = "hca_pool_kv_ratio128";

enum class LayerKind { SWA, CSA, HCA };
// The published (SPEC section 1) V4-Flash layer mix: [0, 0] + [4, 128] x 20 + [0]
// (43 layers: 3 SWA, 20 CSA, 20 HCA).
std::vector<int64_t> flash_compress_ratios();
// V4-Flash's config.json compress_ratios, 44 entries = 43 layers + the MTP
// slot: [0, 0] + [4, 128] x 20 + [4, 0] (layers: 2 SWA, 21 CSA, 20 HCA).
std::vector<int64_t> v4_flash_config_compress_ratios();
// Its 43 layer entries (the MTP slot dropped).
std::vector<int64_t> v4_flash_layer_ratios();
// "swa", "csa", "hca"
const char* layer_kind_name(LayerKind k);
// kStreamSWA / kStreamCSA / kStreamHCA
const char* layer_kind_stream(LayerKind k);

enum class WritePath { kPublished, kV4 };
// "published", "v4"
const char* write_path_name(WritePath m);
// "published" | "v4"; else kvlab::Error "<where>: write path '<s>'; expected published or v4".
WritePath parse_write_path(const std::string& s, const std::string& where = "write path");

// A config.json `compress_ratios` array: integers, each 0 (SWA), csa_ratio
// (CSA) or hca_ratio (HCA). With num_hidden_layers >= 0 the list must hold
// at least that many entries, exactly num_hidden_layers + mtp_layers when
// mtp_layers >= 0 (num_nextn_predict_layers), and the trailing (MTP) entries
// are dropped; num_hidden_layers < 0 keeps every entry. kvlab::Error naming
// `where`, the entry and its value, or the lengths.
std::vector<int64_t> parse_compress_ratios(const nlohmann::json& cr, int64_t num_hidden_layers, int64_t mtp_layers,
                                           int64_t csa_ratio, int64_t hca_ratio,
                                           const std::string& where = "config");

struct V4Config {
  int64_t hidden_size = 4096;
  int64_t head_dim = 512;
  int64_t qk_rope_head_dim = 64;  // the LAST rope dims of each vector
  double rope_theta_main = 10000.0;
  double rope_theta_compress = 160000.0;
  double rope_factor = 16.0;
  int64_t original_seq_len = 65536;  // YaRN (compressors only) when S > this (v4 mode: always); 0 disables
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
  // The same for v4 mode; default V4-Flash's config.json without the MTP slot
  // (43 layers: 2 SWA, 21 CSA, 20 HCA).
  std::vector<int64_t> v4_compress_ratios = v4_flash_layer_ratios();
  WritePath write_path = WritePath::kPublished;

  // V4-Flash (the defaults above plus its 43-layer mix).
  static V4Config flash();
  // Parses a V4 config.json or a reference-style object. Missing keys keep
  // the V4-Flash defaults; wrong types, unknown keys (reference style) and
  // invalid values throw kvlab::Error naming `where` and the key.
  static V4Config from_json(const nlohmann::json& j, const std::string& where = "config");
  static V4Config from_json_file(const std::string& path);
  // Reference-style keys plus compress_ratios (and v4_compress_ratios when
  // it differs, write_path when v4); from_json(to_json()) == *this.
  nlohmann::json to_json() const;
  // Throws kvlab::Error when dims or parameters are inconsistent.
  void validate() const;

  int64_t nope_dim() const { return head_dim - qk_rope_head_dim; }
  // The layer list of the write path: compress_ratios (published) or
  // v4_compress_ratios (v4). num_layers / layer_kind / layers_of / count use it.
  const std::vector<int64_t>& layer_ratios() const {
    return write_path == WritePath::kV4 ? v4_compress_ratios : compress_ratios;
  }
  int num_layers() const { return static_cast<int>(layer_ratios().size()); }
  // Throws kvlab::Error for a layer id out of range.
  LayerKind layer_kind(int layer) const;
  // Layer ids of one kind, ascending.
  std::vector<int> layers_of(LayerKind k) const;
  // Number of layers per kind.
  int count(LayerKind k) const { return static_cast<int>(layers_of(k).size()); }
  // {stream name -> layer count} of the config's write path (all three streams).
  std::map<std::string, int> layer_mix() const { return layer_mix(write_path); }
  // The same for mode m: published counts compress_ratios, v4 v4_compress_ratios.
  std::map<std::string, int> layer_mix(WritePath m) const;

  bool operator==(const V4Config&) const = default;
};

// Parses a JSON file; kvlab::Error naming the path when it cannot be
// opened or is not valid JSON. Shared by the config readers.
nlohmann::json read_json_file(const std::string& path);

}  // namespace kvlab::model
