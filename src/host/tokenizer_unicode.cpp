// ICU-backed Unicode services for the tokenizer; see tokenizer_unicode.h.
#include "host/tokenizer_unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/locid.h>

#include <fmt/format.h>

#include "common/error.h"

namespace kvlab::host::unicode {

std::size_t utf8_len(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b >> 5) == 0x6) return 2;
  if ((b >> 4) == 0xE) return 3;
  return 4;
}

std::size_t invalid_utf8_offset(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    unsigned char b = p[i];
    if (b < 0x80) { ++i; continue; }
    std::size_t len;
    char32_t c;
    if (b >= 0xC2 && b <= 0xDF) { len = 2; c = b & 0x1F; }
    else if (b >= 0xE0 && b <= 0xEF) { len = 3; c = b & 0x0F; }
    else if (b >= 0xF0 && b <= 0xF4) { len = 4; c = b & 0x07; }
    else return i;
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

std::u32string to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t len = utf8_len(p[i]);
    char32_t c = len == 1 ? p[i] : len == 2 ? (p[i] & 0x1F) : len == 3 ? (p[i] & 0x0F) : (p[i] & 0x07);
    for (std::size_t k = 1; k < len && i + k < s.size(); ++k) c = (c << 6) | (p[i + k] & 0x3F);
    out.push_back(c);
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

namespace {

icu::UnicodeString from_utf8(std::string_view s) {
  return icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
}

std::string utf8_of(const icu::UnicodeString& u) {
  std::string out;
  u.toUTF8String(out);
  return out;
}

const icu::Normalizer2& normalizer(NormForm f) {
  UErrorCode st = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (f) {
    case NormForm::NFC: n = icu::Normalizer2::getNFCInstance(st); break;
    case NormForm::NFD: n = icu::Normalizer2::getNFDInstance(st); break;
    case NormForm::NFKC: n = icu::Normalizer2::getNFKCInstance(st); break;
    case NormForm::NFKD: n = icu::Normalizer2::getNFKDInstance(st); break;
  }
  KVLAB_ASSERT(U_SUCCESS(st) && n, "ICU normalizer unavailable: {}", u_errorName(st));
  return *n;
}

}  // namespace

std::string normalize(std::string_view s, NormForm f) {
  UErrorCode st = U_ZERO_ERROR;
  icu::UnicodeString out = normalizer(f).normalize(from_utf8(s), st);
  KVLAB_ASSERT(U_SUCCESS(st), "ICU normalize failed: {}", u_errorName(st));
  return utf8_of(out);
}

std::string to_lower(std::string_view s) {
  icu::UnicodeString u = from_utf8(s);
  u.toLower(icu::Locale::getRoot());
  return utf8_of(u);
}

bool is_white_space(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE); }
bool is_mark(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_M_MASK) != 0; }
bool is_numeric(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }
bool is_alphanumeric(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC) || is_numeric(c);
}
bool is_punctuation(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0; }

// ---------------------------------------------------------------------------
// Oniguruma -> ICU pattern translation.

namespace {

constexpr const char* kWordInClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}";

bool is_ascii_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Copies a braced escape body "{...}" starting at pattern[i] (which is '{').
std::size_t copy_braced(const std::string& p, std::size_t i, std::string& out, const std::string& ctx) {
  std::size_t close = p.find('}', i);
  KVLAB_CHECK(close != std::string::npos, "{}: unterminated '{{' in regex at offset {}", ctx, i);
  out.append(p, i, close - i + 1);
  return close + 1;
}

}  // namespace

std::string onig_to_icu(const std::string& p, const std::string& ctx) {
  std::string out;
  out.reserve(p.size() * 2);
  int depth = 0;             // character-class nesting
  bool class_start = false;  // just after '[' or '[^' (']' is literal there)
  std::size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '\\') {
      KVLAB_CHECK(i + 1 < p.size(), "{}: regex ends with a lone backslash", ctx);
      char e = p[i + 1];
      class_start = false;
      std::size_t next = i + 2;
      switch (e) {
        case 's': out += "\\p{White_Space}"; break;
        case 'S': out += "\\P{White_Space}"; break;
        case 'd': out += "\\p{Nd}"; break;
        case 'D': out += "\\P{Nd}"; break;
        case 'w': out += depth ? std::string(kWordInClass) : fmt::format("[{}]", kWordInClass); break;
        case 'W': out += fmt::format("[^{}]", kWordInClass); break;
        case 'h': out += depth ? "0-9A-Fa-f" : "[0-9A-Fa-f]"; break;
        case 'H': out += "[^0-9A-Fa-f]"; break;
        case 'G':
          throw Error(fmt::format("{}: not supported: regex anchor \\G", ctx));
        case 'p':
        case 'P':
        case 'x':
          out.push_back('\\');
          out.push_back(e);
          if (next < p.size() && p[next] == '{') next = copy_braced(p, next, out, ctx);
          break;
        default:
          out.push_back('\\');
          // Copy a whole UTF-8 character after the backslash.
          {
            std::size_t len = utf8_len(static_cast<unsigned char>(e));
            out.append(p, i + 1, len);
            next = i + 1 + len;
          }
      }
      i = next;
      continue;
    }
    if (depth == 0) {
      if (c == '[') {
        ++depth;
        out.push_back('[');
        ++i;
        if (i < p.size() && p[i] == '^') { out.push_back('^'); ++i; }
        class_start = true;
        continue;
      }
      out.push_back(c);
      ++i;
      continue;
    }
    // Inside a character class.
    if (c == ']' && !class_start) {
      --depth;
      out.push_back(']');
      ++i;
      continue;
    }
    if (c == '[') {
      KVLAB_CHECK(!(i + 1 < p.size() && p[i + 1] == ':'), "{}: not supported: POSIX bracket class at offset {}",
                  ctx, i);
      ++depth;
      out.push_back('[');
      ++i;
      if (i < p.size() && p[i] == '^') { out.push_back('^'); ++i; }
      class_start = true;
      continue;
    }
    class_start = false;
    if (c == '&' && i + 1 < p.size() && p[i + 1] == '&') {
      out += "&&";
      i += 2;
      continue;
    }
    if (c == '-' && i + 1 < p.size() && p[i + 1] != ']' && !out.empty() && out.back() != '[' &&
        out.back() != '^') {
      out.push_back('-');  // range operator
      ++i;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x80 && !is_ascii_alnum(c)) {
      out += fmt::format("\\x{{{:02X}}}", static_cast<unsigned>(static_cast<unsigned char>(c)));
      ++i;
      continue;
    }
    std::size_t len = utf8_len(static_cast<unsigned char>(c));
    out.append(p, i, len);
    i += len;
  }
  KVLAB_CHECK(depth == 0, "{}: unterminated character class in regex", ctx);
  return out;
}

// ---------------------------------------------------------------------------

struct Regex::Impl {
  std::unique_ptr<icu::RegexPattern> pattern;
};

Regex::Regex(const std::string& pattern, const std::string& context) : impl_(std::make_unique<Impl>()) {
  KVLAB_CHECK(invalid_utf8_offset(pattern) == std::string_view::npos, "{}: regex is not valid UTF-8",
              context);
  std::string icu_pattern = onig_to_icu(pattern, context);
  UErrorCode st = U_ZERO_ERROR;
  UParseError pe{};
  impl_->pattern.reset(icu::RegexPattern::compile(from_utf8(icu_pattern), UREGEX_MULTILINE | UREGEX_UNIX_LINES,
                                                  pe, st));
  KVLAB_CHECK(U_SUCCESS(st) && impl_->pattern, "{}: regex {:?} does not compile ({} at offset {})", context,
              pattern, u_errorName(st), pe.offset);
}

Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

std::vector<std::pair<std::size_t, std::size_t>> Regex::find_all(std::string_view s) const {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (s.empty()) return out;
  icu::UnicodeString u = from_utf8(s);
  // UTF-16 index -> byte offset.
  std::vector<std::size_t> byte_at(static_cast<std::size_t>(u.length()) + 1, 0);
  {
    std::size_t b = 0;
    int32_t k = 0;
    while (k < u.length()) {
      UChar32 c = u.char32At(k);
      int32_t units = U16_LENGTH(c);
      std::size_t bytes = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      for (int32_t j = 0; j < units; ++j) byte_at[static_cast<std::size_t>(k + j)] = b;
      b += bytes;
      k += units;
    }
    byte_at[static_cast<std::size_t>(u.length())] = b;
    KVLAB_ASSERT(b == s.size(), "UTF-16 offset map disagrees with the UTF-8 length");
  }
  UErrorCode st = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexMatcher> m(impl_->pattern->matcher(u, st));
  KVLAB_ASSERT(U_SUCCESS(st), "ICU matcher: {}", u_errorName(st));
  while (m->find(st) && U_SUCCESS(st)) {
    int32_t a = m->start(st), z = m->end(st);
    out.emplace_back(byte_at[static_cast<std::size_t>(a)], byte_at[static_cast<std::size_t>(z)]);
  }
  KVLAB_CHECK(U_SUCCESS(st), "regex match failed: {}", u_errorName(st));
  return out;
}

}  // namespace kvlab::host::unicode
