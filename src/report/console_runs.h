// Plain-text renderers of the browsing commands: `kvlab list` (experiments
// or runs), `kvlab show` (one experiment or one run), `kvlab diff` and the
// CSV of `kvlab export`. They take the rows store/ read (or the
// ExperimentDiff stats/ computed) and return the text the command prints.
//
// Not here: JSON (report/stats_json_runs.h), option parsing (src/cli/).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "stats/compare.h"
#include "stats/experiment_data.h"
#include "store/query.h"

namespace kvlab::report {

using ProvenanceFields = std::vector<std::pair<std::string, std::string>>;

std::string experiments_text(const std::vector<store::ExperimentRow>& rows);
std::string runs_text(const std::vector<store::RunRow>& rows);
std::string run_text(const store::RunRow& r, const ProvenanceFields& provenance);
std::string experiment_text(const stats::ExperimentData& data, const std::vector<std::string>& streams,
                            const std::vector<std::string>& codecs);
std::string diff_text(const stats::ExperimentDiff& dd);
// Header + one line per run; the first seven columns are the `kvlab import csv` format.
std::string runs_csv(const std::vector<store::RunRow>& rows);

}  // namespace kvlab::report
