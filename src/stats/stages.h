// The ten stages of stats::summarize() (study.h), exposed so that each can
// be tested on hand-made inputs. summarize() runs them in this order on one
// Ctx; each stage reads what the earlier ones wrote into the Ctx and its
// StudySummary and fills its own part:
//   1 group_rows             data.results -> cell_map (replicates averaged), n_passages
//   2 build_cells            cell_map -> out.streams, families, cells (every metric, paired ratios), indexes
//   3 summarize_audits       data.audits -> out.audits
//   4 layer_weights          data.info.layer_mix -> out.weights
//   5 layer_weighted_ratios  out.cells, out.weights -> out.layer_weighted
//   6 monotonicity           swept cells + cell_map -> out.monotonicity
//   7 best_points            swept cells vs the baseline cell -> out.best_q
//   8 strategies             out.best_q, out.weights -> out.strategies
//   9 suggestions            out.best_q + opt.bits_of -> out.suggestions
//  10 pareto                 out.cells -> out.pareto
// Stages 5 and 7-10 need only out.cells (and out.weights / out.best_q):
// a test may fill those by hand and call index_cells() first.
//
// Not here: SQL, formatting.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stats/study.h"

namespace kvlab::stats::stages {

// Per-passage value of one (stream, codec) cell: replicates averaged.
struct PassageValue {
  std::map<std::string, double> sum;  // metric -> sum over replicates, then mean
  std::map<std::string, int> count;
  double get(const std::string& m) const {
    const auto it = sum.find(m);
    return it == sum.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
  }
  bool has(const std::string& m) const { return sum.count(m) != 0; }
};

// The raw rows of one (stream, codec) cell.
struct CellData {
  std::string stream;
  CodecSpec spec;
  std::string codec;
  double bits = 0.0;
  bool bits_consistent = true;
  std::optional<int> dim;
  std::map<std::int64_t, PassageValue> by_passage;  // passage id -> averaged values
};

// Everything the stages share: the input, the options and the cells' raw data.
struct Ctx {
  const ExperimentData& data;
  const SummaryOptions& opt;
  StudySummary& out;
  std::map<std::pair<std::string, std::string>, CellData> cell_map;            // (stream, codec)
  std::map<std::pair<std::string, std::string>, const CellStats*> cell_index;  // (stream, codec) -> out.cells
  std::map<std::string, const CellData*> base_of_stream;
  // Swept rates per (stream, variant), ascending.
  std::map<std::pair<std::string, std::string>, std::vector<const CellStats*>> swept;
  bool stream_selected(const std::string& s) const {
    return opt.streams.empty() || std::find(opt.streams.begin(), opt.streams.end(), s) != opt.streams.end();
  }
};

// The baseline: opt.baseline, else the experiment's, else fp8_per64 when
// recorded, else the first baseline-family codec recorded.
std::string choose_baseline(const ExperimentData& data, const SummaryOptions& opt);
// Rebuilds cell_index and swept from out.cells (build_cells calls it).
void index_cells(Ctx& x);

void group_rows(Ctx& x);             // 1
void build_cells(Ctx& x);            // 2
void summarize_audits(Ctx& x);       // 3
void layer_weights(Ctx& x);          // 4
void layer_weighted_ratios(Ctx& x);  // 5
void monotonicity(Ctx& x);           // 6
void best_points(Ctx& x);            // 7
void strategies(Ctx& x);             // 8
void suggestions(Ctx& x);            // 9
void pareto(Ctx& x);                 // 10

}  // namespace kvlab::stats::stages
