// Host "hf:PATH" on tiny model directories the test writes itself
// (config.json, tokenizer.json, tokenizer_config.json, safetensors single
// or sharded, a Hugging Face cache layout): the published recipe (tokens ->
// bf16 embedding rows -> seeded bf16 projection), provenance in describe(),
// and the bad-input errors (file and field named).
#include <cmath>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/hash.h"
#include "host/hf_host.h"
#include "host/host.h"
#include "host/tokenizer.h"
#include "host/tokenizer_unicode.h"
#include "io/safetensors.h"
#include "testutil/testutil.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using kvlab::host::PassageInput;

constexpr int64_t kNative = 8;
constexpr int64_t kRows = 320;
const c10::Device kCpu(c10::kCPU);

std::string byte_char(int b) {
  int n = 0;
  auto printable = [](int x) { return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF); };
  for (int x = 0; x < b; ++x)
    if (!printable(x)) ++n;
  std::string s;
  kvlab::host::unicode::append_utf8(s, printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n));
  return s;
}

// Byte-level BPE: bytes 0..255, merges "h e", "he l", "l o", " w"; <|endoftext|> = 300.
json tiny_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  const std::string G = byte_char(' ');
  std::vector<std::pair<std::string, std::string>> merges = {{"h", "e"}, {"he", "l"}, {"l", "o"}, {G, "w"}};
  json m = json::array();
  for (const auto& [a, c] : merges) {
    vocab[a + c] = static_cast<int>(vocab.size());
    m.push_back(a + " " + c);
  }
  return {{"version", "1.0"},
          {"added_tokens", json::array({{{"id", 300}, {"content", "<|endoftext|>"}, {"special", true}, {"normalized", false}}})},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"post_processor", nullptr},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
}

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

// Deterministic bf16 embedding table [rows, width].
at::Tensor table(int64_t rows, int64_t width) {
  at::Generator g = at::detail::createCPUGenerator(99);
  return at::randn({rows, width}, g, at::TensorOptions().dtype(at::kFloat)).to(at::kBFloat16);
}

void add_bf16(kvlab::io::SafetensorsWriter& w, const std::string& name, const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  w.add(name, kvlab::io::DType::BF16, {t.size(0), t.size(1)}, c.data_ptr(), static_cast<std::size_t>(c.numel()) * 2);
}

struct ModelDir {
  fs::path dir;
  at::Tensor emb;  // bf16 [kRows, width]
};

// Writes a single-file model; `config_hidden` may disagree with `width` on purpose.
ModelDir write_model(const fs::path& dir, int64_t width = kNative, int64_t config_hidden = kNative,
                     int64_t rows = kRows, bool with_name = true) {
  ModelDir m{dir, table(rows, width)};
  json cfg = {{"model_type", "qwen2"}, {"hidden_size", config_hidden}, {"vocab_size", rows}};
  if (with_name) cfg["_name_or_path"] = "tiny/qwen-test";
  write_text(dir / "config.json", cfg.dump());
  write_text(dir / "tokenizer.json", tiny_tokenizer().dump());
  write_text(dir / "tokenizer_config.json", R"({"pad_token": "<|endoftext|>", "padding_side": "right"})");
  kvlab::io::SafetensorsWriter w;
  add_bf16(w, "model.embed_tokens.weight", m.emb);
  add_bf16(w, "lm_head.weight", table(4, width));
  w.write((dir / "model.safetensors").string());
  return m;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kvlab::Error& e) {
    return e.what();
  }
  return "(no error)";
}

class HfHost : public ::testing::Test {
 protected:
  void SetUp() override { root_ = kvlab::testutil::make_temp_dir("kvlab-hf"); }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

// The expected hidden states, computed here from the table we wrote.
at::Tensor expected(const ModelDir& m, const std::string& text, int64_t seqlen, int64_t hidden, uint64_t seed) {
  auto tok = kvlab::host::Tokenizer::from_files((m.dir / "tokenizer.json").string(),
                                                (m.dir / "tokenizer_config.json").string());
  auto ids = kvlab::host::encode_fixed_length(tok, text, seqlen, 8).ids;
  at::Tensor idx = at::empty({seqlen}, at::TensorOptions().dtype(at::kLong));
  for (int64_t i = 0; i < seqlen; ++i) idx[i] = ids[static_cast<std::size_t>(i)];
  at::Tensor x = m.emb.index_select(0, idx);  // bf16 rows
  if (hidden == m.emb.size(1)) return x.reshape({1, seqlen, hidden});
  at::Generator g = at::detail::createCPUGenerator(seed);
  at::Tensor P = at::randn({hidden, m.emb.size(1)}, g, at::TensorOptions().dtype(at::kFloat)).to(at::kBFloat16) *
                 (1.0 / std::sqrt(static_cast<double>(m.emb.size(1))));
  return at::matmul(x.to(at::kFloat), P.to(at::kFloat).t()).to(at::kBFloat16).reshape({1, seqlen, hidden});
}

TEST_F(HfHost, PublishedRecipeTokensEmbeddingsProjection) {
  ModelDir m = write_model(root_ / "tiny");
  auto host = kvlab::host::make_hf_host("hf:" + m.dir.string());
  EXPECT_EQ(host->kind(), "hf");
  const std::string text = "hello world, hello! ";
  at::Tensor h = host->hidden(PassageInput{"p0", text, 0}, 256, 16, kCpu);
  ASSERT_EQ(h.sizes(), (at::IntArrayRef{1, 256, 16}));
  EXPECT_EQ(h.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(h, expected(m, text, 256, 16, kvlab::host::kHfDefaultProjectionSeed)));
  // The text repeated 8 times is shorter than 256 tokens: the tail is the
  // pad token's projected embedding, identical in every padded row.
  EXPECT_TRUE(at::equal(h[0][255], h[0][200]));
  EXPECT_FALSE(at::equal(h[0][0], h[0][255]));
  // Same passage, new host instance: identical; another projection seed: different.
  auto again = kvlab::host::make_host("hf:" + m.dir.string());
  EXPECT_TRUE(at::equal(again->hidden(PassageInput{"p0", text, 0}, 256, 16, kCpu), h));
  auto other = kvlab::host::make_hf_host("hf:" + m.dir.string() + ",proj_seed=7");
  at::Tensor h7 = other->hidden(PassageInput{"p0", text, 0}, 256, 16, kCpu);
  EXPECT_FALSE(at::equal(h7, h));
  EXPECT_TRUE(at::equal(h7, expected(m, text, 256, 16, 7)));
}

TEST_F(HfHost, ProjectionHasVarianceOneOverNative) {
  // P ~ N(0, 1/native): with native = 8 and 4096 output rows, the projected
  // pad embedding has variance ~ ||e||^2 / 8 per coordinate.
  ModelDir m = write_model(root_ / "tiny");
  auto host = kvlab::host::make_hf_host("hf:" + m.dir.string());
  at::Tensor h = host->hidden(PassageInput{"p", "he", 0}, 64, 4096, kCpu).to(at::kFloat);
  at::Tensor e = m.emb[300].to(at::kFloat);
  const double want = e.pow(2).sum().item<double>() / 8.0;
  const double got = h[0][63].pow(2).mean().item<double>();
  EXPECT_NEAR(got / want, 1.0, 0.1) << "projection variance off: got " << got << " want " << want;
}

TEST_F(HfHost, NoProjectionWhenWidthsMatch) {
  ModelDir m = write_model(root_ / "tiny");
  auto host = kvlab::host::make_hf_host("hf:" + m.dir.string());
  at::Tensor h = host->hidden(PassageInput{"p", "hello", 0}, 32, kNative, kCpu);
  EXPECT_TRUE(at::equal(h, expected(m, "hello", 32, kNative, 0)));
  // First token of "hello" is the merged "hel" (id 257), then "lo" (id 258).
  EXPECT_TRUE(at::equal(h[0][0], m.emb[257]));
  EXPECT_TRUE(at::equal(h[0][1], m.emb[258]));
}

TEST_F(HfHost, ShardedWithIndexAndCacheLayout) {
  ModelDir single = write_model(root_ / "single");
  // The same model as a cache repository: models--Org--Tiny/snapshots/<rev>, sharded.
  const fs::path repo = root_ / "models--Org--Tiny";
  const fs::path snap = repo / "snapshots" / "0123abc";
  write_text(repo / "refs" / "main", "0123abc\n");
  write_text(snap / "config.json", json({{"model_type", "qwen2"}, {"hidden_size", kNative}}).dump());
  fs::copy_file(single.dir / "tokenizer.json", snap / "tokenizer.json");
  fs::copy_file(single.dir / "tokenizer_config.json", snap / "tokenizer_config.json");
  kvlab::io::SafetensorsWriter s1, s2;
  add_bf16(s1, "model.layers.0.mlp.up_proj.weight", table(4, kNative));
  add_bf16(s2, "model.embed_tokens.weight", single.emb);
  s1.write((snap / "model-00001-of-00002.safetensors").string());
  s2.write((snap / "model-00002-of-00002.safetensors").string());
  write_text(snap / "model.safetensors.index.json",
             json({{"metadata", {{"total_size", 0}}},
                   {"weight_map",
                    {{"model.layers.0.mlp.up_proj.weight", "model-00001-of-00002.safetensors"},
                     {"model.embed_tokens.weight", "model-00002-of-00002.safetensors"}}}})
                 .dump());
  auto a = kvlab::host::make_hf_host("hf:" + single.dir.string());
  auto b = kvlab::host::make_hf_host("hf:" + repo.string());
  const PassageInput p{"p", "the quick brown fox 123 😀 ", 0};
  EXPECT_TRUE(at::equal(a->hidden(p, 128, 16, kCpu), b->hidden(p, 128, 16, kCpu)));
  json d = b->describe();
  EXPECT_EQ(d["model_name"], "Org/Tiny");
  EXPECT_EQ(d["embedding"]["file"], "model-00002-of-00002.safetensors");
  EXPECT_EQ(d["embedding"]["file_sha256"], kvlab::sha256_file((snap / "model-00002-of-00002.safetensors").string()));
}

TEST_F(HfHost, DescribeRecordsIdentityAndProjection) {
  ModelDir m = write_model(root_ / "tiny");
  auto host = kvlab::host::make_hf_host("hf:" + m.dir.string() + ",proj_seed=11,repeat=4");
  json d = host->describe();
  EXPECT_EQ(d["kind"], "hf");
  EXPECT_EQ(d["model_name"], "tiny/qwen-test");
  EXPECT_EQ(d["native_hidden"], kNative);
  EXPECT_EQ(d["repeat"], 4);
  EXPECT_EQ(d["projection"]["seed"], 11);
  EXPECT_EQ(d["embedding"]["tensor"], "model.embed_tokens.weight");
  EXPECT_EQ(d["embedding"]["dtype"], "BF16");
  EXPECT_EQ(d["embedding"]["file_sha256"], kvlab::sha256_file((m.dir / "model.safetensors").string()));
  EXPECT_EQ(d["tokenizer"]["file_sha256"], kvlab::sha256_file((m.dir / "tokenizer.json").string()));
  EXPECT_EQ(d["tokenizer"]["config_sha256"], kvlab::sha256_file((m.dir / "tokenizer_config.json").string()));
  EXPECT_EQ(d["tokenizer"]["pad_id"], 300);
  EXPECT_EQ(d["tokenizer"]["kind"], "byte-level-bpe");
  EXPECT_EQ(d["config_sha256"], kvlab::sha256_file((m.dir / "config.json").string()));
  // repeat=4 really changes the token stream.
  auto r8 = kvlab::host::make_hf_host("hf:" + m.dir.string() + ",proj_seed=11");
  EXPECT_FALSE(at::equal(host->hidden(PassageInput{"p", "hello world", 0}, 64, 16, kCpu),
                         r8->hidden(PassageInput{"p", "hello world", 0}, 64, 16, kCpu)));
}

TEST_F(HfHost, PadTokenOptionForTokenizersWithoutOne) {
  ModelDir m = write_model(root_ / "nopad");
  write_text(m.dir / "tokenizer_config.json", "{}");  // like Llama 3: no pad_token
  const PassageInput p{"p", "hello world", 0};
  auto plain = kvlab::host::make_hf_host("hf:" + m.dir.string());
  std::string e = error_of([&] { plain->hidden(p, 128, 16, kCpu); });
  EXPECT_NE(e.find("no pad token"), std::string::npos) << e;
  auto padded = kvlab::host::make_hf_host("hf:" + m.dir.string() + ",pad_token=<|endoftext|>");
  ModelDir ref = write_model(root_ / "withpad");  // same table, pad_token in tokenizer_config.json
  auto with_cfg = kvlab::host::make_hf_host("hf:" + ref.dir.string());
  EXPECT_TRUE(at::equal(padded->hidden(p, 128, 16, kCpu), with_cfg->hidden(p, 128, 16, kCpu)));
  EXPECT_EQ(padded->describe()["tokenizer"]["pad_id"], 300);
  EXPECT_EQ(padded->describe()["tokenizer"]["pad_source"], "spec pad_token");
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string() + ",pad_token=<nope>"); });
  EXPECT_NE(e.find("pad_token '<nope>' is not a token"), std::string::npos) << e;
}

TEST_F(HfHost, BadInputNamesFileAndField) {
  // Missing directory / config.json / tokenizer.json.
  std::string e = error_of([&] { kvlab::host::make_hf_host("hf:" + (root_ / "nope").string()); });
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
  ModelDir m = write_model(root_ / "a");
  fs::remove(m.dir / "config.json");
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string()); });
  EXPECT_NE(e.find((m.dir / "config.json").string() + ": config.json not found"), std::string::npos) << e;
  m = write_model(root_ / "b");
  fs::remove(m.dir / "tokenizer.json");
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string()); });
  EXPECT_NE(e.find("tokenizer.json not found"), std::string::npos) << e;
  // Embedding width disagreeing with config.json.
  m = write_model(root_ / "c", /*width=*/6, /*config_hidden=*/8);
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string()); });
  EXPECT_NE(e.find("model.safetensors: embedding tensor 'model.embed_tokens.weight' has width 6"), std::string::npos) << e;
  EXPECT_NE(e.find("config.json field 'hidden_size' says 8"), std::string::npos) << e;
  // Unsupported tokenizer kind.
  m = write_model(root_ / "d");
  json t = tiny_tokenizer();
  t["model"]["type"] = "WordPiece";
  write_text(m.dir / "tokenizer.json", t.dump());
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string()); });
  EXPECT_NE(e.find("not supported: tokenizer model WordPiece"), std::string::npos) << e;
  // A passage that tokenizes to zero tokens (a WhitespaceSplit tokenizer on blanks), and one without text.
  m = write_model(root_ / "e");
  t = tiny_tokenizer();
  t["pre_tokenizer"] = {{"type", "WhitespaceSplit"}};
  write_text(m.dir / "tokenizer.json", t.dump());
  auto host = kvlab::host::make_hf_host("hf:" + m.dir.string());
  e = error_of([&] { host->hidden(PassageInput{"blank", " \n\t ", 0}, 16, 16, kCpu); });
  EXPECT_NE(e.find("passage 'blank'"), std::string::npos) << e;
  EXPECT_NE(e.find("zero tokens"), std::string::npos) << e;
  EXPECT_NE(e.find("tokenizer.json"), std::string::npos) << e;
  e = error_of([&] { host->hidden(PassageInput{"seeded", "", 5}, 16, 16, kCpu); });
  EXPECT_NE(e.find("has no text"), std::string::npos) << e;
  // Token ids beyond the embedding table.
  m = write_model(root_ / "f", kNative, kNative, /*rows=*/200);
  host = kvlab::host::make_hf_host("hf:" + m.dir.string());
  e = error_of([&] { host->hidden(PassageInput{"p", "hello", 0}, 16, 16, kCpu); });
  EXPECT_NE(e.find("token id 257"), std::string::npos) << e;
  EXPECT_NE(e.find("200 rows"), std::string::npos) << e;
  // Index naming a missing shard; no embedding tensor at all.
  m = write_model(root_ / "g");
  write_text(m.dir / "model.safetensors.index.json",
             R"({"weight_map": {"model.embed_tokens.weight": "model-00009-of-00009.safetensors"}})");
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string()); });
  EXPECT_NE(e.find("field 'weight_map.model.embed_tokens.weight' names shard"), std::string::npos) << e;
  m = write_model(root_ / "h");
  kvlab::io::SafetensorsWriter w;
  add_bf16(w, "lm_head.weight", table(4, kNative));
  w.write((m.dir / "model.safetensors").string());
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string()); });
  EXPECT_NE(e.find("no embedding tensor in model.safetensors"), std::string::npos) << e;
  // Spec options.
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string() + ",seed=1"); });
  EXPECT_NE(e.find("unknown option 'seed'"), std::string::npos) << e;
  e = error_of([&] { kvlab::host::make_hf_host("hf:" + m.dir.string() + ",repeat=0"); });
  EXPECT_NE(e.find("repeat must be"), std::string::npos) << e;
}

}  // namespace
