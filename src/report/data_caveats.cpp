// Data caveats from the recorded provenance; see data_caveats.h.
#include "report/data_caveats.h"

#include <cctype>

#include "report/sections.h"

namespace kvlab::report::detail {

bool any_mentions(const std::vector<std::string>& texts, const std::string& word) {
  std::string w = word;
  for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& x : texts) {
    std::string l = x;
    for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (l.find(w) != std::string::npos) return true;
  }
  return false;
}

std::vector<std::string> host_texts(const ReportProvenance& prov, const std::string& params_json) {
  std::vector<std::string> v = prov.host_kinds;
  v.insert(v.end(), prov.hosts.begin(), prov.hosts.end());
  v.push_back(json_value_text(params_json, "host"));
  return v;
}

bool host_repeats_words(const ReportProvenance& prov, const std::string& params_json) {
  return any_mentions(host_texts(prov, params_json), "repeated to seqlen");
}

long long count_words(const std::string& text) {
  long long n = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

std::vector<PassageWords> passage_words(const std::vector<store::PassageText>& passages,
                                        std::optional<long long> seqlen, bool words_are_tokens) {
  std::vector<PassageWords> out;
  for (const auto& p : passages) {
    PassageWords w;
    w.name = p.name;
    w.source = p.source;
    if (p.text) w.words = count_words(*p.text);
    if (w.words && *w.words > 0 && seqlen && words_are_tokens) {
      w.repeated = *w.words < *seqlen;
      if (*w.repeated) w.fills = static_cast<double>(*seqlen) / static_cast<double>(*w.words);
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::string random_weights_caveat() {
  return "Random V4 weights (seeded init), not the trained V4-Flash checkpoint: the streams have the statistics of "
         "random projections, so no ratio, verdict or frontier position here need carry over to the real KV cache.";
}

std::string synthetic_host_caveat() {
  return "Synthetic hidden states (seeded) stand in for a host LLM's token embeddings: a passage's words only pick "
         "which synthetic token vectors occur (see the host parameters), so the passages differ as draws of a "
         "random process, not as texts, and words shared by several passages map to the same token vectors.";
}

}  // namespace kvlab::report::detail
