// Pieces shared by the findings and max-usable-CR reports: stream labels,
// number styles used across tables and the provenance section (the plots are
// in plots.h). Internal to src/report/ (the public entry points are in reports.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "report/markdown.h"
#include "report/reports.h"
#include "stats/study.h"

namespace kvlab::report::detail {

// "SWA" / "CSA" / "HCA" for the three V4 streams, the name itself otherwise.
std::string stream_short(const std::string& stream);
// "`sliding_window_kv` (SWA)".
std::string stream_cell(const std::string& stream);
// "E8 Q=38" for "e8:q=38", "FP8 per-64" for fp8_per64.
std::string codec_label(const std::string& codec);
// A rate family's variant in the words of codec_label without the rate:
// "E8", "INT/64 fp16", "H-INT/64 ue8m0", "H-Lloyd"; the variant itself when
// unknown.
std::string family_label(const std::string& variant);
// The rate of a variant as codec_label writes it: "Q=38" (lattice) or "4b"
// (bits of a scalar codec).
std::string rate_label(const std::string& variant, int rate);
// One sentence per codec family among `codecs` (canonical specs): the label
// used in the tables and what the family stores, from the codec-family
// table; "" when `codecs` is empty.
std::string codec_glossary(const std::vector<std::string>& codecs);

// Number styles: ratios to 3 decimals, rel-MSE with a 2-significant-digit
// half-width, bits as integers when integral, CRs to 3 decimals with "x".
std::string fmt_ratio(const stats::Summary& s);
std::string fmt_relmse(const stats::Summary& s);
// Decimal exponent that puts the largest |value| in [1, 10): a column of
// rel-MSE values printed in units of 10^e reads without exponents.
int column_exponent(const std::vector<double>& values);
// rel-MSE in units of 10^e: "1.051 ± 0.037" for (1.051 ± 0.037)e-3 at e = -3.
std::string fmt_relmse_scaled(const stats::Summary& s, int e);
// " (x 1e-3)" for a column header; "" for e = 0.
std::string unit_suffix(int e);
std::string fmt_bits(double bits);
std::string fmt_cr(std::optional<double> cr);
std::string fmt_cr(double cr);
// "[0.785, 0.795]" or "n/a (n < 2)".
std::string fmt_interval(const stats::Summary& s, int decimals = 3);

// A JSON value as compact text with sorted keys; "" for null/absent.
std::string json_value_text(const std::string& params_json, const std::string& key);

// The "Provenance" section (experiment, run dates, software, device, host,
// weights, database hash).
void provenance_section(Document& d, const stats::StudySummary& s, const ReportProvenance& p);

// Standard note under the generated-file header.
std::string generated_note(const std::string& command);

}  // namespace kvlab::report::detail
