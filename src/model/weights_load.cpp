// Loading V4 KV-path weights from safetensors checkpoints (single file,
// sharded directory with model.safetensors.index.json, Hugging Face cache
// folder) and FP8-E4M3 / E8M0 tile dequantisation. See v4_kv.h.
#include <ATen/ATen.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/safetensors.h"
#include "kernels/fp_formats.h"
#include "model/checkpoint.h"
#include "model/v4_kv.h"

namespace kvlab::model {

namespace fs = std::filesystem;
using io::DType;
using io::SafetensorsFile;

at::Tensor dequantize_fp8_tiles(const at::Tensor& codes_u8, const at::Tensor& scales_f32, int64_t tile) {
  KVLAB_CHECK(codes_u8.dim() == 2 && codes_u8.scalar_type() == at::kByte,
              "dequantize_fp8_tiles: codes must be a 2-D uint8 tensor, got {} {}", c10::str(codes_u8.sizes()),
              c10::toString(codes_u8.scalar_type()));
  KVLAB_CHECK(tile >= 1, "dequantize_fp8_tiles: tile must be >= 1, got {}", tile);
  const int64_t out = codes_u8.size(0), in = codes_u8.size(1);
  const int64_t to = (out + tile - 1) / tile, ti = (in + tile - 1) / tile;
  KVLAB_CHECK(scales_f32.dim() == 2 && scales_f32.size(0) == to && scales_f32.size(1) == ti,
              "dequantize_fp8_tiles: scale shape {} does not match weight [{}, {}] with {}x{} tiles: expected [{}, {}]",
              c10::str(scales_f32.sizes()), out, in, tile, tile, to, ti);
  std::array<float, 256> lut;
  for (int c = 0; c < 256; ++c) lut[static_cast<std::size_t>(c)] = kernels::e4m3_to_f32(static_cast<uint8_t>(c));
  at::Tensor table = at::from_blob(lut.data(), {256}, at::TensorOptions().dtype(at::kFloat)).to(codes_u8.device(), at::kFloat, false, true);
  at::Tensor w = table.index_select(0, codes_u8.flatten().to(at::kLong)).view({out, in});
  at::Tensor s = scales_f32.to(codes_u8.device(), at::kFloat)
                     .repeat_interleave(tile, 0)
                     .narrow(0, 0, out)
                     .repeat_interleave(tile, 1)
                     .narrow(1, 0, in);
  return w * s;
}

namespace {

// The set of safetensors files a checkpoint consists of, opened lazily.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& path) : root_(path) {
    std::error_code ec;
    KVLAB_CHECK(fs::exists(path, ec), "weights: {} does not exist", path);
    if (fs::is_regular_file(path, ec)) {
      files_.push_back({path, nullptr});
      return;
    }
    KVLAB_CHECK(fs::is_directory(path, ec), "weights: {} is neither a file nor a directory", path);
    fs::path dir = resolve_hf_cache(path);
    fs::path index = dir / "model.safetensors.index.json";
    if (fs::exists(index)) {
      std::ifstream in(index);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        throw Error(fmt::format("weights: {}: not valid JSON: {}", index.string(), e.what()));
      }
      KVLAB_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
                  "weights: {}: expected an object with a 'weight_map' object", index.string());
      std::map<std::string, std::size_t> shard_ids;
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        KVLAB_CHECK(it.value().is_string(), "weights: {}: weight_map['{}'] must be a file name", index.string(),
                    it.key());
        std::string shard = it.value().get<std::string>();
        KVLAB_CHECK(shard.find('/') == std::string::npos && shard != ".." && !shard.empty(),
                    "weights: {}: weight_map['{}'] = '{}' is not a file name in the checkpoint folder",
                    index.string(), it.key(), shard);
        auto [pos, added] = shard_ids.emplace(shard, files_.size());
        if (added) files_.push_back({(dir / shard).string(), nullptr});
        index_[it.key()] = pos->second;
      }
      indexed_ = true;
    } else {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".safetensors") found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      KVLAB_CHECK(!found.empty(), "weights: {} holds no model.safetensors.index.json and no *.safetensors file",
                  dir.string());
      for (auto& f : found) files_.push_back({f, nullptr});
    }
  }

  // (file, info) of `name`, or nullopt.
  std::optional<std::pair<const SafetensorsFile*, const io::TensorInfo*>> find(const std::string& name) {
    if (indexed_) {
      auto it = index_.find(name);
      if (it == index_.end()) return std::nullopt;
      const SafetensorsFile& f = file(it->second);
      KVLAB_CHECK(f.has(name), "weights: the index lists '{}' in {} but that shard does not hold it", name, f.path());
      return std::pair{&f, &f.info(name)};
    }
    for (std::size_t i = 0; i < files_.size(); ++i) {
      const SafetensorsFile& f = file(i);
      if (f.has(name)) return std::pair{&f, &f.info(name)};
    }
    return std::nullopt;
  }

  const std::string& root() const { return root_; }

 private:
  static fs::path resolve_hf_cache(const fs::path& p) {
    fs::path snaps = p / "snapshots";
    if (!fs::is_directory(snaps)) return p;
    fs::path ref = p / "refs" / "main";
    if (fs::exists(ref)) {
      std::ifstream in(ref);
      std::string hash;
      in >> hash;
      if (!hash.empty() && fs::is_directory(snaps / hash)) return snaps / hash;
    }
    std::vector<fs::path> all;
    for (const auto& e : fs::directory_iterator(snaps))
      if (e.is_directory()) all.push_back(e.path());
    KVLAB_CHECK(all.size() == 1, "weights: {} has {} snapshots and no refs/main; pass the snapshot folder itself",
                snaps.string(), all.size());
    return all[0];
  }

  const SafetensorsFile& file(std::size_t i) {
    auto& slot = files_[i];
    if (!slot.second) slot.second = std::make_unique<SafetensorsFile>(SafetensorsFile::open(slot.first));
    return *slot.second;
  }

  std::string root_;
  std::vector<std::pair<std::string, std::unique_ptr<SafetensorsFile>>> files_;
  std::map<std::string, std::size_t> index_;
  bool indexed_ = false;
};

at::Tensor from_floats(std::vector<float> v, const std::vector<int64_t>& shape) {
  at::Tensor t = at::empty(at::IntArrayRef(shape), at::TensorOptions().dtype(at::kFloat));
  if (!v.empty()) std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

class Loader {
 public:
  Loader(Checkpoint& ck) : ck_(ck) {}

  // Candidate names tried in order: name, "model." + name.
  at::Tensor load(const std::vector<std::string>& names, const std::vector<int64_t>& want, const char* role) {
    for (const std::string& n : names) {
      for (const std::string& cand : {n, "model." + n}) {
        auto hit = ck_.find(cand);
        if (!hit) continue;
        const SafetensorsFile& f = *hit->first;
        const io::TensorInfo& ti = *hit->second;
        KVLAB_CHECK(ti.shape == want, "weights: {}: tensor '{}' ({}) has shape {}, expected {}", f.path(), cand, role,
                    io::shape_str(ti.shape), io::shape_str(want));
        at::Tensor t;
        if (ti.dtype == DType::F8_E4M3) {
          t = dequant(f, ti);
        } else {
          KVLAB_CHECK(ti.dtype == DType::F32 || ti.dtype == DType::BF16 || ti.dtype == DType::F16 ||
                          ti.dtype == DType::F64,
                      "weights: {}: tensor '{}' has dtype {}, expected F32, BF16, F16, F64 or F8_E4M3 (with a scale)",
                      f.path(), cand, io::dtype_name(ti.dtype));
          t = from_floats(f.to_f32(cand), ti.shape);
        }
        check_finite(t, f.path(), cand);
        return t;
      }
    }
    throw Error(fmt::format("weights: {}: no tensor '{}' ({}, expected shape {})", ck_.root(), names.front(), role,
                            io::shape_str(want)));
  }

 private:
  at::Tensor dequant(const SafetensorsFile& f, const io::TensorInfo& ti) {
    std::string base = ti.name;
    const std::string suffix = ".weight";
    if (base.size() > suffix.size() && base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0)
      base = base.substr(0, base.size() - suffix.size());
    KVLAB_CHECK(ti.shape.size() == 2, "weights: {}: FP8 tensor '{}' must be 2-D, got {}", f.path(), ti.name,
                io::shape_str(ti.shape));
    const int64_t to = (ti.shape[0] + 127) / 128, tin = (ti.shape[1] + 127) / 128;
    for (const std::string& sname : {base + ".scale", base + ".weight_scale_inv", ti.name + ".scale"}) {
      auto hit = ck_.find(sname);
      if (!hit) continue;
      const SafetensorsFile& sf = *hit->first;
      const io::TensorInfo& si = *hit->second;
      KVLAB_CHECK(si.shape == (std::vector<int64_t>{to, tin}),
                  "weights: {}: scale '{}' has shape {}, expected {} (one per 128x128 tile of {} weight {})",
                  sf.path(), sname, io::shape_str(si.shape), io::shape_str({to, tin}), ti.name,
                  io::shape_str(ti.shape));
      std::vector<float> sv;
      if (si.dtype == DType::U8) {  // E8M0 stored as raw bytes
        auto b = sf.bytes(sname);
        sv.resize(b.size());
        for (std::size_t i = 0; i < b.size(); ++i) sv[i] = kernels::e8m0_to_f32(static_cast<uint8_t>(b[i]));
      } else {
        KVLAB_CHECK(si.dtype == DType::E8M0 || si.dtype == DType::F32 || si.dtype == DType::BF16,
                    "weights: {}: scale '{}' has dtype {}, expected F8_E8M0, U8 (E8M0), F32 or BF16", sf.path(),
                    sname, io::dtype_name(si.dtype));
        sv = sf.to_f32(sname);
      }
      at::Tensor scales = from_floats(std::move(sv), si.shape);
      check_finite(scales, sf.path(), sname);
      auto b = f.bytes(ti.name);
      at::Tensor codes = at::empty(at::IntArrayRef(ti.shape), at::TensorOptions().dtype(at::kByte));
      if (!b.empty()) std::memcpy(codes.data_ptr<uint8_t>(), b.data(), b.size());
      return dequantize_fp8_tiles(codes, scales, 128);
    }
    throw Error(fmt::format("weights: {}: FP8 tensor '{}' has no scale tensor ('{}.scale' expected)", f.path(),
                            ti.name, base));
  }

  static void check_finite(const at::Tensor& t, const std::string& file, const std::string& name) {
    at::Tensor bad = at::logical_not(at::isfinite(t));
    if (bad.any().item<bool>()) {
      int64_t idx = bad.flatten().nonzero().select(1, 0)[0].item<int64_t>();
      throw Error(fmt::format("weights: {}: tensor '{}' has a non-finite value {} at flat index {}", file, name,
                              t.flatten()[idx].item<float>(), idx));
    }
  }

  Checkpoint& ck_;
};

}  // namespace

V4Weights load_weights(const std::string& path, const V4Config& cfg, int swa_layer, int csa_layer, int hca_layer,
                       c10::Device device) {
  cfg.validate();
  Checkpoint ck(path);
  Loader ld(ck);
  const int64_t d = cfg.head_dim, h = cfg.hidden_size;
  V4Weights w;
  const bool reference_names = ck.find("weight/main_kv.wkv.weight").has_value();
  if (reference_names) {
    w.wkv = ld.load({"weight/main_kv.wkv.weight"}, {d, h}, "main wkv");
    w.kv_norm = ld.load({"weight/main_kv.kv_norm.weight"}, {d}, "main kv_norm");
    for (auto [c, tag, ratio, width] : {std::tuple{&w.csa, "csa", cfg.csa_ratio, 2 * d},
                                        std::tuple{&w.hca, "hca", cfg.hca_ratio, d}}) {
      const std::string p = std::string("weight/compressor_") + tag + ".";
      c->wkv = ld.load({p + "wkv.weight"}, {width, h}, "compressor wkv");
      c->wgate = ld.load({p + "wgate.weight"}, {width, h}, "compressor wgate");
      c->ape = ld.load({p + "ape"}, {ratio, width}, "compressor ape");
      c->norm = ld.load({p + "norm.weight"}, {d}, "compressor norm");
    }
  } else {
    if (cfg.num_layers() > 0) {
      (void)cfg.layer_kind(swa_layer);  // range check
      KVLAB_CHECK(cfg.layer_kind(csa_layer) == LayerKind::CSA,
                  "weights: layer {} is a {} layer in the config, not CSA (compress ratio {})", csa_layer,
                  layer_kind_name(cfg.layer_kind(csa_layer)), cfg.csa_ratio);
      KVLAB_CHECK(cfg.layer_kind(hca_layer) == LayerKind::HCA,
                  "weights: layer {} is a {} layer in the config, not HCA (compress ratio {})", hca_layer,
                  layer_kind_name(cfg.layer_kind(hca_layer)), cfg.hca_ratio);
    }
    KVLAB_CHECK(swa_layer >= 0 && csa_layer >= 0 && hca_layer >= 0, "weights: layer ids must be >= 0");
    auto attn = [](int L) { return "layers." + std::to_string(L) + ".attn."; };
    w.wkv = ld.load({attn(swa_layer) + "wkv.weight"}, {d, h}, "main wkv");
    w.kv_norm = ld.load({attn(swa_layer) + "kv_norm.weight"}, {d}, "main kv_norm");
    for (auto [c, L, ratio, width] : {std::tuple{&w.csa, csa_layer, cfg.csa_ratio, 2 * d},
                                      std::tuple{&w.hca, hca_layer, cfg.hca_ratio, d}}) {
      const std::string p = attn(L) + "compressor.";
      c->wkv = ld.load({p + "wkv.weight"}, {width, h}, "compressor wkv");
      c->wgate = ld.load({p + "wgate.weight"}, {width, h}, "compressor wgate");
      c->ape = ld.load({p + "ape"}, {ratio, width}, "compressor ape");
      c->norm = ld.load({p + "norm.weight"}, {d}, "compressor norm");
    }
  }
  w.validate(cfg);
  return device.is_cpu() ? w : w.to(device);
}

std::vector<at::Tensor> load_checkpoint_tensors(const std::string& path,
                                                const std::vector<CheckpointTensorRequest>& requests) {
  Checkpoint ck(path);
  Loader ld(ck);
  std::vector<at::Tensor> out;
  out.reserve(requests.size());
  for (const auto& r : requests) {
    KVLAB_CHECK(!r.names.empty(), "weights: empty name list for {}", r.role);
    out.push_back(ld.load(r.names, r.shape, r.role.c_str()));
  }
  return out;
}

}  // namespace kvlab::model
