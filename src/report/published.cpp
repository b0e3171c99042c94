// "Published vs this run" section; see published.h.
#include "report/published.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "report/sections.h"

namespace kvlab::report::detail {

namespace {

nlohmann::json parse_or_empty(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    if (j.is_object()) return j;
  } catch (const nlohmann::json::exception&) {
  }
  return nlohmann::json::object();
}

std::string text_at(const nlohmann::json& j, const char* a, const char* b) {
  if (!j.contains(a) || !j[a].is_object() || !j[a].contains(b)) return "";
  const auto& v = j[a][b];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string interval_text(const PublishedRatio& r) {
  if (!r.found) return "not in the published experiment";
  if (r.lo && r.hi) return fmt::format("{} [{}, {}]", fmt_fixed(r.mean, 3), fmt_fixed(*r.lo, 3), fmt_fixed(*r.hi, 3));
  return fmt_fixed(r.mean, 3) + " (no interval)";
}

}  // namespace

PublishedRatio published_ratio(const PublishedInput& pub, const std::string& stream, const std::string& codec) {
  PublishedRatio r;
  if (pub.summary) {
    const auto* cell = pub.summary->find_cell(stream, codec);
    if (!cell || !cell->ratio_vs_fp8) return r;
    const auto& x = *cell->ratio_vs_fp8;
    r.found = true;
    r.mean = x.mean;
    r.n = x.n;
    r.paired = true;
    if (x.ci95_hw) {
      r.lo = x.mean - *x.ci95_hw;
      r.hi = x.mean + *x.ci95_hw;
    }
    r.how = fmt::format("paired per passage, n = {}", x.n);
    return r;
  }
  const auto j = parse_or_empty(pub.params_json);
  if (!j.contains("published_aggregate")) return r;
  const auto& agg = j["published_aggregate"];
  if (!agg.contains(stream) || !agg[stream].contains(codec) || !agg[stream].contains("fp8_per64")) return r;
  const double c = agg[stream][codec]["rel_mse"]["mean"].get<double>();
  const double f = agg[stream]["fp8_per64"]["rel_mse"]["mean"].get<double>();
  if (!(f > 0)) return r;
  r.found = true;
  r.mean = c / f;
  r.n = agg[stream][codec]["rel_mse"].value("n", 0);
  r.how = fmt::format("ratio of means, n = {} (the file has no per-passage values: no paired CI)", r.n);
  return r;
}

void published_vs_run_section(Document& d, const stats::StudySummary& run, const std::optional<PublishedInput>& pub,
                              const std::string& codec) {
  d.heading(2, "Published vs this run");
  if (!pub) {
    d.paragraph(
        "No published experiment was given (`--published-db FILE --published-experiment NAME`; import the "
        "published files first with `kvlab import published`), so this report does not set the run beside the "
        "published study.");
    return;
  }
  d.paragraph(fmt::format(
      "{} / baseline rel-MSE ratio per stream in this run (`{}`, baseline `{}`) and in the published experiment "
      "`{}` (database `{}`, baseline `fp8_per64`), each with its 95 % interval. *Overlap*: whether the two "
      "intervals share a point (n/a when either has none). Overlapping intervals do not make the studies agree: "
      "they differ in the causes listed under the table.",
      codec_label(codec), run.experiment.name, run.baseline, pub->experiment, pub->database_file));
  Table t({"stream", "this run: ratio [95 % CI]", "published: ratio [95 % CI]", "published interval from",
           "overlap"},
          {Align::kLeft, Align::kRight, Align::kRight, Align::kLeft, Align::kLeft});
  for (const auto& stream : run.streams) {
    const auto* cell = run.find_cell(stream, codec);
    PublishedRatio mine;
    if (cell && cell->ratio_vs_fp8) {
      const auto& x = *cell->ratio_vs_fp8;
      mine.found = true;
      mine.mean = x.mean;
      if (x.ci95_hw) {
        mine.lo = x.mean - *x.ci95_hw;
        mine.hi = x.mean + *x.ci95_hw;
      }
    }
    const auto p = published_ratio(*pub, stream, codec);
    std::string overlap = kNotAvailable;
    if (mine.lo && p.lo) overlap = (*mine.lo <= *p.hi && *p.lo <= *mine.hi) ? "yes" : "no";
    t.add_row({stream_cell(stream), mine.found ? interval_text(mine) : "not measured", interval_text(p),
               p.found ? p.how : kNotAvailable, overlap});
  }
  d.table(t);
  const auto rj = parse_or_empty(run.experiment.params_json);
  const auto pj = parse_or_empty(pub->params_json);
  auto or_unstated = [](const std::string& v) { return v.empty() ? std::string("not stated") : v; };
  std::vector<std::string> causes;
  causes.push_back(fmt::format("Weights: this run `{}`; published `{}` (weights kind {}).",
                               or_unstated(rj.contains("weights") ? rj["weights"].dump() : ""),
                               or_unstated(pj.contains("weights") ? pj["weights"].dump() : ""),
                               or_unstated(text_at(pj, "weights", "kind"))));
  causes.push_back(fmt::format("Host (hidden states): this run `{}`; published `{}`.",
                               or_unstated(text_at(rj, "host", "spec")), or_unstated(text_at(pj, "host", "spec"))));
  causes.push_back(fmt::format(
      "Write-path mode: this run `{}`; published: the published harness (SPEC.md section 2: main KV RoPE base "
      "10000 without YaRN on every layer, its own FP8 with amax/448 scales).",
      run.experiment.write_path.empty() ? "published" : run.experiment.write_path));
  causes.push_back(
      "FP8 scale precision: the published GPU run computed the FP8 block scale in bf16 and rounded the FP8 output "
      "to bf16 before its rel-MSE; kvlab computes in fp32 and stores the scale as uf16 (fp8_per64) or UE8M0 "
      "(v4_native).");
  causes.push_back(fmt::format("Baseline format: this run `{}`; published `fp8_per64` (4224 bits, fp16 scales, "
                               "RoPE dims in FP8).",
                               run.baseline));
  causes.push_back(fmt::format(
      "The write path's own FP8 simulation: this run simulate_fp8 = {}; published simulate_fp8 = {} (with it on, "
      "the stream already lies near the FP8 grid and the baseline's error shrinks).",
      or_unstated(text_at(rj, "weights", "simulate_fp8")), or_unstated(text_at(pj, "weights", "simulate_fp8"))));
  d.paragraph("Known causes of a difference:");
  d.bullets(causes);
}

}  // namespace kvlab::report::detail
