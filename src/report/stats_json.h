// JSON renderers of the query commands (`kvlab stats --json`, `best_q
// --json`, `best --json`, `status --json`): the structs src/stats/ computed,
// as the documented JSON, returned as text ending in a newline.
//
// Not here: plain text (report/console.h), option parsing (src/cli/).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/console.h"
#include "stats/best.h"
#include "stats/study.h"
#include "store/decisions.h"
#include "store/runs.h"

namespace kvlab::report {

// The value, or null.
template <class T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// {"n", "mean", "sd", "ci95_hw"}; a non-finite mean and absent values are null.
nlohmann::json summary_json(const stats::Summary& s);

// `kvlab stats --json`: rows_kind "cells" (with every metric and its paired
// ratio to the baseline), "layer_weighted" or "audit".
std::string stats_json(const stats::StudySummary& s, const std::string& rows_kind, bool per_passage);
std::string best_q_json(const stats::StudySummary& s, const BestQSelection& sel);
std::string best_json(const stats::BestResult& b);
// `kvlab stats --json --rows decisions`: the sequential_decisions rows.
std::string decisions_json(const std::vector<store::DecisionRow>& rows);
std::string status_json(const std::vector<store::StatusRow>& rows);

}  // namespace kvlab::report
