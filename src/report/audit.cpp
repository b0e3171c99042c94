// The findings report's audit section; see audit.h.
#include "report/audit.h"

#include <fmt/format.h>

#include "report/sections.h"

namespace kvlab::report::detail {

void audit_section(Document& d, const stats::StudySummary& s) {
  d.heading(2, "Audit: is each stream Gaussian enough for the lattice codecs?");
  if (s.audits.empty()) {
    d.paragraph("No audit rows were recorded for this experiment.");
    return;
  }
  d.paragraph(
      "The four statistics of the published audit (SPEC section 4), mean ± 95 % CI over passages. A "
      "stream fires a gate when the mean exceeds it; the passage column counts passages above the "
      "gate. `rms_wasserstein2_over_sigma_per_dim` keeps its published name but is a tail-quantile "
      "ratio (p99 of the standardised rotated coordinates / 2.326), not a Wasserstein distance.");
  Table t({"stream", "vectors", "metric", "gate", "mean ± 95 % CI", "passages above gate", "fires"},
          {Align::kLeft, Align::kRight, Align::kLeft, Align::kRight, Align::kRight, Align::kRight,
           Align::kLeft});
  for (const auto& a : s.audits) {
    for (const auto& m : a.metrics) {
      t.add_row({stream_cell(a.stream), fmt_int(a.n_vectors), "`" + m.metric + "`", fmt_short(m.gate),
                 fmt_pm_sig(m.value.mean, m.value.ci95_hw, 2, 4),
                 fmt::format("{} / {}", m.passages_firing, a.n_passages), m.fires ? "yes" : "no"});
    }
  }
  d.table(t);
}

}  // namespace kvlab::report::detail
