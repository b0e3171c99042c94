// Tokenizer for Hugging Face `tokenizer.json` files (BPE models only).
//
// Reproduces the encode path of the Rust `tokenizers` library for the two
// BPE families that host models use:
//  - byte-level BPE (GPT-2, Qwen2/Qwen3, Llama 3, DeepSeek, GLM): optional
//    normalizer (NFC, ...), pre-tokenizers `Split` (Oniguruma regex with
//    Unicode classes) and `ByteLevel` (GPT-2 byte-to-unicode table,
//    Radford et al. 2019), merges applied by rank;
//  - SentencePiece-style BPE (Llama 2, Gemma): `Prepend` / `Replace`
//    normalizers or the `Metaspace` pre-tokenizer, `byte_fallback` to
//    `<0xNN>` tokens, `unk_token` with `fuse_unk`.
// Added tokens (special or not; lstrip / rstrip / single_word / normalized)
// are extracted before normalization as in `tokenizers`' AddedVocabulary,
// and the post-processor (TemplateProcessing, Roberta/Bert, ByteLevel)
// adds special tokens when asked.
//
// Regexes are compiled with ICU after translating the Oniguruma (Ruby
// syntax) spellings whose meaning differs in ICU (\s, \d, \w, \h, line
// anchors); Unicode normalization forms come from ICU as well.
//
// What it is not: no WordPiece / Unigram / WordLevel models, no BPE
// dropout, no pair sequences, no offsets, no decoding of ids to text
// beyond the token strings. Anything unsupported in a tokenizer.json throws
// kvlab::Error "not supported: <kind>" naming the file and the field, when
// the file is loaded (never silently later).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvlab::host {

class Tokenizer {
 public:
  // Loads `tokenizer_json`; `tokenizer_config_json` (may be empty: not
  // used) supplies pad_token and padding/truncation side as transformers'
  // AutoTokenizer reads them. Throws kvlab::Error naming file and field.
  static Tokenizer from_files(const std::string& tokenizer_json,
                              const std::string& tokenizer_config_json = "");
  // Same from in-memory JSON text; `label` / `config_label` name the
  // sources in messages (config_label defaults to tokenizer_config.json
  // beside `label`).
  static Tokenizer from_json_text(const std::string& tokenizer_json_text, const std::string& label,
                                  const std::string& tokenizer_config_text = "",
                                  const std::string& config_label = "");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text` (valid UTF-8, else kvlab::Error with the byte
  // offset). With add_special_tokens the post-processor's template is
  // applied (e.g. a BOS id), as `tokenizers`' encode(text, true).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Token strings of `ids` (vocabulary or added-token content); throws for
  // ids outside the vocabulary.
  std::vector<std::string> id_to_tokens(const std::vector<int32_t>& ids) const;
  std::optional<int32_t> token_to_id(const std::string& token) const;

  // Applies the post-processor's special tokens to already-encoded ids
  // (what encode(text, true) does after encode(text, false)).
  std::vector<int32_t> add_special_tokens(const std::vector<int32_t>& ids) const;
  // Number of special tokens add_special_tokens() adds to one sequence.
  int64_t num_special_tokens_to_add() const;
  // 1 + the largest id in the vocabulary and the added tokens.
  int64_t vocab_size() const;
  // Pad id for padding: tokenizer_config.json pad_token, else the
  // tokenizer.json `padding.pad_id`; nullopt if neither exists.
  std::optional<int32_t> pad_id() const;
  bool pad_left() const;       // padding_side == "left"
  bool truncate_left() const;  // truncation_side == "left"

  // "byte-level-bpe" or "sentencepiece-bpe" (or "bpe" for neither).
  const std::string& kind() const;
  // Where it was loaded from (path or label).
  const std::string& source() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The published study's recipe (transformers: tok(text * repeat,
// padding="max_length", truncation=True, max_length=seqlen)): `text`
// concatenated `repeat` times, encoded with special tokens, the content cut
// so that content + special tokens fit `seqlen` (on the truncation side),
// then padded to `seqlen` with pad_id() (on the padding side).
struct FixedLengthIds {
  std::vector<int32_t> ids;  // exactly seqlen
  int64_t content_tokens = 0;  // tokens before truncation (specials included)
  int64_t pad_tokens = 0;
};
// `pad_override` replaces pad_id() (for tokenizers without a pad token).
// Throws kvlab::Error when the text encodes to zero tokens, when padding is
// needed but there is no pad id, or for seqlen < 1 / repeat < 1.
FixedLengthIds encode_fixed_length(const Tokenizer& tok, std::string_view text, int64_t seqlen,
                                   int repeat = 8, std::optional<int32_t> pad_override = std::nullopt);

}  // namespace kvlab::host
