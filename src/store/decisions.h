// The table sequential_decisions (schema 5): the threshold decisions of a
// sequential sweep (`kvlab run --until-resolved`) and how many passages each
// needed, written by experiment/sequential.cpp after every evaluation and
// read by reports and tests.
//
// Not here: what a decision is (stats/sequential.h), when it counts as
// resolved or what n_needed is (experiment/sequential.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

namespace kvlab::store {

struct DecisionRow {
  std::string stream;
  std::string codec;
  std::string metric;
  std::string threshold;
  double factor = 0.0;
  double alpha = 0.0;
  int n_evaluated = 0;
  std::optional<double> ratio_mean;
  std::optional<double> ratio_ci95_hw;
  std::optional<double> p_holm;
  std::string verdict;            // "below" | "above" | "unresolved"
  std::optional<int> n_needed;    // none while unresolved
};

// Inserts or replaces the rows of one experiment, in one transaction.
void record_decisions(SQLite::Database& db, std::int64_t experiment_id, const std::vector<DecisionRow>& rows);
// The rows of one experiment ordered by stream, codec, metric, threshold.
std::vector<DecisionRow> load_decisions(SQLite::Database& db, std::int64_t experiment_id);

}  // namespace kvlab::store
