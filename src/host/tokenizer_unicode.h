// Unicode services for the tokenizer (internal to src/host/): UTF-8
// validation, ICU normalization forms and case mapping, character
// properties, and a regex that gives Oniguruma (Ruby syntax, UTF-8) meaning
// to the patterns found in tokenizer.json files.
//
// What it is not: a general Oniguruma emulation. Translated: \s \S
// (White_Space), \d \D (Nd), \w \W (Alphabetic, M, Nd, Pc), \h \H (hex
// digits), literal punctuation inside character classes; `^`, `$` and `.`
// use Unix line semantics as in Oniguruma. POSIX bracket classes ([:alpha:])
// and \G are refused with "not supported". Everything else (\p{..},
// lookaround, possessive and counted quantifiers, (?i:..)) is ICU's, which
// follows the same Perl-style leftmost-first backtracking semantics.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvlab::host::unicode {

// Byte offset of the first invalid UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are invalid), or npos.
std::size_t invalid_utf8_offset(std::string_view s);
// Decodes valid UTF-8 (call invalid_utf8_offset first).
std::u32string to_u32(std::string_view s);
std::string to_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
// Length in bytes of the UTF-8 sequence starting with byte b (1..4).
std::size_t utf8_len(unsigned char b);

enum class NormForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormForm f);
// Full Unicode lowercase mapping (root locale, final sigma in context).
std::string to_lower(std::string_view s);

bool is_white_space(char32_t c);       // White_Space property
bool is_mark(char32_t c);              // General_Category M*
bool is_numeric(char32_t c);           // General_Category N*
bool is_alphanumeric(char32_t c);      // Alphabetic or N*
bool is_punctuation(char32_t c);       // General_Category P*

// Translates an Oniguruma pattern to ICU syntax (see the file comment).
// Throws kvlab::Error "not supported: ..." naming `context`.
std::string onig_to_icu(const std::string& pattern, const std::string& context);

// A compiled pattern. find_all returns the [begin, end) byte offsets of the
// successive leftmost non-overlapping matches in valid UTF-8 `s`.
class Regex {
 public:
  // `pattern` in Oniguruma syntax; throws kvlab::Error naming `context`
  // (e.g. "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex")
  // and ICU's error for a pattern that does not compile.
  Regex(const std::string& pattern, const std::string& context);
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view s) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvlab::host::unicode
