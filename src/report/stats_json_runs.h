// JSON renderers of the browsing commands (`kvlab list --json`, `show
// --json`, `diff --json`) and the JSON lines of `kvlab export --format
// jsonl`; the text they return ends in a newline.
//
// Not here: plain text (report/console_runs.h), option parsing (src/cli/).
#pragma once

#include <string>
#include <vector>

#include "report/console_runs.h"

namespace kvlab::report {

std::string experiments_json(const std::vector<store::ExperimentRow>& rows);
std::string runs_json(const std::vector<store::RunRow>& rows);
std::string run_json(const store::RunRow& r, const ProvenanceFields& provenance);
std::string experiment_json(const stats::ExperimentData& data, const std::vector<std::string>& streams,
                            const std::vector<std::string>& codecs);
std::string diff_json(const stats::ExperimentDiff& dd);
std::string runs_jsonl(const std::vector<store::RunRow>& rows);

}  // namespace kvlab::report
