// Shared pieces of the summary-first report layout; see summary.h.
#include "report/summary.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "report/sections.h"

namespace kvlab::report::detail {

namespace {

bool mentions(const std::vector<std::string>& v, const std::string& word) {
  for (const auto& x : v) {
    std::string l = x;
    for (char& ch : l) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (l.find(word) != std::string::npos) return true;
  }
  return false;
}

std::string mix_text(const stats::StudySummary& s) {
  std::string mix;
  for (const auto& w : s.weights) {
    mix += (mix.empty() ? "" : ", ") + fmt::format("{} {}", fmt_short(w.layers), stream_short(w.stream));
  }
  return mix;
}

}  // namespace

DataSource data_source(const stats::StudySummary& s, const ReportProvenance& prov) {
  std::vector<std::string> weights = prov.weights;
  weights.push_back(json_value_text(s.experiment.params_json, "weights"));
  std::vector<std::string> host = prov.host_kinds;
  for (const auto& h : prov.hosts) host.push_back(h);
  host.push_back(json_value_text(s.experiment.params_json, "host"));
  DataSource d;
  d.random_weights = mentions(weights, "random");
  d.synthetic_host = mentions(host, "synthetic");
  d.published_import = s.experiment.origin == "published";
  return d;
}

std::string data_source_text(const DataSource& d) {
  if (d.published_import) return "the published study's KV streams (trained V4-Flash weights, Qwen2-0.5B host)";
  std::string t = "the KV streams of kvlab's V4 write path";
  t += d.random_weights ? " with random (seeded) weights" : " with the loaded checkpoint's weights";
  t += d.synthetic_host ? " on synthetic hidden states" : " on the host model's hidden states";
  if (d.random_weights || d.synthetic_host) t += " (not the trained V4-Flash cache)";
  return t;
}

std::string baseline_label(const stats::StudySummary& s) {
  return s.baseline.empty() ? std::string("the baseline") : codec_label(s.baseline);
}

std::string baseline_format(const stats::StudySummary& s) {
  std::string bits;
  for (const auto& stream : s.streams) {
    if (const auto* c = s.find_cell(stream, s.baseline)) {
      bits = fmt_bits(c->bits_per_vector);
      break;
    }
  }
  const std::string b = bits.empty() ? "" : fmt::format(", {} bits per vector", bits);
  if (s.baseline == "fp8_per64") {
    return "`fp8_per64` (the published stand-in: every dim in e4m3 with one fp16 scale per 64 dims, RoPE dims "
           "included" + b + ")";
  }
  if (s.baseline == "v4_native") {
    return "`v4_native` (V4's stored 584-byte record: 448 nope dims in e4m3 with UE8M0 scales per 64, 64 RoPE "
           "dims in bf16" + b + ")";
  }
  return "`" + s.baseline + "`" + (b.empty() ? "" : " (" + b.substr(2) + ")");
}

std::string write_path_of(const stats::StudySummary& s) {
  return s.experiment.write_path.empty() ? std::string("published") : s.experiment.write_path;
}

std::optional<V4Memory> experiment_memory(const stats::StudySummary& s, std::string* context_source) {
  if (s.experiment.layer_mix.empty()) return std::nullopt;
  double context = 0;
  std::string source;
  if (const auto f = parse_forecast(s.experiment.params_json)) {
    context = f->context_tokens;
    source = fmt::format("the forecast context of {} tokens", fmt_bits(context));
  } else if (const auto sl = params_seqlen(s.experiment.params_json)) {
    context = static_cast<double>(*sl);
    source = fmt::format("the seqlen of {} tokens (the spec gives no forecast context)", *sl);
  } else {
    return std::nullopt;
  }
  if (context_source) *context_source = source;
  return v4_memory(s.experiment.layer_mix, context);
}

std::optional<double> codec_memory_bits(const stats::StudySummary& s, const V4Memory& m, const std::string& codec) {
  std::map<std::string, double> bits;
  for (const auto& st : m.streams) {
    if (const auto* c = s.find_cell(st.stream, codec)) bits[st.stream] = c->bits_per_vector;
  }
  return memory_weighted_bits(m, bits);
}

std::string memory_weighting_note(const V4Memory& m, const std::string& context_source) {
  std::string shares;
  for (const auto& st : m.streams) {
    shares += (shares.empty() ? "" : ", ") + fmt::format("{} {}", stream_short(st.stream), fmt_sig(m.share(st.stream), 3));
  }
  return fmt::format(
      "Bits over several streams are weighted by stored bytes per token (the same rule in FINDINGS and "
      "MAX_USABLE_CR): each stream counts with its share of the vectors V4 stores per token of context (window of "
      "128 tokens on every layer, S/4 CSA and S/128 HCA entries; SPEC-V4-ATTENTION.md section 5), at {}: {}. "
      "Weighted bits x stored vectors per token / 8 = stored KV bytes per token of the compressed streams, so the "
      "weighted CR is their memory ratio; the CSA indexer keys, which no codec here compresses, are not counted in "
      "it (the deployment forecast adds them).",
      context_source, shares);
}

std::vector<const MetricInfo*> extra_metrics(const stats::StudySummary& s, const std::string& codec) {
  std::vector<const MetricInfo*> out;
  for (const auto& m : metric_table()) {
    if (m.kind != MetricKind::kDistortion || std::string(m.name) == "rel_mse") continue;
    bool any = false;
    for (const auto& c : s.cells) {
      if ((codec.empty() || c.codec == codec) && c.metric_ratio(m.name)) any = true;
    }
    if (any) out.push_back(&m);
  }
  return out;
}

std::string ratio_with_ci(const stats::Summary& r) {
  if (!r.ci95_hw) return fmt_fixed(r.mean, 3) + " (n < 2)";
  return fmt_fixed(r.mean, 3) + " " + fmt_interval(r);
}

std::optional<BitClass> bit_class(const stats::BitsFn& bits_of, const std::string& family, int q, int dim) {
  if (!bits_of) return std::nullopt;
  try {
    const double bits = bits_of(family, q, dim);
    BitClass c{q, q};
    for (int k = 0; k < 256 && c.lo > 1 && bits_of(family, c.lo - 1, dim) == bits; ++k) --c.lo;
    for (int k = 0; k < 256 && bits_of(family, c.hi + 1, dim) == bits; ++k) ++c.hi;
    return c;
  } catch (const Error&) {
    return std::nullopt;
  }
}

CiSafeCheck ci_safe_check(const stats::CellStats& codec, const stats::CellStats& base, double m) {
  CiSafeCheck c;
  if (!codec.rel_mse.ci95_hw) return c;
  c.has_interval = true;
  c.used = codec.rel_mse.mean + *codec.rel_mse.ci95_hw;
  c.budget = m * base.rel_mse.mean;
  c.fits = c.used <= c.budget;
  return c;
}

const stats::CellStats* dominated_by(const stats::StudySummary& s, const stats::CellStats& cell) {
  const stats::CellStats* best = nullptr;
  for (const auto& o : s.cells) {
    if (&o == &cell || o.stream != cell.stream || o.codec == s.baseline) continue;
    if (o.bits_per_vector > cell.bits_per_vector || !(o.rel_mse.mean < cell.rel_mse.mean)) continue;
    if (!best || o.rel_mse.mean < best->rel_mse.mean) best = &o;
  }
  return best;
}

namespace {

// The passages' independence caveat of a text host that repeats a passage's
// words to fill seqlen: says how many passages were actually repeated (from
// the stored texts' word counts) and why the t intervals are likely too
// narrow either way.
std::string repetition_caveat(const stats::StudySummary& s) {
  const auto seqlen = params_seqlen(s.experiment.params_json);
  std::int64_t counted = 0, repeated = 0, min_words = 0, max_words = 0;
  for (const auto& p : s.passages) {
    if (!p.words) continue;
    min_words = counted == 0 ? *p.words : std::min(min_words, *p.words);
    max_words = counted == 0 ? *p.words : std::max(max_words, *p.words);
    ++counted;
    if (seqlen && *p.words < *seqlen) ++repeated;
  }
  std::string rep;
  if (!seqlen || counted == 0) {
    rep = "each passage's text is cut into whitespace words and, when shorter than seqlen, repeated to fill it "
          "(the word counts were not recorded)";
  } else if (repeated == 0) {
    rep = fmt::format("each passage's text is cut into whitespace words; every one of the {} texts has at least "
                      "{} words ({} to {}), so none is repeated",
                      counted, fmt_int(*seqlen), fmt_int(min_words), fmt_int(max_words));
  } else {
    rep = fmt::format("each passage's text is cut into whitespace words and, when shorter, repeated to fill its {} "
                      "tokens: {} of the {} texts are shorter ({} to {} words; the shortest repeats about {} times)",
                      fmt_int(*seqlen), repeated, counted, fmt_int(min_words), fmt_int(max_words),
                      fmt_int(static_cast<long long>(
                          std::llround(static_cast<double>(*seqlen) / static_cast<double>(std::max<std::int64_t>(min_words, 1))))));
  }
  return "The passages are not independent samples: " + rep +
         ", words shared by several passages map to the same synthetic token vectors (one vocabulary), and every "
         "passage goes through the same weights. The t intervals treat the passages as independent draws, so they "
         "are likely too narrow.";
}

}  // namespace

void caveats_section(Document& d, const stats::StudySummary& s, const ReportProvenance& prov,
                     const std::optional<PublishedInput>& pub) {
  d.heading(2, "Caveats");
  const auto& e = s.experiment;
  std::vector<std::string> items;
  std::vector<std::string> weights = prov.weights;
  weights.push_back(json_value_text(e.params_json, "weights"));
  std::vector<std::string> host = prov.host_kinds;
  for (const auto& h : prov.hosts) host.push_back(h);
  host.push_back(json_value_text(e.params_json, "host"));
  const DataSource src = data_source(s, prov);
  const std::string seed_text = json_value_text(e.params_json, "weights");
  if (e.origin == "published") {
    items.push_back(
        "Imported from the published study's JSON, not re-run by kvlab: the rel-MSE values, audits and bit counts "
        "are the published ones (published bit accounting); only the statistics were recomputed from the "
        "per-passage rows.");
  }
  items.push_back(fmt::format(
      "What each figure uses: write-path mode `{}`; baseline {}; layer mix {}. {}",
      write_path_of(s), baseline_format(s), s.weights.empty() ? std::string("none") : mix_text(s),
      e.origin == "published"
          ? std::string("The published run computed its FP8 scale in bf16 and rounded the FP8 output to bf16 "
                        "before its rel-MSE.")
          : std::string("Every codec, the baseline included, is simulated and decoded in fp32 (the published GPU "
                        "run computed the FP8 scale in bf16 and rounded its output to bf16).")));
  if (src.random_weights) {
    items.push_back(
        "Random V4 weights (seeded init), not the trained V4-Flash checkpoint: the streams have the statistics of "
        "random projections, so no ratio here need carry over to the real KV cache.");
  }
  if (src.synthetic_host) {
    items.push_back(
        "Synthetic hidden states (seeded) stand in for a host LLM's token embeddings: a passage's words only pick "
        "which synthetic token vectors repeat (see the host parameters), so the passages differ as draws of a "
        "random process, not as texts.");
  }
  if (mentions(host, "repeated to seqlen")) {
    items.push_back(repetition_caveat(s));
  }
  if (s.n_passages < 2) {
    items.push_back("Fewer than two passages: no confidence interval exists and no verdict is given.");
  } else {
    items.push_back(fmt::format(
        "Every 95 % interval is a Student-t interval over the n = {} passages, conditional on everything else "
        "held fixed: this one weight draw (`{}`), this host, these passages and one layer per stream type. It "
        "covers passage-to-passage variation only, not other weight seeds, the trained checkpoint, other hosts, "
        "other layers or other texts.",
        s.n_passages, seed_text.empty() ? std::string("not recorded") : seed_text));
  }
  if (mentions(weights, "\"simulate_fp8\":false")) {
    items.push_back(
        "The write path's own FP8 simulation of the nope dims was off (weights.simulate_fp8 = false): every codec, "
        "the baseline included, compresses the same pre-storage bf16 KV. With it on, the nope dims already lie on "
        "the write path's FP8 grid (" +
        std::string(write_path_of(s) == "v4" ? "UE8M0 scales per 64 dims, the grid of `v4_native`"
                                             : "fp16 scales per 64 dims, the grid of `fp8_per64`") +
        ") and an FP8 baseline re-quantises them almost losslessly, so the comparison would measure only the RoPE "
        "dims.");
  }
  if (pub) {
    items.push_back(fmt::format(
        "The published side (`{}`) is the published study (SPEC.md section 6): trained V4-Flash weights, the "
        "Qwen2-0.5B host, its own write path with simulate_fp8 = true and a bf16 FP8 scale. It differs from this "
        "run in weights, host and write path at once, so a difference between the two cannot be assigned to one "
        "cause.",
        pub->experiment));
  }
  if (mentions(prov.gemm, "bf16")) {
    items.push_back(
        "The write path's projection GEMM ran on bf16 inputs with fp32 accumulation and output (oneDNN AMX; see the "
        "provenance): kvlab takes that path only when every GEMM input is exactly a bf16 value, so it computes the "
        "same products as the fp32 GEMM and differs only in the order of accumulation (measured: < 1e-5 relative on "
        "the streams).");
  }
  if (!s.weights.empty()) {
    items.push_back("One layer per stream type: each stream is measured on a single layer, which stands for all "
                    "layers of its type in the weighted numbers (" + mix_text(s) + ").");
  }
  for (const auto& a : s.audits) {
    if (a.n_vectors > 0 && a.n_vectors < 64) {
      items.push_back(fmt::format(
          "`{}` has only {} vectors per passage: its per-passage rel-MSE is noisy and its interval wide.", a.stream,
          a.n_vectors));
    }
  }
  if (e.counts.failed > 0 || e.counts.queued > 0 || e.counts.running > 0) {
    items.push_back(fmt::format(
        "The experiment is incomplete: {} runs failed, {} queued, {} running; the statistics use the {} finished "
        "runs.",
        e.counts.failed, e.counts.queued, e.counts.running, e.counts.done));
  }
  for (const auto& w : s.warnings) items.push_back("stats: " + w);
  for (const auto& m : s.monotonicity) items.push_back("monotonicity: " + m.message);
  d.bullets(items);
}

void decisions_section(Document& d, const std::vector<store::DecisionRow>& rows) {
  if (rows.empty()) return;
  d.heading(3, "Passages each decision needed");
  // Rows of the look-corrected rule (experiment/sequential.h) show the resolving look (n_evaluated ==
  // n_needed) at the per-look level alpha / (cap - 1); rows of the earlier per-look rule do not.
  int resolved = 0, most = 0, last = 0;
  bool legacy = false;
  double level = rows.front().alpha;
  for (const auto& r : rows) {
    if (r.n_needed) {
      ++resolved;
      most = std::max(most, *r.n_needed);
      legacy = legacy || r.n_evaluated != *r.n_needed;
    } else {
      last = std::max(last, r.n_evaluated);
    }
    legacy = legacy || r.alpha != level;
  }
  legacy = legacy || !(level > 0 && level < 1);
  const std::string n = fmt_int(static_cast<long long>(rows.size()));
  std::string text = fmt::format(
      "The sequential sweep (`kvlab run --until-resolved`) added passages one at a time and looked at every threshold "
      "decision after each, until all were resolved or the passage cap was reached: {} of {} decisions resolved{}{}. ",
      resolved, rows.size(), resolved > 0 ? fmt::format(", the slowest after {} passages", most) : std::string(),
      last > 0 ? fmt::format("; the others were unresolved at the last look, {} passages", last) : std::string());
  if (legacy) {
    text += fmt::format(
        "These rows were written by the earlier rule, which tested each look at the full {} with Holm only within "
        "(stream, threshold) and no correction for the repeated looks, so *resolved* here is nominal: its real "
        "error rate is larger. Rerun `kvlab run --until-resolved` to replace them with the corrected rule.",
        fmt_sig(level, 2));
  } else {
    text += fmt::format(
        "The rule is corrected for these repeated looks. The sweep may look at n = 2, 3, …, cap passages "
        "(K = cap − 1 looks, fixed by the cap before any data) and spends α / K at each, α being its overall level: "
        "at every look Holm's step-down runs over all of the {} decisions still open (one family: every stream, "
        "codec and threshold of the metric), at family-wise level α_look = {} (K = α / α_look: {} for the default "
        "α = 0.05). A decision is resolved at the first look where its Holm-adjusted p is below α_look and stays "
        "resolved. By the union bound over the looks, the chance that any of the {} decisions is resolved wrongly "
        "is at most K · α_look = α.",
        n, fmt_sig(level, 2), fmt_fixed(0.05 / level, 0), n);
  }
  d.paragraph(text);
  d.paragraph(
      "*below*: the codec's mean ratio of the metric to the baseline is below the threshold factor (the codec "
      "meets the threshold); *above*: it is above (the codec fails it); *unresolved*: not decided by the cap. "
      "*ratio ± 95 % CI* and *p (Holm)* are those of the look shown (*n*): the look that resolved the decision, "
      "else the last one. The ± is the plain 95 % t interval of that look, not widened for the looks or the "
      "family, and it is the interval the stopping rule selected; the other tables of this report use every "
      "passage. *needed*: the passages after which the decision was first resolved.");
  // One metric per sweep as a rule: named in the threshold cell only when the rows mix metrics.
  const bool one_metric = std::all_of(rows.begin(), rows.end(),
                                      [&](const store::DecisionRow& r) { return r.metric == rows.front().metric; });
  Table t({"stream", "codec", fmt::format("threshold ({})", one_metric ? rows.front().metric : "metric"),
           "verdict", "ratio ± 95 % CI", "p (Holm)", "n", "needed"},
          {Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight,
           Align::kRight});
  for (const auto& r : rows) {
    const std::string verdict = r.verdict == "below"   ? "below (meets)"
                                : r.verdict == "above" ? "above (fails)"
                                                       : r.verdict;
    const std::string th = fmt::format("{} ({}x)", r.threshold, fmt_fixed(r.factor, 2));
    t.add_row({stream_cell(r.stream), codec_label(r.codec), one_metric ? th : r.metric + " " + th, verdict,
               r.ratio_mean ? fmt_pm_fixed(*r.ratio_mean, r.ratio_ci95_hw, 3) : std::string(kNotAvailable),
               r.p_holm ? fmt_sig(*r.p_holm, 2) : std::string(kNotAvailable), fmt_int(r.n_evaluated),
               r.n_needed ? fmt_int(*r.n_needed) : std::string("not yet")});
  }
  d.table(t);
}

}  // namespace kvlab::report::detail
