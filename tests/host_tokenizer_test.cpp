// Unit tests of the tokenizer.json tokenizer on tiny hand-made files whose
// outputs can be checked by hand: byte-to-unicode mapping, merge ranks,
// added tokens, normalizers, pre-tokenizer split behaviours, Metaspace,
// byte fallback / unk, post-processor templates, the study's fixed-length
// recipe, and every bad-input error (file and field named).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "host/tokenizer.h"
#include "host/tokenizer_unicode.h"
#include "testutil/testutil.h"

namespace {

using json = nlohmann::json;
using kvlab::host::Tokenizer;
using Ids = std::vector<int32_t>;

// GPT-2's byte-to-unicode alphabet, rebuilt independently (Radford et al.
// 2019, encoder.py bytes_to_unicode) for the expectations.
std::string byte_char(int b) {
  int n = 0;
  auto printable = [](int x) { return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF); };
  for (int x = 0; x < b; ++x)
    if (!printable(x)) ++n;
  char32_t c = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n);
  std::string s;
  kvlab::host::unicode::append_utf8(s, c);
  return s;
}

// A byte-level BPE tokenizer.json with all 256 byte symbols (ids 0..255 in
// byte order) plus `extra` merged tokens.
json byte_level(const std::vector<std::pair<std::string, std::string>>& merges, json pre = nullptr) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  json m = json::array();
  for (const auto& [a, c] : merges) {
    if (!vocab.contains(a + c)) vocab[a + c] = static_cast<int>(vocab.size());
    m.push_back(a + " " + c);
  }
  if (pre.is_null()) pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  return {{"version", "1.0"},     {"added_tokens", json::array()}, {"normalizer", nullptr},
          {"pre_tokenizer", pre}, {"post_processor", nullptr},      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
}

Tokenizer load(const json& j, const std::string& cfg = "") { return Tokenizer::from_json_text(j.dump(), "test.json", cfg); }

int32_t id_of(const Tokenizer& t, const std::string& s) {
  auto id = t.token_to_id(s);
  EXPECT_TRUE(id.has_value()) << s;
  return id.value_or(-1);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kvlab::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TokenizerUnicode, Utf8Validation) {
  using kvlab::host::unicode::invalid_utf8_offset;
  EXPECT_EQ(invalid_utf8_offset("plain"), std::string_view::npos);
  EXPECT_EQ(invalid_utf8_offset("caf\xC3\xA9 \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(invalid_utf8_offset("ab\xC3"), 2u);             // truncated
  EXPECT_EQ(invalid_utf8_offset("a\xC0\xAF"), 1u);          // overlong
  EXPECT_EQ(invalid_utf8_offset("a\xED\xA0\x80"), 1u);      // surrogate
  EXPECT_EQ(invalid_utf8_offset("\xF4\x90\x80\x80"), 0u);   // > U+10FFFF
  EXPECT_EQ(invalid_utf8_offset("ok\x80"), 2u);             // stray continuation
}

TEST(TokenizerUnicode, OnigurumaWhitespaceIsWhiteSpaceProperty) {
  // Oniguruma's \s includes U+0085 (NEL) and excludes U+FEFF; so must ours.
  kvlab::host::unicode::Regex re(R"(\s+)", "test");
  auto m = re.find_all("a\xC2\x85" "b\xEF\xBB\xBF" "c");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], std::make_pair(std::size_t{1}, std::size_t{3}));
  kvlab::host::unicode::Regex cls(R"([^\s\p{L}]+)", "test");
  auto m2 = cls.find_all("ab\xC2\x85" "12$");
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_EQ(m2[0].first, 4u);  // "12$", not the NEL
  // ASCII punctuation inside a class is literal (ICU would read $ { } specially).
  kvlab::host::unicode::Regex punct(R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]+)", "test");
  auto m3 = punct.find_all("a{$}[b]");
  ASSERT_EQ(m3.size(), 2u);
  EXPECT_EQ(m3[0], std::make_pair(std::size_t{1}, std::size_t{5}));
  EXPECT_EQ(m3[1], std::make_pair(std::size_t{6}, std::size_t{7}));
}

TEST(Tokenizer, ByteLevelMapsEveryByte) {
  Tokenizer t = load(byte_level({}));
  EXPECT_EQ(t.kind(), "byte-level-bpe");
  // Without merges every UTF-8 byte is its own token, id == byte value.
  const std::string text = "a b\n\xC3\xA9\t~";
  Ids want;
  for (unsigned char c : text) want.push_back(c);
  EXPECT_EQ(t.encode(text), want);
  EXPECT_EQ(byte_char(' '), "\xC4\xA0");   // Ġ
  EXPECT_EQ(byte_char('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(t.id_to_tokens({32})[0], "\xC4\xA0");
}

TEST(Tokenizer, MergesApplyLowestRankFirst) {
  // "abc": with (b,c) ranked first -> a + bc; with (a,b) first -> ab + c.
  Tokenizer bc_first = load(byte_level({{"b", "c"}, {"a", "b"}}));
  Tokenizer ab_first = load(byte_level({{"a", "b"}, {"b", "c"}}));
  EXPECT_EQ(bc_first.encode("abc"), (Ids{'a', id_of(bc_first, "bc")}));
  EXPECT_EQ(ab_first.encode("abc"), (Ids{id_of(ab_first, "ab"), 'c'}));
  // Equal pairs merge leftmost first: "aaa" -> aa + a.
  Tokenizer aa = load(byte_level({{"a", "a"}}));
  EXPECT_EQ(aa.encode("aaa"), (Ids{id_of(aa, "aa"), 'a'}));
  EXPECT_EQ(aa.encode("aaaa"), (Ids{id_of(aa, "aa"), id_of(aa, "aa")}));
  // The GPT-2 regex keeps " b" together and splits at letters/digits.
  Tokenizer sp = load(byte_level({{byte_char(' '), "b"}}));
  EXPECT_EQ(sp.encode("a b1"), (Ids{'a', id_of(sp, byte_char(' ') + "b"), '1'}));
}

TEST(Tokenizer, AddedTokensSplitBeforeModel) {
  json j = byte_level({});
  j["added_tokens"] = json::array({
      {{"id", 300}, {"content", "<|eot|>"}, {"special", true}, {"normalized", false}},
      {{"id", 301}, {"content", "<|eot|>x"}, {"special", true}, {"normalized", false}},  // longest wins
      {{"id", 302}, {"content", "<L>"}, {"special", true}, {"normalized", false}, {"lstrip", true}, {"rstrip", true}},
      {{"id", 303}, {"content", "cat"}, {"special", false}, {"normalized", false}, {"single_word", true}},
  });
  Tokenizer t = load(j);
  EXPECT_EQ(t.encode("a<|eot|>b"), (Ids{'a', 300, 'b'}));
  EXPECT_EQ(t.encode("<|eot|>xy"), (Ids{301, 'y'}));
  EXPECT_EQ(t.encode("a  <L>  b"), (Ids{'a', 302, 'b'}));        // swallows spaces on both sides
  EXPECT_EQ(t.encode("cat concat"), (Ids{303, ' ', 'c', 'o', 'n', 'c', 'a', 't'}));  // single_word
  EXPECT_EQ(t.vocab_size(), 304);
  EXPECT_EQ(t.id_to_tokens({300})[0], "<|eot|>");
}

TEST(Tokenizer, NormalizersRunBeforePreTokenizer) {
  json j = byte_level({});
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      json::array({{{"type", "NFC"}},
                                   {{"type", "Lowercase"}},
                                   {{"type", "Replace"}, {"pattern", {{"String", "x"}}}, {"content", "yy"}},
                                   {{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}})}};
  Tokenizer t = load(j);
  // "E" + U+0301 -> NFC U+00C9 -> lowercase U+00E9 (bytes C3 A9); x -> yy; leading space stripped.
  EXPECT_EQ(t.encode("  E\xCC\x81x"), (Ids{0xC3, 0xA9, 'y', 'y'}));
  json k = byte_level({});
  k["normalizer"] = {{"type", "NFKD"}};
  EXPECT_EQ(load(k).encode("\xEF\xAC\x81"), (Ids{'f', 'i'}));  // U+FB01 ligature
}

TEST(Tokenizer, SplitBehaviours) {
  auto with = [](const std::string& behavior, bool invert) {
    json pre = {{"type", "Sequence"},
                {"pretokenizers",
                 json::array({{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}},
                              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
    // Merges that only apply within one piece reveal the piece boundaries.
    return load(byte_level({{"a", "-"}, {"-", "b"}, {"a", "b"}}, pre));
  };
  Tokenizer removed = with("Removed", false);
  Tokenizer isolated = with("Isolated", false);
  Tokenizer prev = with("MergedWithPrevious", false);
  Tokenizer next = with("MergedWithNext", false);
  EXPECT_EQ(removed.encode("a-b"), (Ids{'a', 'b'}));
  EXPECT_EQ(isolated.encode("a-b"), (Ids{'a', '-', 'b'}));
  EXPECT_EQ(prev.encode("a-b"), (Ids{id_of(prev, "a-"), 'b'}));
  EXPECT_EQ(next.encode("a-b"), (Ids{'a', id_of(next, "-b")}));
  Tokenizer inverted = with("Removed", true);  // keeps only the matches
  EXPECT_EQ(inverted.encode("a-b"), (Ids{'-'}));
}

// A SentencePiece-style vocabulary: <unk> <s> </s>, byte tokens, a few pieces.
json sentencepiece(bool byte_fallback, json normalizer, json pre) {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  const std::string sp = "\xE2\x96\x81";
  int next = 259;
  for (std::string s : {sp, std::string("h"), std::string("i"), sp + "h", sp + "hi", std::string("x")}) vocab[s] = next++;
  json merges = json::array({sp + " h", sp + "h i"});
  return {{"added_tokens", json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                        {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                        {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
          {"normalizer", normalizer},
          {"pre_tokenizer", pre},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
          {"model",
           {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", byte_fallback}, {"vocab", vocab}, {"merges", merges}}}};
}

TEST(Tokenizer, SentencePieceByteFallbackAndUnk) {
  const std::string sp = "\xE2\x96\x81";
  json llama2_norm = {{"type", "Sequence"},
                      {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", sp}},
                                                   {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}})}};
  Tokenizer t = load(sentencepiece(true, llama2_norm, nullptr));
  EXPECT_EQ(t.kind(), "sentencepiece-bpe");
  const int32_t sp_hi = *t.token_to_id(sp + "hi"), sp_id = *t.token_to_id(sp), x = *t.token_to_id("x");
  // "hi x" -> "▁hi▁x": ▁hi, ▁, x; with BOS.
  EXPECT_EQ(t.encode("hi x"), (Ids{1, sp_hi, sp_id, x}));
  EXPECT_EQ(t.encode("hi x", false), (Ids{sp_hi, sp_id, x}));
  // "é" (C3 A9) is not in the vocabulary: byte fallback <0xC3> <0xA9>.
  EXPECT_EQ(t.encode("\xC3\xA9", false), (Ids{sp_id, 3 + 0xC3, 3 + 0xA9}));
  // Without byte fallback: one fused <unk> for the run "éé".
  Tokenizer u = load(sentencepiece(false, llama2_norm, nullptr));
  EXPECT_EQ(u.encode("\xC3\xA9\xC3\xA9x", false), (Ids{sp_id, 0, x}));
  // Metaspace with prepend_scheme "first": only the text start gets "▁".
  json meta = {{"type", "Metaspace"}, {"replacement", sp}, {"prepend_scheme", "first"}, {"split", false}};
  Tokenizer m = load(sentencepiece(true, nullptr, meta));
  EXPECT_EQ(m.encode("hi</s>hi", false), (Ids{sp_hi, 2, *m.token_to_id("h"), *m.token_to_id("i")}));
}

TEST(Tokenizer, FixedLengthRecipe) {
  const std::string sp = "\xE2\x96\x81";
  json norm = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}};
  Tokenizer t = load(sentencepiece(true, norm, nullptr), R"({"pad_token": {"content": "</s>"}})");
  const int32_t x = *t.token_to_id("x");
  ASSERT_EQ(t.num_special_tokens_to_add(), 1);
  ASSERT_EQ(t.pad_id(), 2);
  // "x" repeated 8 times -> 8 x's; BOS + 8 + pad to 12.
  auto r = kvlab::host::encode_fixed_length(t, "x", 12, 8);
  EXPECT_EQ(r.ids, (Ids{1, x, x, x, x, x, x, x, x, 2, 2, 2}));
  EXPECT_EQ(r.content_tokens, 9);
  EXPECT_EQ(r.pad_tokens, 3);
  // Truncation keeps the BOS and cuts the content.
  auto c = kvlab::host::encode_fixed_length(t, "x", 4, 8);
  EXPECT_EQ(c.ids, (Ids{1, x, x, x}));
  EXPECT_EQ(c.pad_tokens, 0);
  // Left padding / left truncation from tokenizer_config.json.
  Tokenizer left = load(sentencepiece(true, norm, nullptr), R"({"pad_token": "</s>", "padding_side": "left"})");
  EXPECT_EQ(kvlab::host::encode_fixed_length(left, "x", 5, 2).ids, (Ids{2, 2, 1, x, x}));
  // Zero tokens, no pad token, bad arguments: clear errors.
  EXPECT_NE(error_of([&] { kvlab::host::encode_fixed_length(t, "", 8); }).find("zero tokens"), std::string::npos);
  Tokenizer nopad = load(sentencepiece(true, norm, nullptr));
  EXPECT_NE(error_of([&] { kvlab::host::encode_fixed_length(nopad, "x", 64); }).find("no pad token"), std::string::npos);
  EXPECT_NE(error_of([&] { kvlab::host::encode_fixed_length(t, "x", 1); }).find("no room"), std::string::npos);
  EXPECT_NE(error_of([&] { kvlab::host::encode_fixed_length(t, "x", 0); }).find("seqlen"), std::string::npos);
}

TEST(Tokenizer, BadInputNamesFileAndField) {
  const auto dir = kvlab::testutil::make_temp_dir("kvlab-tok");
  // Missing file.
  std::string e = error_of([&] { Tokenizer::from_files(dir + "/nope/tokenizer.json"); });
  EXPECT_NE(e.find(dir + "/nope/tokenizer.json"), std::string::npos) << e;
  EXPECT_NE(e.find("not found"), std::string::npos) << e;
  // Not JSON.
  std::ofstream(dir + "/bad.json") << "{not json";
  e = error_of([&] { Tokenizer::from_files(dir + "/bad.json"); });
  EXPECT_NE(e.find("bad.json: not valid JSON"), std::string::npos) << e;
  // Unsupported model and components: "not supported: <kind>" with the field.
  json j = byte_level({});
  j["model"]["type"] = "Unigram";
  e = error_of([&] { load(j); });
  EXPECT_NE(e.find("not supported: tokenizer model Unigram"), std::string::npos) << e;
  EXPECT_NE(e.find("model.type"), std::string::npos) << e;
  j = byte_level({});
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "NFC"}}, {{"type", "BertNormalizer"}}})}};
  e = error_of([&] { load(j); });
  EXPECT_NE(e.find("not supported: normalizer BertNormalizer"), std::string::npos) << e;
  EXPECT_NE(e.find("normalizer.normalizers[1].type"), std::string::npos) << e;
  j = byte_level({});
  j["pre_tokenizer"] = {{"type", "UnicodeScripts"}};
  EXPECT_NE(error_of([&] { load(j); }).find("not supported: pre-tokenizer UnicodeScripts"), std::string::npos);
  j = byte_level({});
  j["post_processor"] = {{"type", "Unknown"}};
  EXPECT_NE(error_of([&] { load(j); }).find("not supported: post-processor Unknown"), std::string::npos);
  j = byte_level({});
  j["model"]["dropout"] = 0.1;
  EXPECT_NE(error_of([&] { load(j); }).find("not supported: BPE dropout"), std::string::npos);
  // A merge naming a token that is not in the vocabulary.
  j = byte_level({{"a", "b"}});
  j["model"]["merges"].push_back("a zz");
  e = error_of([&] { load(j); });
  EXPECT_NE(e.find("model.merges[1]"), std::string::npos) << e;
  EXPECT_NE(e.find("\"zz\" is not in model.vocab"), std::string::npos) << e;
  // Regex that ICU cannot compile, and a POSIX class we refuse.
  json pre = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
  e = error_of([&] { load(byte_level({}, pre)); });
  EXPECT_NE(e.find("pre_tokenizer.pattern.Regex"), std::string::npos) << e;
  pre["pattern"]["Regex"] = "[[:alpha:]]+";
  EXPECT_NE(error_of([&] { load(byte_level({}, pre)); }).find("not supported: POSIX bracket class"), std::string::npos);
  pre["pattern"]["Regex"] = "a";
  pre["behavior"] = "Sideways";
  EXPECT_NE(error_of([&] { load(byte_level({}, pre)); }).find("not supported: split behavior Sideways"), std::string::npos);
  // Missing model.vocab.
  j = byte_level({});
  j["model"].erase("vocab");
  EXPECT_NE(error_of([&] { load(j); }).find("field 'model.vocab': missing"), std::string::npos);
  // pad_token unknown to the tokenizer.
  e = error_of([&] { load(byte_level({}), R"({"pad_token": "<pad>"})"); });
  EXPECT_NE(e.find("tokenizer_config.json: field 'pad_token'"), std::string::npos) << e;
  // Invalid UTF-8 text names the byte offset.
  e = error_of([&] { load(byte_level({})).encode("ab\xFF"); });
  EXPECT_NE(e.find("byte offset 2"), std::string::npos) << e;
  std::filesystem::remove_all(dir);
}

}  // namespace
