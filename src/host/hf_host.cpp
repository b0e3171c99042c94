// Host "hf:PATH": Hugging Face token embeddings + fixed random projection.
// See hf_host.h for the recipe and what is recorded.
#include "host/hf_host.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/version.h>

#include "common/error.h"
#include "common/hash.h"
#include "host/tokenizer.h"
#include "io/safetensors.h"

namespace kvlab::host {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string read_text(const fs::path& p, const char* what) {
  std::error_code ec;
  KVLAB_CHECK(fs::is_regular_file(p, ec), "{}: {} not found", p.string(), what);
  std::ifstream in(p, std::ios::binary);
  KVLAB_CHECK(static_cast<bool>(in), "{}: cannot open {}", p.string(), what);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const fs::path& p, const char* what) {
  std::string text = read_text(p, what);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", p.string(), e.what()));
  }
}

// A cache repository folder (models--Org--Name) resolves to the snapshot
// named by refs/main; a snapshot or plain model folder is used as is.
fs::path resolve_model_dir(const fs::path& given) {
  std::error_code ec;
  KVLAB_CHECK(fs::is_directory(given, ec), "hf host: model directory '{}' does not exist (or is not a directory)",
              given.string());
  if (fs::exists(given / "config.json", ec)) return given;
  if (fs::is_regular_file(given / "refs" / "main", ec) && fs::is_directory(given / "snapshots", ec)) {
    std::string rev = read_text(given / "refs" / "main", "refs/main");
    while (!rev.empty() && std::isspace(static_cast<unsigned char>(rev.back()))) rev.pop_back();
    fs::path snap = given / "snapshots" / rev;
    KVLAB_CHECK(fs::is_directory(snap, ec), "{}: refs/main names snapshot '{}', which is missing under snapshots/",
                given.string(), rev);
    return snap;
  }
  return given;  // the missing config.json is reported by the caller
}

// "Org/Name" from .../models--Org--Name/snapshots/<rev>, else "".
std::string name_from_cache_path(const fs::path& dir) {
  for (fs::path p = dir; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    std::string base = p.filename().string();
    if (base.rfind("models--", 0) == 0) {
      std::string name = base.substr(8);
      auto pos = name.find("--");
      if (pos != std::string::npos) name = name.substr(0, pos) + "/" + name.substr(pos + 2);
      return name;
    }
  }
  return "";
}

// Embedding tensor names by model family, most common first.
const std::vector<std::string>& embedding_candidates() {
  static const std::vector<std::string> names = {
      "model.embed_tokens.weight",                      // Llama, Qwen2/3, Mistral, Gemma, DeepSeek, GLM-4 (hf)
      "model.language_model.embed_tokens.weight",       // Gemma 3 multimodal (transformers >= 4.52)
      "language_model.model.embed_tokens.weight",       // Gemma 3 / Llava-style multimodal
      "transformer.embedding.word_embeddings.weight",   // ChatGLM / GLM-4 (remote code)
      "transformer.wte.weight",                         // GPT-2 (prefixed), Qwen (v1)
      "wte.weight",                                     // GPT-2
      "gpt_neox.embed_in.weight",                       // GPT-NeoX / Pythia
      "model.decoder.embed_tokens.weight",              // OPT
      "embed_tokens.weight",
  };
  return names;
}

int64_t config_hidden_size(const json& cfg, const fs::path& path) {
  for (const char* k : {"hidden_size", "n_embd", "d_model"}) {
    auto it = cfg.find(k);
    if (it != cfg.end() && !it->is_null()) {
      KVLAB_CHECK(it->is_number_integer() && it->get<int64_t>() > 0, "{}: field '{}' must be a positive integer, got {}",
                  path.string(), k, it->dump());
      return it->get<int64_t>();
    }
  }
  auto tc = cfg.find("text_config");
  if (tc != cfg.end() && tc->is_object()) {
    auto it = tc->find("hidden_size");
    if (it != tc->end()) {
      KVLAB_CHECK(it->is_number_integer() && it->get<int64_t>() > 0,
                  "{}: field 'text_config.hidden_size' must be a positive integer, got {}", path.string(), it->dump());
      return it->get<int64_t>();
    }
  }
  throw Error(fmt::format("{}: field 'hidden_size' missing (also looked for n_embd, d_model, text_config.hidden_size)",
                          path.string()));
}

struct Options {
  fs::path path;
  uint64_t proj_seed = kHfDefaultProjectionSeed;
  int repeat = 8;
  std::string pad_token;  // overrides the tokenizer's pad token when set
};

Options parse_spec(const std::string& spec) {
  KVLAB_CHECK(spec.rfind("hf:", 0) == 0 && spec.size() > 3, "hf host: spec '{}' must be 'hf:PATH[,proj_seed=N][,repeat=R]'",
              spec);
  Options o;
  std::vector<std::string> parts;
  std::size_t pos = 3;
  while (true) {
    std::size_t c = spec.find(',', pos);
    parts.push_back(spec.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  KVLAB_CHECK(!parts[0].empty(), "hf host spec '{}': empty PATH", spec);
  o.path = parts[0];
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string& kv = parts[i];
    auto eq = kv.find('=');
    KVLAB_CHECK(eq != std::string::npos && eq > 0, "hf host spec '{}': option '{}' is not key=value", spec, kv);
    const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    const bool digits = !v.empty() && v.size() <= 19 && v.find_first_not_of("0123456789") == std::string::npos;
    if (k == "proj_seed") {
      KVLAB_CHECK(digits, "hf host spec '{}': proj_seed must be a non-negative integer, got '{}'", spec, v);
      o.proj_seed = std::stoull(v);
    } else if (k == "repeat") {
      KVLAB_CHECK(digits && std::stoull(v) >= 1 && std::stoull(v) <= 1024,
                  "hf host spec '{}': repeat must be an integer in [1, 1024], got '{}'", spec, v);
      o.repeat = static_cast<int>(std::stoull(v));
    } else if (k == "pad_token") {
      KVLAB_CHECK(!v.empty(), "hf host spec '{}': pad_token must name a token, got ''", spec);
      o.pad_token = v;
    } else {
      throw Error(fmt::format("hf host spec '{}': unknown option '{}' (known: proj_seed, repeat, pad_token)", spec, k));
    }
  }
  return o;
}

class HfHost final : public HiddenSource {
 public:
  HfHost(std::string spec, Options opt) : spec_(std::move(spec)), opt_(std::move(opt)) {
    dir_ = resolve_model_dir(opt_.path);
    config_path_ = dir_ / "config.json";
    const json cfg = read_json(config_path_, "config.json");
    KVLAB_CHECK(cfg.is_object(), "{}: expected a JSON object", config_path_.string());
    native_ = config_hidden_size(cfg, config_path_);
    model_type_ = cfg.value("model_type", std::string());
    if (auto it = cfg.find("_name_or_path"); it != cfg.end() && it->is_string()) model_name_ = it->get<std::string>();
    if (model_name_.empty()) model_name_ = name_from_cache_path(dir_);
    if (model_name_.empty()) model_name_ = fs::absolute(dir_).lexically_normal().filename().string();
    if (auto it = cfg.find("vocab_size"); it != cfg.end() && it->is_number_integer()) config_vocab_ = it->get<int64_t>();

    tokenizer_path_ = dir_ / "tokenizer.json";
    std::error_code ec;
    KVLAB_CHECK(fs::is_regular_file(tokenizer_path_, ec),
                "{}: tokenizer.json not found (hf host needs the fast-tokenizer file; tokenizer.model alone is not "
                "supported)",
                tokenizer_path_.string());
    const fs::path tc = dir_ / "tokenizer_config.json";
    if (fs::is_regular_file(tc, ec)) tokenizer_config_path_ = tc;
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_files(
        tokenizer_path_.string(), tokenizer_config_path_.empty() ? std::string() : tokenizer_config_path_.string()));

    if (!opt_.pad_token.empty()) {
      pad_override_ = tokenizer_->token_to_id(opt_.pad_token);
      KVLAB_CHECK(pad_override_.has_value(), "hf host spec '{}': pad_token '{}' is not a token of {}", spec_,
                  opt_.pad_token, tokenizer_path_.string());
    }
    locate_embedding();
    file_ = std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(shard_path_.string()));
    const io::TensorInfo& ti = file_->info(embed_name_);
    KVLAB_CHECK(ti.shape.size() == 2, "{}: embedding tensor '{}' has shape {}; expected [vocab, hidden]",
                shard_path_.string(), embed_name_, io::shape_str(ti.shape));
    KVLAB_CHECK(ti.dtype == io::DType::BF16 || ti.dtype == io::DType::F16 || ti.dtype == io::DType::F32,
                "{}: embedding tensor '{}' has dtype {}; expected BF16, F16 or F32", shard_path_.string(), embed_name_,
                io::dtype_name(ti.dtype));
    rows_ = ti.shape[0];
    KVLAB_CHECK(ti.shape[1] == native_,
                "{}: embedding tensor '{}' has width {} (shape {}), but {} field 'hidden_size' says {}",
                shard_path_.string(), embed_name_, ti.shape[1], io::shape_str(ti.shape), config_path_.string(), native_);
    dtype_ = ti.dtype;
  }

  std::string kind() const override { return "hf"; }

  json describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!hashes_done_) {
      shard_sha_ = sha256_file(shard_path_.string());
      tokenizer_sha_ = sha256_file(tokenizer_path_.string());
      config_sha_ = sha256_file(config_path_.string());
      if (!tokenizer_config_path_.empty()) tokenizer_config_sha_ = sha256_file(tokenizer_config_path_.string());
      hashes_done_ = true;
    }
    json j = {
        {"kind", "hf"},
        {"spec", spec_},
        {"model_name", model_name_},
        {"model_type", model_type_},
        {"model_dir", fs::absolute(dir_).lexically_normal().string()},
        {"config_sha256", config_sha_},
        {"native_hidden", native_},
        {"config_vocab_size", config_vocab_ >= 0 ? json(config_vocab_) : json(nullptr)},
        {"embedding",
         {{"tensor", embed_name_},
          {"file", shard_path_.filename().string()},
          {"file_sha256", shard_sha_},
          {"dtype", std::string(io::dtype_name(dtype_))},
          {"rows", rows_},
          {"cast", "bf16"}}},
        {"tokenizer",
         {{"kind", tokenizer_->kind()},
          {"file_sha256", tokenizer_sha_},
          {"config_sha256", tokenizer_config_path_.empty() ? json(nullptr) : json(tokenizer_config_sha_)},
          {"pad_id", pad_override_ ? json(*pad_override_) : tokenizer_->pad_id() ? json(*tokenizer_->pad_id()) : json(nullptr)},
          {"pad_source", pad_override_ ? "spec pad_token" : "tokenizer files"},
          {"padding_side", tokenizer_->pad_left() ? "left" : "right"},
          {"truncation_side", tokenizer_->truncate_left() ? "left" : "right"},
          {"special_tokens_added", tokenizer_->num_special_tokens_to_add()}}},
        {"recipe", fmt::format("text repeated {} times, tokenized with special tokens, truncated/padded to seqlen",
                               opt_.repeat)},
        {"repeat", opt_.repeat},
        {"projection",
         {{"seed", opt_.proj_seed},
          {"applied", "when native_hidden != hidden_size"},
          {"matrix", "P[hidden_size, native] = bf16(randn float32, CPU generator) * native^-0.5 in bf16"},
          {"generator", fmt::format("libtorch {} CPU (mt19937) randn", TORCH_VERSION)},
          {"product", "x P^T accumulated in float32, rounded to bf16"}}},
        {"passage_key", "sha256(text)"},
    };
    return j;
  }

  at::Tensor hidden(const PassageInput& p, int64_t seqlen, int64_t hidden_size, c10::Device device) override {
    KVLAB_CHECK(seqlen >= 1, "hf host: seqlen must be >= 1, got {}", seqlen);
    KVLAB_CHECK(hidden_size >= 1, "hf host: hidden size must be >= 1, got {}", hidden_size);
    KVLAB_CHECK(!p.text.empty(), "hf host: passage '{}' has no text (the hf host tokenizes text; seeded-only "
                                 "passages need the synthetic host)", p.name);
    FixedLengthIds ids;
    try {
      ids = encode_fixed_length(*tokenizer_, p.text, seqlen, opt_.repeat, pad_override_);
    } catch (const Error& e) {
      throw Error(fmt::format("hf host: passage '{}': {}", p.name, e.what()));
    }
    at::Tensor x = gather(ids.ids, p.name);  // [seqlen, native] bf16, CPU
    at::Tensor out;
    if (native_ == hidden_size) {
      out = x;
    } else {
      const at::Tensor& P = projection(hidden_size);  // [hidden_size, native] bf16, CPU
      at::Tensor xf = x.to(device).to(at::kFloat);
      at::Tensor pf = P.to(device).to(at::kFloat);
      out = at::matmul(xf, pf.t()).to(at::kBFloat16);
    }
    return out.to(device).reshape({1, seqlen, hidden_size}).contiguous();
  }

 private:
  void locate_embedding() {
    std::error_code ec;
    const fs::path index = dir_ / "model.safetensors.index.json";
    const auto& cands = embedding_candidates();
    if (fs::is_regular_file(index, ec)) {
      const json idx = read_json(index, "model.safetensors.index.json");
      auto wm = idx.find("weight_map");
      KVLAB_CHECK(wm != idx.end() && wm->is_object(), "{}: field 'weight_map' missing or not an object",
                  index.string());
      for (const auto& c : cands) {
        auto it = wm->find(c);
        if (it == wm->end()) continue;
        KVLAB_CHECK(it->is_string(), "{}: field 'weight_map.{}' must be a file name", index.string(), c);
        embed_name_ = c;
        shard_path_ = dir_ / it->get<std::string>();
        KVLAB_CHECK(fs::is_regular_file(shard_path_, ec), "{}: field 'weight_map.{}' names shard '{}', which is missing",
                    index.string(), c, shard_path_.string());
        return;
      }
      throw Error(fmt::format("{}: no embedding tensor in 'weight_map' (looked for {})", index.string(),
                              fmt::join(cands, ", ")));
    }
    std::vector<fs::path> files;
    if (fs::is_regular_file(dir_ / "model.safetensors", ec)) {
      files.push_back(dir_ / "model.safetensors");
    } else {
      for (const auto& e : fs::directory_iterator(dir_, ec)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("model", 0) == 0 && n.size() > 12 && n.substr(n.size() - 12) == ".safetensors")
          files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
    }
    KVLAB_CHECK(!files.empty(),
                "{}: no model.safetensors, model*.safetensors or model.safetensors.index.json (PyTorch .bin "
                "checkpoints are not supported)",
                dir_.string());
    for (const auto& f : files) {
      auto st = io::SafetensorsFile::open(f.string());
      for (const auto& c : cands) {
        if (st.has(c)) {
          embed_name_ = c;
          shard_path_ = f;
          return;
        }
      }
    }
    throw Error(fmt::format("{}: no embedding tensor in {} (looked for {})", dir_.string(),
                            files.size() == 1 ? files[0].filename().string() : fmt::format("{} files", files.size()),
                            fmt::join(cands, ", ")));
  }

  // Rows of the embedding table for `ids`, as bf16 [n, native].
  at::Tensor gather(const std::vector<int32_t>& ids, const std::string& passage) const {
    const auto bytes = file_->bytes(embed_name_);
    const std::size_t es = io::dtype_size(dtype_);
    const std::size_t row_bytes = static_cast<std::size_t>(native_) * es;
    const auto n = static_cast<int64_t>(ids.size());
    at::ScalarType st = dtype_ == io::DType::BF16 ? at::kBFloat16 : dtype_ == io::DType::F16 ? at::kHalf : at::kFloat;
    at::Tensor x = at::empty({n, native_}, at::TensorOptions().dtype(st));
    auto* dst = static_cast<std::byte*>(x.data_ptr());
    for (int64_t t = 0; t < n; ++t) {
      const int32_t id = ids[static_cast<std::size_t>(t)];
      KVLAB_CHECK(id >= 0 && id < rows_,
                  "hf host: passage '{}': token id {} ({}) is outside the embedding table '{}' of {} ({} rows)", passage,
                  id, tokenizer_path_.string(), embed_name_, shard_path_.string(), rows_);
      std::memcpy(dst + static_cast<std::size_t>(t) * row_bytes, bytes.data() + static_cast<std::size_t>(id) * row_bytes,
                  row_bytes);
    }
    return st == at::kBFloat16 ? x : x.to(at::kBFloat16);
  }

  const at::Tensor& projection(int64_t hidden_size) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = proj_.find(hidden_size);
    if (it != proj_.end()) return it->second;
    at::Generator gen = at::detail::createCPUGenerator(opt_.proj_seed);
    at::Tensor r = at::randn({hidden_size, native_}, gen, at::TensorOptions().dtype(at::kFloat));
    at::Tensor P = r.to(at::kBFloat16) * (1.0 / std::sqrt(static_cast<double>(native_)));
    KVLAB_ASSERT(P.scalar_type() == at::kBFloat16, "projection must stay bf16");
    return proj_.emplace(hidden_size, std::move(P)).first->second;
  }

  std::string spec_;
  Options opt_;
  fs::path dir_, config_path_, tokenizer_path_, tokenizer_config_path_, shard_path_;
  std::string model_name_, model_type_, embed_name_;
  int64_t native_ = 0, rows_ = 0, config_vocab_ = -1;
  io::DType dtype_ = io::DType::BF16;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::optional<int32_t> pad_override_;
  std::unique_ptr<io::SafetensorsFile> file_;
  mutable std::mutex mu_;
  mutable bool hashes_done_ = false;
  mutable std::string shard_sha_, tokenizer_sha_, config_sha_, tokenizer_config_sha_;
  std::map<int64_t, at::Tensor> proj_;
};

}  // namespace

std::unique_ptr<HiddenSource> make_hf_host(const std::string& spec) {
  return std::make_unique<HfHost>(spec, parse_spec(spec));
}

}  // namespace kvlab::host
