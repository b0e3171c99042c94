// tokenizer.json loader and BPE encoder; see tokenizer.h.
//
// The pipeline mirrors the Rust `tokenizers` library (TokenizerImpl::encode):
//   1. added tokens with normalized=false are split out of the raw text
//      (leftmost-longest, as its Aho-Corasick automaton), honouring
//      single_word / lstrip / rstrip;
//   2. each remaining piece is normalized, then added tokens with
//      normalized=true are split out of it;
//   3. pre-tokenizers split the pieces further (ByteLevel maps bytes to
//      the GPT-2 byte-to-unicode alphabet);
//   4. the BPE model turns each piece into ids: characters -> symbols (byte
//      fallback / unk), then merges by rank, lowest rank first and leftmost
//      among equal ranks (Sennrich et al. 2016; `tokenizers`' Word::merge_all);
//   5. the post-processor adds special tokens.
#include "host/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <array>
#include <filesystem>
#include <fstream>
#include <queue>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "host/tokenizer_unicode.h"

namespace kvlab::host {

namespace {

using json = nlohmann::json;
namespace uc = unicode;

// --- JSON access with field paths in messages -----------------------------

struct Src {
  std::string file;  // path or label, for messages
};

[[noreturn]] void fail(const Src& src, const std::string& field, const std::string& what) {
  throw Error(fmt::format("{}: field '{}': {}", src.file, field, what));
}
[[noreturn]] void unsupported(const Src& src, const std::string& field, const std::string& kind) {
  throw Error(fmt::format("{}: not supported: {} (field '{}')", src.file, kind, field));
}

const json& need(const Src& src, const json& obj, const std::string& key, const std::string& path) {
  if (!obj.is_object()) fail(src, path, "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) fail(src, path.empty() ? key : path + "." + key, "missing");
  return *it;
}

std::string get_string(const Src& src, const json& v, const std::string& path) {
  if (!v.is_string()) fail(src, path, fmt::format("expected a string, got {}", v.type_name()));
  return v.get<std::string>();
}

bool get_bool(const Src& src, const json& obj, const std::string& key, const std::string& path, bool dflt) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) fail(src, path + "." + key, fmt::format("expected true/false, got {}", it->dump()));
  return it->get<bool>();
}

std::optional<std::string> get_opt_string(const Src& src, const json& obj, const std::string& key,
                                          const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  return get_string(src, *it, path + "." + key);
}

int32_t get_id(const Src& src, const json& v, const std::string& path) {
  if (!v.is_number_integer()) fail(src, path, fmt::format("expected an integer token id, got {}", v.dump()));
  auto x = v.get<int64_t>();
  if (x < 0 || x > INT32_MAX) fail(src, path, fmt::format("token id {} out of range [0, 2^31)", x));
  return static_cast<int32_t>(x);
}

std::string type_of(const Src& src, const json& obj, const std::string& path) {
  return get_string(src, need(src, obj, "type", path), path + ".type");
}

// --- Pieces ------------------------------------------------------------------

struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the input text
  int32_t id = -1;        // >= 0: an added token (final)
};
using Pieces = std::vector<Piece>;

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Seg {
  std::size_t begin, end;
  bool match;
};

// Segments covering [0, n) from a list of match ranges.
std::vector<Seg> segments_from_matches(const std::vector<std::pair<std::size_t, std::size_t>>& m,
                                       std::size_t n) {
  std::vector<Seg> out;
  std::size_t prev = 0;
  for (auto [a, b] : m) {
    if (prev != a) out.push_back({prev, a, false});
    out.push_back({a, b, true});
    prev = b;
  }
  if (prev != n) out.push_back({prev, n, false});
  return out;
}

// tokenizers' NormalizedString::split (SplitDelimiterBehavior).
std::vector<std::pair<std::size_t, std::size_t>> apply_behavior(std::vector<Seg> segs, Behavior b,
                                                                bool invert) {
  if (invert)
    for (auto& s : segs) s.match = !s.match;
  std::vector<Seg> acc;
  switch (b) {
    case Behavior::Isolated:
      acc = segs;
      for (auto& s : acc) s.match = false;
      break;
    case Behavior::Removed:
      acc = segs;
      break;
    case Behavior::MergedWithPrevious: {
      bool prev_match = false;
      for (const auto& s : segs) {
        if (s.match && !prev_match && !acc.empty()) acc.back().end = s.end;
        else acc.push_back({s.begin, s.end, false});
        prev_match = s.match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool prev_match = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->match && !prev_match && !acc.empty()) acc.back().begin = it->begin;
        else acc.push_back({it->begin, it->end, false});
        prev_match = it->match;
      }
      std::reverse(acc.begin(), acc.end());
      break;
    }
    case Behavior::Contiguous: {
      bool prev_match = false;
      for (const auto& s : segs) {
        if (s.match == prev_match && !acc.empty()) acc.back().end = s.end;
        else acc.push_back({s.begin, s.end, false});
        prev_match = s.match;
      }
      break;
    }
  }
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (const auto& s : acc)
    if (!s.match && s.end > s.begin) out.emplace_back(s.begin, s.end);
  return out;
}

// Splits every non-final piece with `find` (text -> match ranges).
template <class Find>
void split_pieces(Pieces& ps, Find&& find, Behavior b, bool invert) {
  Pieces out;
  out.reserve(ps.size());
  for (auto& p : ps) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    auto ranges = apply_behavior(segments_from_matches(find(p.text), p.text.size()), b, invert);
    for (auto [a, z] : ranges) out.push_back(Piece{p.text.substr(a, z - a), p.at_start && a == 0, -1});
  }
  ps = std::move(out);
}

// Literal (non-overlapping, left to right) occurrences of `needle`.
std::vector<std::pair<std::size_t, std::size_t>> find_literal(std::string_view s, std::string_view needle) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (needle.empty()) return out;
  std::size_t pos = 0;
  while ((pos = s.find(needle, pos)) != std::string_view::npos) {
    out.emplace_back(pos, pos + needle.size());
    pos += needle.size();
  }
  return out;
}

// One match per character satisfying `pred`.
template <class Pred>
std::vector<std::pair<std::size_t, std::size_t>> find_chars(std::string_view s, Pred&& pred) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t len = uc::utf8_len(static_cast<unsigned char>(s[i]));
    char32_t c = uc::to_u32(s.substr(i, len))[0];
    if (pred(c)) out.emplace_back(i, i + len);
    i += len;
  }
  return out;
}

Behavior parse_behavior(const Src& src, const json& obj, const std::string& path, Behavior dflt) {
  auto it = obj.find("behavior");
  if (it == obj.end() || it->is_null()) return dflt;
  std::string s = get_string(src, *it, path + ".behavior");
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  unsupported(src, path + ".behavior", "split behavior " + s);
}

// A Split/Replace pattern: {"String": s} or {"Regex": r}.
struct Pattern {
  std::string literal;
  std::optional<uc::Regex> regex;
  std::vector<std::pair<std::size_t, std::size_t>> find(std::string_view s) const {
    return regex ? regex->find_all(s) : find_literal(s, literal);
  }
};

Pattern parse_pattern(const Src& src, const json& obj, const std::string& path) {
  const json& p = need(src, obj, "pattern", path);
  const std::string pp = path + ".pattern";
  Pattern out;
  if (p.is_object() && p.contains("String")) {
    out.literal = get_string(src, p["String"], pp + ".String");
    if (out.literal.empty()) fail(src, pp + ".String", "empty pattern");
  } else if (p.is_object() && p.contains("Regex")) {
    out.regex.emplace(get_string(src, p["Regex"], pp + ".Regex"), fmt::format("{}: field '{}'", src.file, pp + ".Regex"));
  } else {
    fail(src, pp, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  return out;
}

// --- GPT-2 byte-to-unicode table ---------------------------------------------

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    std::array<bool, 256> printable{};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      char32_t c = printable[b] ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      uc::append_utf8(t[b], c);
    }
    return t;
  }();
  return table;
}

std::string byte_level_encode(std::string_view s) {
  const auto& t = byte_to_unicode();
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char b : s) out += t[b];
  return out;
}

// --- Normalizers -----------------------------------------------------------

struct Normalizer {
  virtual ~Normalizer() = default;
  virtual std::string apply(std::string s) const = 0;
};

struct NormForm final : Normalizer {
  uc::NormForm f;
  explicit NormForm(uc::NormForm f) : f(f) {}
  std::string apply(std::string s) const override { return uc::normalize(s, f); }
};
struct Lowercase final : Normalizer {
  std::string apply(std::string s) const override { return uc::to_lower(s); }
};
struct Strip final : Normalizer {
  bool left, right;
  Strip(bool l, bool r) : left(l), right(r) {}
  std::string apply(std::string s) const override {
    std::u32string u = uc::to_u32(s);
    std::size_t a = 0, z = u.size();
    if (left)
      while (a < z && uc::is_white_space(u[a])) ++a;
    if (right)
      while (z > a && uc::is_white_space(u[z - 1])) --z;
    return uc::to_utf8(std::u32string_view(u).substr(a, z - a));
  }
};
struct StripAccents final : Normalizer {
  std::string apply(std::string s) const override {
    std::u32string u = uc::to_u32(s), out;
    for (char32_t c : u)
      if (!uc::is_mark(c)) out.push_back(c);
    return uc::to_utf8(out);
  }
};
struct Replace final : Normalizer {
  Pattern pattern;
  std::string content;
  std::string apply(std::string s) const override {
    auto m = pattern.find(s);
    if (m.empty()) return s;
    std::string out;
    std::size_t prev = 0;
    for (auto [a, z] : m) {
      out.append(s, prev, a - prev);
      out += content;
      prev = z;
    }
    out.append(s, prev, std::string::npos);
    return out;
  }
};
struct Prepend final : Normalizer {
  std::string prefix;
  std::string apply(std::string s) const override { return s.empty() ? s : prefix + s; }
};
struct NormSequence final : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> items;
  std::string apply(std::string s) const override {
    for (const auto& n : items) s = n->apply(std::move(s));
    return s;
  }
};

std::unique_ptr<Normalizer> parse_normalizer(const Src& src, const json& j, const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string t = type_of(src, j, path);
  if (t == "NFC") return std::make_unique<NormForm>(uc::NormForm::NFC);
  if (t == "NFD") return std::make_unique<NormForm>(uc::NormForm::NFD);
  if (t == "NFKC") return std::make_unique<NormForm>(uc::NormForm::NFKC);
  if (t == "NFKD") return std::make_unique<NormForm>(uc::NormForm::NFKD);
  if (t == "Lowercase") return std::make_unique<Lowercase>();
  if (t == "StripAccents") return std::make_unique<StripAccents>();
  if (t == "Strip")
    return std::make_unique<Strip>(get_bool(src, j, "strip_left", path, true),
                                   get_bool(src, j, "strip_right", path, true));
  if (t == "Replace") {
    auto r = std::make_unique<Replace>();
    r->pattern = parse_pattern(src, j, path);
    r->content = get_string(src, need(src, j, "content", path), path + ".content");
    return r;
  }
  if (t == "Prepend") {
    auto r = std::make_unique<Prepend>();
    r->prefix = get_string(src, need(src, j, "prepend", path), path + ".prepend");
    return r;
  }
  if (t == "Sequence") {
    auto r = std::make_unique<NormSequence>();
    const json& items = need(src, j, "normalizers", path);
    if (!items.is_array()) fail(src, path + ".normalizers", "expected an array");
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto n = parse_normalizer(src, items[i], fmt::format("{}.normalizers[{}]", path, i));
      if (n) r->items.push_back(std::move(n));
    }
    return r;
  }
  unsupported(src, path + ".type", "normalizer " + t);
}

// --- Pre-tokenizers --------------------------------------------------------

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  virtual void apply(Pieces& ps) const = 0;
  virtual bool is_byte_level() const { return false; }
  virtual bool is_metaspace() const { return false; }
};

// GPT-2's pre-tokenization regex (tokenizers' ByteLevel pre-tokenizer).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct ByteLevelPre final : PreTokenizer {
  bool add_prefix_space = true;
  bool use_regex = true;
  void apply(Pieces& ps) const override {
    static const uc::Regex re(kGpt2Pattern, "ByteLevel pre-tokenizer (GPT-2 pattern)");
    if (add_prefix_space)
      for (auto& p : ps)
        if (p.id < 0 && !p.text.empty() && p.text[0] != ' ') p.text.insert(0, " ");
    if (use_regex)
      split_pieces(ps, [](const std::string& s) { return re.find_all(s); }, Behavior::Isolated, false);
    for (auto& p : ps)
      if (p.id < 0) p.text = byte_level_encode(p.text);
  }
  bool is_byte_level() const override { return true; }
};

struct SplitPre final : PreTokenizer {
  Pattern pattern;
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  void apply(Pieces& ps) const override {
    split_pieces(ps, [this](const std::string& s) { return pattern.find(s); }, behavior, invert);
  }
};

struct MetaspacePre final : PreTokenizer {
  std::string replacement = "\xE2\x96\x81";  // U+2581
  enum class Prepend { Always, First, Never } prepend = Prepend::Always;
  bool split = true;
  void apply(Pieces& ps) const override {
    for (auto& p : ps) {
      if (p.id >= 0) continue;
      std::string s;
      for (char c : p.text) {
        if (c == ' ') s += replacement;
        else s.push_back(c);
      }
      bool starts = s.compare(0, replacement.size(), replacement) == 0;
      if (!starts && (prepend == Prepend::Always || (prepend == Prepend::First && p.at_start)))
        s = replacement + s;
      p.text = std::move(s);
    }
    if (split)
      split_pieces(ps, [this](const std::string& s) { return find_literal(s, replacement); },
                   Behavior::MergedWithNext, false);
  }
  bool is_metaspace() const override { return true; }
};

struct CharSplitPre final : PreTokenizer {
  enum class Kind { Digits, WhitespaceSplit, Punctuation } kind;
  Behavior behavior;
  void apply(Pieces& ps) const override {
    auto f = [this](const std::string& s) {
      switch (kind) {
        case Kind::Digits: return find_chars(s, uc::is_numeric);
        case Kind::WhitespaceSplit: return find_chars(s, uc::is_white_space);
        case Kind::Punctuation:
          return find_chars(s, [](char32_t c) {
            return (c < 0x80 && std::ispunct(static_cast<int>(c))) || uc::is_punctuation(c);
          });
      }
      return std::vector<std::pair<std::size_t, std::size_t>>{};
    };
    split_pieces(ps, f, behavior, false);
  }
};

struct PreSequence final : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> items;
  void apply(Pieces& ps) const override {
    for (const auto& p : items) p->apply(ps);
  }
  bool is_byte_level() const override {
    return std::any_of(items.begin(), items.end(), [](const auto& p) { return p->is_byte_level(); });
  }
  bool is_metaspace() const override {
    return std::any_of(items.begin(), items.end(), [](const auto& p) { return p->is_metaspace(); });
  }
};

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Src& src, const json& j, const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string t = type_of(src, j, path);
  if (t == "ByteLevel") {
    auto r = std::make_unique<ByteLevelPre>();
    r->add_prefix_space = get_bool(src, j, "add_prefix_space", path, true);
    r->use_regex = get_bool(src, j, "use_regex", path, true);
    return r;
  }
  if (t == "Split") {
    auto r = std::make_unique<SplitPre>();
    r->pattern = parse_pattern(src, j, path);
    r->behavior = parse_behavior(src, j, path, Behavior::Isolated);
    r->invert = get_bool(src, j, "invert", path, false);
    return r;
  }
  if (t == "Metaspace") {
    auto r = std::make_unique<MetaspacePre>();
    if (auto rep = get_opt_string(src, j, "replacement", path)) {
      if (uc::to_u32(*rep).size() != 1) fail(src, path + ".replacement", "expected exactly one character");
      r->replacement = *rep;
    }
    if (auto ps = get_opt_string(src, j, "prepend_scheme", path)) {
      if (*ps == "always") r->prepend = MetaspacePre::Prepend::Always;
      else if (*ps == "first") r->prepend = MetaspacePre::Prepend::First;
      else if (*ps == "never") r->prepend = MetaspacePre::Prepend::Never;
      else unsupported(src, path + ".prepend_scheme", "Metaspace prepend_scheme " + *ps);
    } else {
      r->prepend = get_bool(src, j, "add_prefix_space", path, true) ? MetaspacePre::Prepend::Always
                                                                   : MetaspacePre::Prepend::Never;
    }
    r->split = get_bool(src, j, "split", path, true);
    return r;
  }
  if (t == "Digits") {
    auto r = std::make_unique<CharSplitPre>();
    r->kind = CharSplitPre::Kind::Digits;
    r->behavior = get_bool(src, j, "individual_digits", path, false) ? Behavior::Isolated : Behavior::Contiguous;
    return r;
  }
  if (t == "WhitespaceSplit") {
    auto r = std::make_unique<CharSplitPre>();
    r->kind = CharSplitPre::Kind::WhitespaceSplit;
    r->behavior = Behavior::Removed;
    return r;
  }
  if (t == "Whitespace") {
    auto r = std::make_unique<SplitPre>();
    r->pattern.regex.emplace(R"(\w+|[^\w\s]+)", "Whitespace pre-tokenizer");
    r->behavior = Behavior::Removed;
    r->invert = true;
    return r;
  }
  if (t == "Punctuation") {
    auto r = std::make_unique<CharSplitPre>();
    r->kind = CharSplitPre::Kind::Punctuation;
    r->behavior = parse_behavior(src, j, path, Behavior::Isolated);
    return r;
  }
  if (t == "Sequence") {
    auto r = std::make_unique<PreSequence>();
    const json& items = need(src, j, "pretokenizers", path);
    if (!items.is_array()) fail(src, path + ".pretokenizers", "expected an array");
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto p = parse_pre_tokenizer(src, items[i], fmt::format("{}.pretokenizers[{}]", path, i));
      if (p) r->items.push_back(std::move(p));
    }
    return r;
  }
  unsupported(src, path + ".type", "pre-tokenizer " + t);
}

// --- BPE model ---------------------------------------------------------------

struct Bpe {
  std::unordered_map<std::string, int32_t> vocab;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  std::optional<int32_t> unk_id;
  std::string prefix;  // continuing_subword_prefix
  std::string suffix;  // end_of_word_suffix
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::array<int32_t, 256> byte_ids{};  // <0xNN> ids, -1 where missing

  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  struct Symbol {
    int32_t c;
    int64_t prev, next;
    std::size_t len;
  };
  struct Merge {
    std::size_t pos;
    int32_t rank, new_id;
    // priority_queue is a max-heap: the "largest" is the lowest rank, then lowest pos.
    bool operator<(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  void tokenize(const std::string& w, std::vector<int32_t>& out) const {
    if (w.empty()) return;
    if (ignore_merges) {
      auto it = vocab.find(w);
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    std::vector<Symbol> sy;
    sy.reserve(w.size());
    auto add = [&sy](int32_t c, std::size_t len) {
      int64_t n = static_cast<int64_t>(sy.size());
      if (!sy.empty()) sy.back().next = n;
      sy.push_back(Symbol{c, n - 1, -1, len});
    };
    // Pending unknown run (tokenizers' fuse_unk joins consecutive ones).
    bool unk = false;
    int32_t unk_tok = 0;
    std::size_t unk_len = 0;
    auto flush_unk = [&] {
      if (unk) add(unk_tok, unk_len);
      unk = false;
    };
    std::size_t i = 0;
    std::string s;
    while (i < w.size()) {
      std::size_t len = uc::utf8_len(static_cast<unsigned char>(w[i]));
      bool first = i == 0, last = i + len >= w.size();
      s.assign(w, i, len);
      if (!prefix.empty() && !first) s = prefix + s;
      if (!suffix.empty() && last) s += suffix;
      auto it = vocab.find(s);
      if (it != vocab.end()) {
        flush_unk();
        add(it->second, len);
      } else {
        bool done = false;
        if (byte_fallback) {
          bool all = std::all_of(s.begin(), s.end(),
                                 [this](char b) { return byte_ids[static_cast<unsigned char>(b)] >= 0; });
          if (all) {
            flush_unk();
            for (char b : s) add(byte_ids[static_cast<unsigned char>(b)], 1);
            done = true;
          }
        }
        if (!done && unk_id) {
          if (unk && fuse_unk) {
            unk_len += len;
          } else {
            flush_unk();
            unk = true;
            unk_tok = *unk_id;
            unk_len = len;
          }
        }
      }
      i += len;
    }
    flush_unk();

    std::priority_queue<Merge> q;
    for (std::size_t k = 0; k + 1 < sy.size(); ++k) {
      auto it = merges.find(key(sy[k].c, sy[k + 1].c));
      if (it != merges.end()) q.push(Merge{k, it->second.first, it->second.second});
    }
    while (!q.empty()) {
      Merge top = q.top();
      q.pop();
      Symbol& cur = sy[top.pos];
      if (cur.len == 0 || cur.next == -1) continue;
      const std::size_t next_pos = static_cast<std::size_t>(cur.next);
      Symbol right = sy[next_pos];
      auto it = merges.find(key(cur.c, right.c));
      if (it == merges.end() || it->second.second != top.new_id) continue;
      cur.c = top.new_id;
      cur.len += right.len;
      cur.next = right.next;
      sy[next_pos].len = 0;
      if (right.next > -1 && static_cast<std::size_t>(right.next) < sy.size())
        sy[static_cast<std::size_t>(right.next)].prev = static_cast<int64_t>(top.pos);
      if (cur.prev >= 0) {
        auto m = merges.find(key(sy[static_cast<std::size_t>(cur.prev)].c, cur.c));
        if (m != merges.end()) q.push(Merge{static_cast<std::size_t>(cur.prev), m->second.first, m->second.second});
      }
      if (cur.next >= 0 && static_cast<std::size_t>(cur.next) < sy.size()) {
        auto m = merges.find(key(cur.c, sy[static_cast<std::size_t>(cur.next)].c));
        if (m != merges.end()) q.push(Merge{top.pos, m->second.first, m->second.second});
      }
    }
    for (const auto& x : sy)
      if (x.len != 0) out.push_back(x.c);
  }
};

Bpe parse_bpe(const Src& src, const json& m) {
  const std::string path = "model";
  if (!m.is_object()) fail(src, path, "expected a JSON object");
  // Older files omit model.type; BPE is recognised by its merges.
  std::string t = m.contains("type") ? get_string(src, m["type"], "model.type") : (m.contains("merges") ? "BPE" : "");
  if (t != "BPE") unsupported(src, "model.type", "tokenizer model " + (t.empty() ? std::string("(none)") : t));
  Bpe b;
  if (auto it = m.find("dropout"); it != m.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0)
      unsupported(src, "model.dropout", fmt::format("BPE dropout {} (non-deterministic)", it->dump()));
  }
  const json& vocab = need(src, m, "vocab", path);
  if (!vocab.is_object()) fail(src, "model.vocab", "expected an object token -> id");
  b.vocab.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    b.vocab.emplace(it.key(), get_id(src, it.value(), fmt::format("model.vocab[{}]", json(it.key()).dump())));
  b.prefix = get_opt_string(src, m, "continuing_subword_prefix", path).value_or("");
  b.suffix = get_opt_string(src, m, "end_of_word_suffix", path).value_or("");
  b.fuse_unk = get_bool(src, m, "fuse_unk", path, false);
  b.byte_fallback = get_bool(src, m, "byte_fallback", path, false);
  b.ignore_merges = get_bool(src, m, "ignore_merges", path, false);
  if (auto unk = get_opt_string(src, m, "unk_token", path)) {
    auto it = b.vocab.find(*unk);
    if (it == b.vocab.end()) fail(src, "model.unk_token", fmt::format("token {} is not in model.vocab", json(*unk).dump()));
    b.unk_id = it->second;
  }
  for (int x = 0; x < 256; ++x) {
    auto it = b.vocab.find(fmt::format("<0x{:02X}>", x));
    b.byte_ids[x] = it == b.vocab.end() ? -1 : it->second;
  }
  const json& merges = need(src, m, "merges", path);
  if (!merges.is_array()) fail(src, "model.merges", "expected an array");
  b.merges.reserve(merges.size());
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const std::string mp = fmt::format("model.merges[{}]", r);
    std::string a, c;
    const json& e = merges[r];
    if (e.is_string()) {
      std::string s = e.get<std::string>();
      auto sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail(src, mp, fmt::format("expected \"left right\" (one space), got {}", e.dump()));
      a = s.substr(0, sp);
      c = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      c = e[1].get<std::string>();
    } else {
      fail(src, mp, fmt::format("expected \"left right\" or [left, right], got {}", e.dump()));
    }
    auto ia = b.vocab.find(a), ic = b.vocab.find(c);
    if (ia == b.vocab.end()) fail(src, mp, fmt::format("token {} is not in model.vocab", json(a).dump()));
    if (ic == b.vocab.end()) fail(src, mp, fmt::format("token {} is not in model.vocab", json(c).dump()));
    std::string merged = a + (b.prefix.empty() || c.compare(0, b.prefix.size(), b.prefix) != 0
                                  ? c
                                  : c.substr(b.prefix.size()));
    auto im = b.vocab.find(merged);
    if (im == b.vocab.end())
      fail(src, mp, fmt::format("merged token {} is not in model.vocab", json(merged).dump()));
    // The first (lowest-rank) occurrence of a pair wins, as in tokenizers.
    b.merges.emplace(Bpe::key(ia->second, ic->second), std::make_pair(static_cast<int32_t>(r), im->second));
  }
  return b;
}

// --- Added tokens ------------------------------------------------------------

struct AddedToken {
  std::string content;  // normalized content for normalized tokens
  int32_t id;
  bool single_word, lstrip, rstrip, normalized, special;
};

bool is_word_char(char32_t c) { return c == U'_' || uc::is_alphanumeric(c); }

char32_t last_char(std::string_view s) {
  std::size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  return i > 0 ? uc::to_u32(s.substr(i - 1))[0] : 0;
}

// Byte trie over added-token contents: the longest token starting at a
// position in O(its length), whatever the number of added tokens.
class AddedTrie {
 public:
  void add(const AddedToken* t) {
    int32_t node = 0;
    for (unsigned char b : t->content) {
      const uint64_t k = (static_cast<uint64_t>(node) << 8) | b;
      auto it = edges_.find(k);
      if (it == edges_.end()) {
        it = edges_.emplace(k, static_cast<int32_t>(term_.size())).first;
        term_.push_back(nullptr);
      }
      node = it->second;
    }
    if (!term_[static_cast<std::size_t>(node)]) term_[static_cast<std::size_t>(node)] = t;  // first wins
  }
  bool empty() const { return term_.size() == 1; }
  const AddedToken* longest_at(const std::string& s, std::size_t i) const {
    const AddedToken* best = nullptr;
    int32_t node = 0;
    for (std::size_t k = i; k < s.size(); ++k) {
      auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(s[k]));
      if (it == edges_.end()) break;
      node = it->second;
      if (term_[static_cast<std::size_t>(node)]) best = term_[static_cast<std::size_t>(node)];
    }
    return best;
  }

 private:
  std::unordered_map<uint64_t, int32_t> edges_;
  std::vector<const AddedToken*> term_{nullptr};  // node 0 = root
};

// Splits out added tokens (leftmost, longest at a position).
void split_added(Pieces& ps, const AddedTrie& trie) {
  if (trie.empty()) return;
  Pieces out;
  for (auto& p : ps) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    const std::string& s = p.text;
    std::size_t emitted = 0;  // end of the previous match
    std::size_t i = 0;
    while (i < s.size()) {
      const AddedToken* best = trie.longest_at(s, i);
      if (!best) {
        i += uc::utf8_len(static_cast<unsigned char>(s[i]));
        continue;
      }
      std::size_t a = i, z = i + best->content.size();
      if (best->single_word) {
        bool left_ok = a == 0 || !is_word_char(last_char(std::string_view(s).substr(0, a)));
        bool right_ok = z == s.size() || !is_word_char(uc::to_u32(std::string_view(s).substr(z, uc::utf8_len(static_cast<unsigned char>(s[z]))))[0]);
        if (!left_ok || !right_ok) {
          i += uc::utf8_len(static_cast<unsigned char>(s[i]));
          continue;
        }
      }
      if (best->lstrip) {
        while (a > emitted) {
          std::size_t k = a - 1;
          while (k > emitted && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
          if (!uc::is_white_space(uc::to_u32(std::string_view(s).substr(k, a - k))[0])) break;
          a = k;
        }
      }
      if (best->rstrip) {
        while (z < s.size()) {
          std::size_t len = uc::utf8_len(static_cast<unsigned char>(s[z]));
          if (!uc::is_white_space(uc::to_u32(std::string_view(s).substr(z, len))[0])) break;
          z += len;
        }
      }
      if (a > emitted) out.push_back(Piece{s.substr(emitted, a - emitted), p.at_start && emitted == 0, -1});
      out.push_back(Piece{s.substr(a, z - a), p.at_start && a == 0, best->id});
      emitted = z;
      i = z;
    }
    if (emitted < s.size()) out.push_back(Piece{s.substr(emitted), p.at_start && emitted == 0, -1});
  }
  ps = std::move(out);
}

// --- Post-processor ----------------------------------------------------------

struct Template {
  std::vector<int32_t> prefix, suffix;
};

int32_t special_id(const Src& src, const json& pair, const std::string& path) {
  if (!pair.is_array() || pair.size() != 2) fail(src, path, "expected [token, id]");
  return get_id(src, pair[1], path + "[1]");
}

Template parse_post(const Src& src, const json& j, const std::string& path) {
  Template t;
  if (j.is_null()) return t;
  const std::string type = type_of(src, j, path);
  if (type == "ByteLevel") return t;
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    t.prefix.push_back(special_id(src, need(src, j, "cls", path), path + ".cls"));
    t.suffix.push_back(special_id(src, need(src, j, "sep", path), path + ".sep"));
    return t;
  }
  if (type == "TemplateProcessing") {
    const json& single = need(src, j, "single", path);
    const json& specials = need(src, j, "special_tokens", path);
    if (!single.is_array()) fail(src, path + ".single", "expected an array");
    bool seen_seq = false;
    for (std::size_t i = 0; i < single.size(); ++i) {
      const std::string ip = fmt::format("{}.single[{}]", path, i);
      const json& e = single[i];
      if (e.is_object() && e.contains("Sequence")) {
        std::string id = get_string(src, need(src, e["Sequence"], "id", ip + ".Sequence"), ip + ".Sequence.id");
        if (id != "A" || seen_seq) unsupported(src, ip, "template with sequence " + id + " (pair sequences)");
        seen_seq = true;
      } else if (e.is_object() && e.contains("SpecialToken")) {
        std::string name = get_string(src, need(src, e["SpecialToken"], "id", ip + ".SpecialToken"),
                                      ip + ".SpecialToken.id");
        const json& st = need(src, specials, name, path + ".special_tokens");
        const json& ids = need(src, st, "ids", path + ".special_tokens." + name);
        if (!ids.is_array()) fail(src, path + ".special_tokens." + name + ".ids", "expected an array");
        for (std::size_t k = 0; k < ids.size(); ++k)
          (seen_seq ? t.suffix : t.prefix)
              .push_back(get_id(src, ids[k], fmt::format("{}.special_tokens.{}.ids[{}]", path, name, k)));
      } else {
        fail(src, ip, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    if (!seen_seq) fail(src, path + ".single", "template has no sequence A");
    return t;
  }
  if (type == "Sequence") {
    const json& items = need(src, j, "processors", path);
    if (!items.is_array()) fail(src, path + ".processors", "expected an array");
    for (std::size_t i = 0; i < items.size(); ++i) {
      Template s = parse_post(src, items[i], fmt::format("{}.processors[{}]", path, i));
      t.prefix.insert(t.prefix.begin(), s.prefix.begin(), s.prefix.end());
      t.suffix.insert(t.suffix.end(), s.suffix.begin(), s.suffix.end());
    }
    return t;
  }
  unsupported(src, path + ".type", "post-processor " + type);
}

json parse_json_text(const std::string& text, const std::string& label) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", label, e.what()));
  }
}

std::string read_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(fmt::format("{}: {} not found (or not a regular file)", path, what));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open {}", path, what));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// tokenizer_config.json token fields are a string or {"content": ...}.
std::optional<std::string> config_token(const Src& src, const json& cfg, const std::string& key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return get_string(src, (*it)["content"], key + ".content");
  fail(src, key, fmt::format("expected a token string or {{\"content\": ...}}, got {}", it->dump()));
}

}  // namespace

// ---------------------------------------------------------------------------

struct Tokenizer::Impl {
  std::string source;
  std::string kind;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre;
  Bpe bpe;
  std::vector<AddedToken> added;
  AddedTrie raw_added, norm_added;
  std::unordered_map<std::string, int32_t> added_by_content;
  Template post;
  std::vector<std::string> id_to_token;
  std::optional<int32_t> pad;
  bool pad_left = false, trunc_left = false;
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  std::string text = read_file(tokenizer_json, "tokenizer.json");
  std::string cfg;
  if (!tokenizer_config_json.empty()) cfg = read_file(tokenizer_config_json, "tokenizer_config.json");
  Tokenizer t = from_json_text(text, tokenizer_json, cfg, tokenizer_config_json);
  return t;
}

Tokenizer Tokenizer::from_json_text(const std::string& text, const std::string& label, const std::string& cfg_text,
                                    const std::string& config_label) {
  const Src src{label};
  json j = parse_json_text(text, label);
  if (!j.is_object()) fail(src, "(root)", "expected a JSON object");
  auto impl = std::make_unique<Impl>();
  impl->source = label;
  // tokenizer.json "truncation" is ignored: truncation is the caller's
  // (encode_fixed_length), as with transformers' explicit max_length.
  impl->bpe = parse_bpe(src, need(src, j, "model", ""));
  impl->normalizer = parse_normalizer(src, j.value("normalizer", json()), "normalizer");
  impl->pre = parse_pre_tokenizer(src, j.value("pre_tokenizer", json()), "pre_tokenizer");
  impl->post = parse_post(src, j.value("post_processor", json()), "post_processor");

  int64_t max_id = -1;
  for (const auto& [tok, id] : impl->bpe.vocab) max_id = std::max<int64_t>(max_id, id);
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    const json& at = j["added_tokens"];
    if (!at.is_array()) fail(src, "added_tokens", "expected an array");
    for (std::size_t i = 0; i < at.size(); ++i) {
      const std::string p = fmt::format("added_tokens[{}]", i);
      AddedToken t;
      t.id = get_id(src, need(src, at[i], "id", p), p + ".id");
      t.content = get_string(src, need(src, at[i], "content", p), p + ".content");
      if (t.content.empty()) fail(src, p + ".content", "empty token");
      if (uc::invalid_utf8_offset(t.content) != std::string_view::npos) fail(src, p + ".content", "not valid UTF-8");
      t.single_word = get_bool(src, at[i], "single_word", p, false);
      t.lstrip = get_bool(src, at[i], "lstrip", p, false);
      t.rstrip = get_bool(src, at[i], "rstrip", p, false);
      t.special = get_bool(src, at[i], "special", p, false);
      t.normalized = get_bool(src, at[i], "normalized", p, !t.special);
      impl->added_by_content[t.content] = t.id;
      if (t.normalized && impl->normalizer) t.content = impl->normalizer->apply(t.content);
      max_id = std::max<int64_t>(max_id, t.id);
      impl->added.push_back(std::move(t));
    }
  }
  for (const auto& t : impl->added) {
    if (t.content.empty()) continue;
    (t.normalized ? impl->norm_added : impl->raw_added).add(&t);
  }
  impl->id_to_token.assign(static_cast<std::size_t>(max_id + 1), std::string());
  for (const auto& [tok, id] : impl->bpe.vocab) impl->id_to_token[static_cast<std::size_t>(id)] = tok;
  for (const auto& [content, id] : impl->added_by_content) impl->id_to_token[static_cast<std::size_t>(id)] = content;

  bool byte_level = impl->pre && impl->pre->is_byte_level();
  bool sp = impl->bpe.byte_fallback || (impl->pre && impl->pre->is_metaspace());
  if (!sp && impl->normalizer) {
    // Llama 2 / Gemma style: a Replace(" " -> "\u2581") normalizer.
    sp = impl->normalizer->apply("a b").find("\xE2\x96\x81") != std::string::npos;
  }
  impl->kind = byte_level ? "byte-level-bpe" : sp ? "sentencepiece-bpe" : "bpe";

  // Padding: tokenizer_config.json pad_token wins over tokenizer.json padding.
  if (j.contains("padding") && j["padding"].is_object()) {
    const json& pd = j["padding"];
    if (pd.contains("pad_id")) impl->pad = get_id(src, pd["pad_id"], "padding.pad_id");
    if (pd.value("direction", std::string("Right")) == "Left") impl->pad_left = true;
  }
  if (!cfg_text.empty()) {
    std::string cfg_label = !config_label.empty()
                                ? config_label
                                : (std::filesystem::path(label).parent_path() / "tokenizer_config.json").string();
    const Src csrc{cfg_label};
    json cfg = parse_json_text(cfg_text, cfg_label);
    if (!cfg.is_object()) fail(csrc, "(root)", "expected a JSON object");
    if (auto pt = config_token(csrc, cfg, "pad_token")) {
      auto it = impl->added_by_content.find(*pt);
      if (it != impl->added_by_content.end()) impl->pad = it->second;
      else if (auto v = impl->bpe.vocab.find(*pt); v != impl->bpe.vocab.end()) impl->pad = v->second;
      else fail(csrc, "pad_token", fmt::format("token {} is in neither added_tokens nor model.vocab of {}",
                                               json(*pt).dump(), label));
    }
    if (auto ps = get_opt_string(csrc, cfg, "padding_side", "")) {
      if (*ps != "left" && *ps != "right") fail(csrc, "padding_side", fmt::format("expected left or right, got {}", *ps));
      impl->pad_left = *ps == "left";
    }
    if (auto ts = get_opt_string(csrc, cfg, "truncation_side", "")) {
      if (*ts != "left" && *ts != "right")
        fail(csrc, "truncation_side", fmt::format("expected left or right, got {}", *ts));
      impl->trunc_left = *ts == "left";
    }
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  const Impl& m = *impl_;
  std::size_t bad = uc::invalid_utf8_offset(text);
  KVLAB_CHECK(bad == std::string_view::npos, "text is not valid UTF-8 (byte offset {}, byte 0x{:02X})", bad,
              static_cast<unsigned>(static_cast<unsigned char>(text[bad])));
  Pieces ps;
  if (!text.empty()) ps.push_back(Piece{std::string(text), true, -1});
  split_added(ps, m.raw_added);
  if (m.normalizer) {
    Pieces kept;
    for (auto& p : ps) {
      if (p.id < 0) p.text = m.normalizer->apply(std::move(p.text));
      if (p.id >= 0 || !p.text.empty()) kept.push_back(std::move(p));
    }
    ps = std::move(kept);
  }
  split_added(ps, m.norm_added);
  if (m.pre) m.pre->apply(ps);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 2 + 4);
  for (const auto& p : ps) {
    if (p.id >= 0) ids.push_back(p.id);
    else m.bpe.tokenize(p.text, ids);
  }
  return add_special ? add_special_tokens(ids) : ids;
}

std::vector<int32_t> Tokenizer::add_special_tokens(const std::vector<int32_t>& ids) const {
  std::vector<int32_t> out(impl_->post.prefix);
  out.insert(out.end(), ids.begin(), ids.end());
  out.insert(out.end(), impl_->post.suffix.begin(), impl_->post.suffix.end());
  return out;
}

std::vector<std::string> Tokenizer::id_to_tokens(const std::vector<int32_t>& ids) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    KVLAB_CHECK(id >= 0 && static_cast<std::size_t>(id) < impl_->id_to_token.size(),
                "token id {} outside the vocabulary of {} (size {})", id, impl_->source, impl_->id_to_token.size());
    out.push_back(impl_->id_to_token[static_cast<std::size_t>(id)]);
  }
  return out;
}

std::optional<int32_t> Tokenizer::token_to_id(const std::string& token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) return it->second;
  if (auto it = impl_->bpe.vocab.find(token); it != impl_->bpe.vocab.end()) return it->second;
  return std::nullopt;
}

int64_t Tokenizer::num_special_tokens_to_add() const {
  return static_cast<int64_t>(impl_->post.prefix.size() + impl_->post.suffix.size());
}
int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->id_to_token.size()); }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad; }
bool Tokenizer::pad_left() const { return impl_->pad_left; }
bool Tokenizer::truncate_left() const { return impl_->trunc_left; }
const std::string& Tokenizer::kind() const { return impl_->kind; }
const std::string& Tokenizer::source() const { return impl_->source; }

FixedLengthIds encode_fixed_length(const Tokenizer& tok, std::string_view text, int64_t seqlen, int repeat,
                                   std::optional<int32_t> pad_override) {
  KVLAB_CHECK(seqlen >= 1, "seqlen must be >= 1, got {}", seqlen);
  KVLAB_CHECK(repeat >= 1, "repeat must be >= 1, got {}", repeat);
  std::string rep;
  rep.reserve(text.size() * static_cast<std::size_t>(repeat));
  for (int r = 0; r < repeat; ++r) rep.append(text);
  std::vector<int32_t> content = tok.encode(rep, false);
  KVLAB_CHECK(!content.empty(), "passage tokenizes to zero tokens with {} ({} bytes of text); expected at least one",
              tok.source(), text.size());
  const int64_t specials = tok.num_special_tokens_to_add();
  KVLAB_CHECK(seqlen > specials, "seqlen {} leaves no room for content next to {} special tokens of {}", seqlen,
              specials, tok.source());
  FixedLengthIds out;
  out.content_tokens = static_cast<int64_t>(content.size()) + specials;
  const auto keep = static_cast<std::size_t>(std::min<int64_t>(static_cast<int64_t>(content.size()), seqlen - specials));
  if (tok.truncate_left()) content.erase(content.begin(), content.end() - static_cast<std::ptrdiff_t>(keep));
  else content.resize(keep);
  out.ids = tok.add_special_tokens(content);
  const int64_t missing = seqlen - static_cast<int64_t>(out.ids.size());
  if (missing > 0) {
    auto pad = pad_override ? pad_override : tok.pad_id();
    KVLAB_CHECK(pad.has_value(),
                "passage has {} tokens but seqlen is {}: padding needed, and {} has no pad token "
                "(tokenizer_config.json pad_token or tokenizer.json padding.pad_id)",
                out.ids.size(), seqlen, tok.source());
    out.ids.insert(tok.pad_left() ? out.ids.begin() : out.ids.end(), static_cast<std::size_t>(missing), *pad);
    out.pad_tokens = missing;
  }
  KVLAB_ASSERT(static_cast<int64_t>(out.ids.size()) == seqlen, "fixed-length ids have the wrong length");
  return out;
}

}  // namespace kvlab::host
