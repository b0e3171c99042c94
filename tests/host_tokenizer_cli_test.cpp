// `kvlab tokenize` from the outside: ids per text (lines and --json), token
// strings, standard input, special tokens on/off, and the exit codes and
// messages for bad input. The expected ids come from the library
// (host_tokenizer_test checks those by hand).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "host/tokenizer.h"
#include "host/tokenizer_unicode.h"
#include "testutil/testutil.h"

namespace {

namespace fs = std::filesystem;
namespace tu = kvlab::testutil;
using json = nlohmann::json;

std::string byte_char(int b) {
  int n = 0;
  auto printable = [](int x) { return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF); };
  for (int x = 0; x < b; ++x)
    if (!printable(x)) ++n;
  std::string s;
  kvlab::host::unicode::append_utf8(s, printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n));
  return s;
}

class TokenizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(tu::kvlab_binary())) << "kvlab binary not found at " << tu::kvlab_binary()
                                                << " (build the kvlab target first)";
    dir_ = tu::make_temp_dir("kvlab-tokcli");
    json vocab = json::object();
    for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
    vocab["he"] = 256;
    vocab["hel"] = 257;
    vocab["lo"] = 258;
    json tj = {{"added_tokens", json::array({{{"id", 300}, {"content", "<s>"}, {"special", true}}})},
               {"normalizer", nullptr},
               {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
               {"post_processor",
                {{"type", "TemplateProcessing"},
                 {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                         {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                 {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}}}}}},
               {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h e", "he l", "l o"}}}}};
    path_ = dir_ + "/tokenizer.json";
    std::ofstream(path_) << tj.dump();
  }
  void TearDown() override { fs::remove_all(dir_); }

  int kvlab(const std::string& args, std::string* out) {
    return tu::run_command(tu::kvlab_binary() + " tokenize " + args, out);
  }
  std::string dir_, path_;
};

TEST_F(TokenizeCli, PrintsIdsPerTextAndJson) {
  std::string out;
  ASSERT_EQ(kvlab("--tokenizer " + path_ + " 'hello' 'hello world'", &out), 0) << out;
  // BOS 300, "hel" 257, "lo" 258; then " world" byte by byte.
  EXPECT_EQ(out, "300 257 258\n300 257 258 32 119 111 114 108 100\n");
  ASSERT_EQ(kvlab("--tokenizer " + path_ + " --json --no-special 'hello' ''", &out), 0) << out;
  EXPECT_EQ(json::parse(out), json::parse("[[257, 258], []]"));
  auto tok = kvlab::host::Tokenizer::from_files(path_);
  ASSERT_EQ(kvlab("--tokenizer " + path_ + " --json 'h\xC3\xA9llo <s> \xF0\x9F\x98\x80'", &out), 0) << out;
  EXPECT_EQ(json::parse(out)[0].get<std::vector<int32_t>>(), tok.encode("h\xC3\xA9llo <s> \xF0\x9F\x98\x80"));
  ASSERT_EQ(kvlab("--tokenizer " + path_ + " --json --tokens 'hello'", &out), 0) << out;
  EXPECT_EQ(json::parse(out), json::parse(R"([["<s>", "hel", "lo"]])"));
  ASSERT_EQ(tu::run_command("printf 'lo lo' | " + tu::kvlab_binary() + " tokenize --no-special --tokenizer " + path_ + " -",
                            &out),
            0)
      << out;
  EXPECT_EQ(out, "258 32 258\n");  // "lo", then " lo" = Ġ + lo
}

TEST_F(TokenizeCli, BadInputExitCodes) {
  std::string out;
  EXPECT_EQ(kvlab("'hello'", &out), 2) << out;  // no --tokenizer
  EXPECT_NE(out.find("--tokenizer"), std::string::npos) << out;
  EXPECT_EQ(kvlab("--tokenizer " + path_, &out), 2) << out;  // no text
  EXPECT_EQ(kvlab("--tokenizer " + dir_ + "/missing.json x", &out), 1) << out;
  EXPECT_NE(out.find(dir_ + "/missing.json"), std::string::npos) << out;
  std::ofstream(dir_ + "/unigram.json") << R"({"model": {"type": "Unigram", "vocab": []}})";
  EXPECT_EQ(kvlab("--tokenizer " + dir_ + "/unigram.json x", &out), 1) << out;
  EXPECT_NE(out.find("not supported: tokenizer model Unigram"), std::string::npos) << out;
  EXPECT_EQ(kvlab("--tokenizer " + path_ + " \"$(printf 'a\\377')\"", &out), 1) << out;
  EXPECT_NE(out.find("not valid UTF-8"), std::string::npos) << out;
}

}  // namespace
