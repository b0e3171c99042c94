// The audit section of the findings report: the published audit statistics
// per stream against their gates. Internal to src/report/.
#pragma once

#include "report/markdown.h"
#include "stats/study.h"

namespace kvlab::report::detail {

// "Audit: is each stream Gaussian enough for the lattice codecs?": one row
// per (stream, audit metric) with the gate, mean ± 95 % CI over passages,
// the passages above the gate and whether the stream fires.
void audit_section(Document& d, const stats::StudySummary& s);

}  // namespace kvlab::report::detail
