// Linking an aggregate-only published import (stage075_qsweep*_n8.json: per
// stream summaries, no per-passage values, no weights or simulate_fp8 in its
// config) to the per-passage published import of the same runs
// (stage075_n8.json): the CLI offers every per-passage published experiment
// of the published database and keeps the one this accepts.
#pragma once

#include <string>

#include "report/reports.h"
#include "stats/study.h"

namespace kvlab::report {

// True when `candidate` (summary of a per-passage import, its params_json)
// holds the same runs as the aggregate-only `agg`: the same seqlen and host
// where both state them, and on every stream of the aggregate the candidate
// has the FP8 baseline and at least one of the aggregate's lattice codecs,
// with the same n and means equal to 1e-9 relative for FP8 and every shared
// codec. `why` (optional) gets the first mismatch.
bool same_published_runs(const PublishedInput& agg, const std::string& candidate_params_json,
                         const stats::StudySummary& candidate, std::string* why = nullptr);

}  // namespace kvlab::report
