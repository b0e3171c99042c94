// What the recorded data says about an experiment's passages, as report
// text: per passage how many words it has against seqlen (whether the host
// repeated the text to fill the sequence), and the random-weights and
// synthetic-host caveat sentences (whether they apply: summary.h
// data_source). Keyed on recorded data only: the host descriptions of the
// provenance and params_json, and the passages' own texts.
//
// Used by the frontier report.
// Internal to src/report/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "report/reports.h"
#include "store/passage_sets.h"

namespace kvlab::report::detail {

// Case-insensitive: does any of `texts` contain `word`?
bool any_mentions(const std::vector<std::string>& texts, const std::string& word);

// The recorded host descriptions: the provenance lists plus params_json's
// "host" object as text.
std::vector<std::string> host_texts(const ReportProvenance& prov, const std::string& params_json);

// The host cuts a passage's text into whitespace words and repeats them to
// fill seqlen (the synthetic host's recorded "tokens_from_text").
bool host_repeats_words(const ReportProvenance& prov, const std::string& params_json);

// Whitespace-separated words, counted as the synthetic host cuts them.
long long count_words(const std::string& text);

struct PassageWords {
  std::string name;
  std::string source;
  std::optional<long long> words;  // none: no text recorded
  // Whether the host repeated the text to fill seqlen; none when unknown
  // (no text, no seqlen, or a host that does not map words to tokens).
  std::optional<bool> repeated;
  double fills = 0.0;  // seqlen / words when repeated (how many times the text is used)
};

std::vector<PassageWords> passage_words(const std::vector<store::PassageText>& passages,
                                        std::optional<long long> seqlen, bool words_are_tokens);

// Caveat sentences (the same facts as the FINDINGS reports' caveats).
std::string random_weights_caveat();
std::string synthetic_host_caveat();

}  // namespace kvlab::report::detail
