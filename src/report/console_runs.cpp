// The browsing commands' text renderers; see console_runs.h.
#include "report/console_runs.h"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "report/console_format.h"

namespace kvlab::report {
namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char ch : s) o += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return o + "\"";
}

}  // namespace

std::string experiments_text(const std::vector<store::ExperimentRow>& rows) {
  std::string o = fmt::format("{:>4} {:<28} {:<10} {:>8} {:>7} {:>7} {:>7} {:>7}  {}\n", "id", "name", "origin",
                              "passages", "runs", "done", "queued", "failed", "created");
  for (const auto& r : rows)
    o += fmt::format("{:>4} {:<28} {:<10} {:>8} {:>7} {:>7} {:>7} {:>7}  {}\n", r.id, r.name, r.origin, r.passages,
                     r.counts.total(), r.counts.done, r.counts.queued, r.counts.failed, r.created_at);
  return o;
}

std::string runs_text(const std::vector<store::RunRow>& rows) {
  std::string o = fmt::format("{:>7} {:<16} {:<10} {:<22} {:<12} {:>3} {:<8} {:>8} {:>12}\n", "run", "experiment",
                              "passage", "stream", "codec", "rep", "status", "bits", "rel-MSE");
  for (const auto& r : rows)
    o += fmt::format("{:>7} {:<16} {:<10} {:<22} {:<12} {:>3} {:<8} {:>8} {:>12}{}\n", r.run_id, r.experiment,
                     r.passage, r.stream, r.codec, r.replicate, r.status,
                     r.bits_per_vector ? console_num(*r.bits_per_vector, 6) : "-", r.rel_mse ? console_num(*r.rel_mse, 6) : "-",
                     r.error ? "  error: " + *r.error : "");
  return o;
}

std::string run_text(const store::RunRow& r, const ProvenanceFields& provenance) {
  std::string o = fmt::format("run {}: experiment {}, passage {} ({}), stream {}, codec {}, replicate {}\n", r.run_id,
                              r.experiment, r.passage, r.passage_hash.substr(0, 16), r.stream, r.codec, r.replicate);
  o += fmt::format("  status {}, attempts {}{}\n", r.status, r.attempts, r.error ? ", last error: " + *r.error : "");
  if (r.rel_mse)
    o += fmt::format("  bits_per_vector {}, rel_mse {}, cos_sim {}, n_vectors {}, dim {}\n",
                     console_num(*r.bits_per_vector, 8), console_num(*r.rel_mse, 8), console_num(*r.cos_sim, 8),
                     r.n_vectors ? std::to_string(*r.n_vectors) : "-", r.dim ? std::to_string(*r.dim) : "-");
  for (const auto& [k, v] : provenance) o += fmt::format("  provenance.{} = {}\n", k, v);
  return o;
}

std::string experiment_text(const stats::ExperimentData& data, const std::vector<std::string>& streams,
                            const std::vector<std::string>& codecs) {
  const auto& i = data.info;
  std::string o = fmt::format("experiment {} (id {})\n  origin {}, created {}\n  spec hash {}\n", i.name, i.id,
                              i.origin, i.created_at, i.spec_hash);
  o += fmt::format("  runs: {} done, {} queued, {} running, {} failed\n", i.counts.done, i.counts.queued,
                   i.counts.running, i.counts.failed);
  o += fmt::format("  streams: {}\n  codecs: {}\n", fmt::join(streams, ", "), fmt::join(codecs, ", "));
  std::string lm;
  for (const auto& [s, n] : i.layer_mix) lm += fmt::format("{}{}={:g}", lm.empty() ? "" : ", ", s, n);
  o += fmt::format("  layer mix: {}\n", lm.empty() ? "none" : lm);
  o += fmt::format("  parameters: {}\n", i.params_json);
  o += fmt::format("  passages ({}):\n", data.passages.size());
  for (const auto& p : data.passages)
    o += fmt::format("    {:>3} {:<14} {}  {}\n", p.idx, p.name, p.content_hash.substr(0, 16), p.source);
  return o;
}

std::string diff_text(const stats::ExperimentDiff& dd) {
  std::string o = fmt::format("A = {}, B = {}: {} ({} shared passages)\n", dd.name_a, dd.name_b,
                              dd.paired ? "same passages: paired by passage" : "different passages: Welch's t",
                              dd.shared_passages);
  o += fmt::format("  {:<22} {:<12} {:>24} {:>24} {:>22} {:>10}\n", "stream", "codec", "rel-MSE A", "rel-MSE B",
                   dd.paired ? "A/B (paired)" : "A/B (means)", "p");
  for (const auto& x : dd.cells)
    o += fmt::format("  {:<22} {:<12} {:>24} {:>24} {:>22} {:>10}{}\n", x.stream, x.codec, console_ci(x.a), console_ci(x.b),
                     x.paired_ratio ? console_ci_fixed(*x.paired_ratio, 4) : fmt::format("{:.4f}", x.ratio),
                     x.difference.p_value ? fmt::format("{:.3g}", *x.difference.p_value) : "-",
                     x.difference.significant() ? " *" : "");
  o += "  (* : the 95 % interval of the difference A - B excludes 0)\n";
  if (!dd.only_a.empty()) o += fmt::format("only in A: {}\n", fmt::join(dd.only_a, "; "));
  if (!dd.only_b.empty()) o += fmt::format("only in B: {}\n", fmt::join(dd.only_b, "; "));
  return o;
}

std::string runs_csv(const std::vector<store::RunRow>& rows) {
  std::string o =
      "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim,n_vectors,dim,passage_hash,replicate,experiment,"
      "run_id\n";
  for (const auto& r : rows)
    o += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(r.passage), r.stream, r.codec,
                     r.q ? std::to_string(*r.q) : "", fmt::format("{:.17g}", r.bits_per_vector.value_or(0)),
                     fmt::format("{:.17g}", r.rel_mse.value_or(0)), fmt::format("{:.17g}", r.cos_sim.value_or(0)),
                     r.n_vectors ? std::to_string(*r.n_vectors) : "", r.dim ? std::to_string(*r.dim) : "",
                     r.passage_hash, r.replicate, csv_field(r.experiment), r.run_id);
  return o;
}

}  // namespace kvlab::report
