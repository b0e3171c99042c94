// Markdown formatting primitives; see markdown.h.
#include "report/markdown.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "common/error.h"

namespace kvlab::report {
namespace {

// "-0.000" -> "0.000": a rounded value that is zero carries no sign.
std::string strip_negative_zero(std::string s) {
  if (!s.empty() && s[0] == '-' &&
      s.find_first_not_of("0.", 1) == std::string::npos) {
    s.erase(0, 1);
  }
  return s;
}

std::string non_finite(double v) {
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

// Decimal exponent of |v| after rounding to `sig` significant digits
// (9.996 at 3 digits -> 1.00e+01 -> 1).
int rounded_exponent(double v, int sig) {
  const std::string s = fmt::format("{:.{}e}", std::fabs(v), sig - 1);
  const auto pos = s.find('e');
  KVLAB_ASSERT(pos != std::string::npos, "unexpected exponent format '{}'", s);
  return std::atoi(s.c_str() + pos + 1);
}

bool plain_range(double rounded_abs) { return rounded_abs >= 1e-3 && rounded_abs < 1e6; }

std::string exponent_suffix(int e) {
  return fmt::format("e{}{:02d}", e < 0 ? '-' : '+', std::abs(e));
}

}  // namespace

std::string fmt_fixed(double v, int decimals) {
  KVLAB_ASSERT(decimals >= 0 && decimals <= 17, "decimals {} out of range", decimals);
  if (!std::isfinite(v)) return non_finite(v);
  return strip_negative_zero(fmt::format("{:.{}f}", v, decimals));
}

std::string fmt_sig(double v, int sig) {
  KVLAB_ASSERT(sig >= 1 && sig <= 17, "significant digits {} out of range", sig);
  if (!std::isfinite(v)) return non_finite(v);
  if (v == 0.0) return "0";
  const int e = rounded_exponent(v, sig);
  const double rounded_abs = std::pow(10.0, e);  // magnitude class only
  if (plain_range(rounded_abs)) {
    const int decimals = std::max(0, sig - 1 - e);
    if (decimals > 0) return fmt_fixed(v, decimals);
    // Round to `sig` significant digits left of the point (4224 at 2 -> 4200).
    const double scale = std::pow(10.0, e - sig + 1);
    return fmt_fixed(std::nearbyint(v / scale) * scale, 0);
  }
  return strip_negative_zero(fmt::format("{:.{}e}", v, sig - 1));
}

std::string fmt_short(double v) {
  if (!std::isfinite(v)) return non_finite(v);
  return strip_negative_zero(fmt::format("{:.6g}", v));
}

std::string fmt_int(long long v) { return fmt::format("{}", v); }

std::string fmt_percent(double fraction, int decimals) {
  if (!std::isfinite(fraction)) return non_finite(fraction) + " %";
  std::string s = fmt::format("{:+.{}f}", fraction * 100.0, decimals);
  if (s.find_first_not_of("+-0.", 0) == std::string::npos) s.erase(0, 1);  // "+0.0" -> "0.0"
  return s + " %";
}

std::string fmt_pm_fixed(double mean, std::optional<double> hw, int decimals) {
  std::string s = fmt_fixed(mean, decimals) + " ± ";
  if (!hw) return s + kNoInterval;
  return s + fmt_fixed(*hw, decimals);
}

std::string fmt_sci(double v, int sig) {
  KVLAB_ASSERT(sig >= 1 && sig <= 17, "significant digits {} out of range", sig);
  if (!std::isfinite(v)) return non_finite(v);
  if (v == 0.0) return "0";
  return strip_negative_zero(fmt::format("{:.{}e}", v, sig - 1));
}

namespace {

std::string fmt_pm_impl(double mean, std::optional<double> hw, int hw_sig, int mean_sig, bool force_exp) {
  KVLAB_ASSERT(hw_sig >= 1 && mean_sig >= 1, "bad digit counts {}, {}", hw_sig, mean_sig);
  auto single = [&](double v) { return force_exp ? fmt_sci(v, mean_sig) : fmt_sig(v, mean_sig); };
  if (!hw) return single(mean) + " ± " + kNoInterval;
  if (!std::isfinite(mean) || !std::isfinite(*hw)) {
    return single(mean) + " ± " + fmt_sig(*hw, hw_sig);
  }
  if (*hw == 0.0) return single(mean) + " ± 0";
  const int eh = rounded_exponent(*hw, hw_sig);
  // The mean's magnitude class decides plain vs shared-exponent notation.
  const double ref = mean != 0.0 ? std::fabs(mean) : std::fabs(*hw);
  const int em = rounded_exponent(ref, mean_sig);
  constexpr int kMaxMeanSig = 8;  // never print more digits than this for the mean
  // Plain notation unless the mean is tiny/huge or the half-width reaches
  // 1e4 (then "732437 ± 136824" would print digits the interval does not support).
  if (!force_exp && plain_range(std::pow(10.0, em)) && eh < 4) {
    int decimals = std::max(0, hw_sig - 1 - eh);
    decimals = std::min(decimals, std::max(0, kMaxMeanSig - 1 - em));
    return fmt_fixed(mean, decimals) + " ± " + fmt_fixed(*hw, decimals);
  }
  const double unit = std::pow(10.0, em);
  int decimals = std::max(0, hw_sig - 1 - (eh - em));
  decimals = std::min(decimals, kMaxMeanSig - 1);
  return fmt::format("({} ± {}){}", fmt_fixed(mean / unit, decimals), fmt_fixed(*hw / unit, decimals),
                     exponent_suffix(em));
}

}  // namespace

std::string fmt_pm_sig(double mean, std::optional<double> hw, int hw_sig, int mean_sig) {
  return fmt_pm_impl(mean, hw, hw_sig, mean_sig, false);
}

std::string fmt_pm_sci(double mean, std::optional<double> hw, int hw_sig, int mean_sig) {
  return fmt_pm_impl(mean, hw, hw_sig, mean_sig, true);
}

std::string fmt_range_fixed(double lo, double hi, int decimals) {
  return fmt::format("[{}, {}]", fmt_fixed(lo, decimals), fmt_fixed(hi, decimals));
}

std::string escape_cell(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::size_t display_width(const std::string& utf8) {
  std::size_t n = 0;
  for (unsigned char c : utf8) {
    if ((c & 0xC0) != 0x80) ++n;  // count lead bytes only
  }
  return n;
}

Table::Table(std::vector<std::string> headers, std::vector<Align> aligns)
    : headers_(std::move(headers)), aligns_(std::move(aligns)) {
  KVLAB_ASSERT(!headers_.empty(), "a table needs at least one column");
  if (aligns_.empty()) aligns_.assign(headers_.size(), Align::kLeft);
  KVLAB_ASSERT(aligns_.size() == headers_.size(), "{} alignments for {} columns", aligns_.size(),
               headers_.size());
}

void Table::add_row(std::vector<std::string> cells) {
  KVLAB_ASSERT(cells.size() == headers_.size(), "row has {} cells, table has {} columns",
               cells.size(), headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::render() const {
  const std::size_t nc = headers_.size();
  std::vector<std::vector<std::string>> esc;
  esc.reserve(rows_.size() + 1);
  auto escape_row = [](const std::vector<std::string>& r) {
    std::vector<std::string> o;
    o.reserve(r.size());
    for (const auto& c : r) o.push_back(escape_cell(c));
    return o;
  };
  esc.push_back(escape_row(headers_));
  for (const auto& r : rows_) esc.push_back(escape_row(r));

  std::vector<std::size_t> width(nc, 3);  // "---" is the narrowest separator
  for (const auto& r : esc) {
    for (std::size_t j = 0; j < nc; ++j) width[j] = std::max(width[j], display_width(r[j]));
  }
  auto pad = [&](const std::string& s, std::size_t j) {
    const std::size_t w = display_width(s);
    const std::size_t fill = width[j] - w;
    switch (aligns_[j]) {
      case Align::kRight:
        return std::string(fill, ' ') + s;
      case Align::kCenter:
        return std::string(fill / 2, ' ') + s + std::string(fill - fill / 2, ' ');
      case Align::kLeft:
      default:
        return s + std::string(fill, ' ');
    }
  };
  auto line = [&](const std::vector<std::string>& r) {
    std::string l = "|";
    for (std::size_t j = 0; j < nc; ++j) {
      l += ' ';
      l += pad(r[j], j);
      l += " |";
    }
    return l + "\n";
  };
  std::string out = line(esc[0]);
  out += "|";
  for (std::size_t j = 0; j < nc; ++j) {
    std::string dash(width[j], '-');
    if (aligns_[j] == Align::kRight) {
      dash.back() = ':';
    } else if (aligns_[j] == Align::kCenter) {
      dash.front() = ':';
      dash.back() = ':';
    }
    out += " " + dash + " |";
  }
  out += "\n";
  for (std::size_t i = 1; i < esc.size(); ++i) out += line(esc[i]);
  return out;
}

void Document::heading(int level, const std::string& text) {
  KVLAB_ASSERT(level >= 1 && level <= 6, "heading level {}", level);
  blocks_.push_back(std::string(static_cast<std::size_t>(level), '#') + " " + text + "\n");
}

void Document::paragraph(const std::string& text) { blocks_.push_back(text + "\n"); }

void Document::bullets(const std::vector<std::string>& items) {
  std::string b;
  for (const auto& it : items) b += "- " + it + "\n";
  if (!b.empty()) blocks_.push_back(b);
}

void Document::table(const Table& t) { blocks_.push_back(t.render()); }

void Document::table(const Table& t, const std::string& note) {
  blocks_.push_back(t.render() + "\n*" + note + "*\n");
}

void Document::image(const std::string& alt, const std::string& relative_path) {
  blocks_.push_back("![" + alt + "](" + relative_path + ")\n");
}

void Document::code(const std::string& text, const std::string& lang) {
  std::string body = text;
  if (body.empty() || body.back() != '\n') body += '\n';
  blocks_.push_back("```" + lang + "\n" + body + "```\n");
}

void Document::raw(const std::string& block) {
  std::string b = block;
  while (!b.empty() && b.back() == '\n') b.pop_back();
  blocks_.push_back(b + "\n");
}

std::string Document::str() const {
  std::string out;
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    if (i) out += "\n";
    out += blocks_[i];
  }
  return out;
}

}  // namespace kvlab::report
