// FINDINGS report of one experiment: see reports.h. Formatting only; the
// numbers come from stats::StudySummary and derived.h.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/error.h"
#include "report/audit.h"
#include "report/derived.h"
#include "report/markdown.h"
#include "report/plots.h"
#include "report/published.h"
#include "report/reports.h"
#include "report/sections.h"

namespace kvlab::report {

using namespace detail;

namespace {

struct Ctx {
  const stats::StudySummary& s;
  const ReportProvenance& prov;
  std::string codec;    // canonical
  std::string compare;  // canonical or empty
  std::string stem;
};

const stats::CellStats* fp8_cell(const stats::StudySummary& s, const std::string& stream) {
  return s.find_cell(stream, stats::kFp8Codec);
}

void per_stream_section(Document& d, const Ctx& c) {
  d.heading(2, "Per stream: " + codec_label(c.codec) + " against FP8");
  d.paragraph(fmt::format(
      "rel-MSE = sum ||x - x'||^2 / sum ||x - mean||^2 over the vectors of one stream and passage. "
      "The ratio is taken per passage (codec and FP8 on the same passage) and then averaged; "
      "± is the Student-t 95 % half-width over the {} passages. Verdict from the ratio's interval: "
      "win if its upper end is below 1, loss if its lower end is above 1, tied otherwise.",
      c.s.n_passages));
  std::vector<double> relmse;
  for (const auto& stream : c.s.streams) {
    if (const auto* x = c.s.find_cell(stream, c.codec)) relmse.push_back(x->rel_mse.mean);
    if (const auto* x = fp8_cell(c.s, stream)) relmse.push_back(x->rel_mse.mean);
  }
  const int e = column_exponent(relmse);
  Table t({"stream", "n", "FP8 rel-MSE" + unit_suffix(e), codec_label(c.codec) + " rel-MSE" + unit_suffix(e),
           "ratio to FP8", "95 % CI of ratio", "verdict"},
          {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
           Align::kLeft});
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    const auto* base = fp8_cell(c.s, stream);
    if (!cell) {
      t.add_row({stream_cell(stream), "0", base ? fmt_relmse_scaled(base->rel_mse, e) : kNotAvailable,
                 "not measured", kNotAvailable, kNotAvailable, kNotAvailable});
      continue;
    }
    std::string ratio = kNotAvailable, interval = kNotAvailable, verdict = "no FP8 baseline";
    if (cell->ratio_vs_fp8) {
      ratio = fmt_ratio(*cell->ratio_vs_fp8);
      interval = fmt_interval(*cell->ratio_vs_fp8);
      verdict = to_string(verdict_of(*cell->ratio_vs_fp8));
    }
    t.add_row({stream_cell(stream), fmt_int(cell->n_passages),
               base ? fmt_relmse_scaled(base->rel_mse, e) : kNotAvailable, fmt_relmse_scaled(cell->rel_mse, e), ratio,
               interval, verdict});
  }
  d.table(t);
}

void per_passage_section(Document& d, const Ctx& c) {
  d.heading(2, "Per passage: " + codec_label(c.codec) + " / FP8 rel-MSE ratio");
  // Columns: streams with a ratio; rows: passages in first-seen order.
  std::vector<const stats::CellStats*> cols;
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    if (cell && cell->ratio_vs_fp8) cols.push_back(cell);
  }
  if (cols.empty()) {
    d.paragraph("No stream has both " + codec_label(c.codec) + " and FP8 on the same passages.");
    return;
  }
  std::vector<std::pair<std::int64_t, std::string>> passages;
  std::set<std::int64_t> seen;
  for (const auto* cell : cols) {
    for (const auto& pr : cell->passages) {
      if (seen.insert(pr.passage_id).second) passages.emplace_back(pr.passage_id, pr.passage);
    }
  }
  std::vector<std::string> headers = {"passage"};
  std::vector<Align> aligns = {Align::kLeft};
  for (const auto* cell : cols) {
    headers.push_back(stream_short(cell->stream));
    aligns.push_back(Align::kRight);
  }
  Table t(headers, aligns);
  for (const auto& [pid, name] : passages) {
    std::vector<std::string> row = {name};
    for (const auto* cell : cols) {
      auto it = std::find_if(cell->passages.begin(), cell->passages.end(),
                             [&](const stats::PassageRatio& r) { return r.passage_id == pid; });
      row.push_back(it == cell->passages.end() ? "not measured" : fmt_fixed(it->ratio, 3));
    }
    t.add_row(row);
  }
  std::vector<std::string> mean = {"**mean**"}, sd = {"**std** (n - 1)"}, hw = {"**95 % CI half-width**"},
                           n = {"**n**"};
  for (const auto* cell : cols) {
    const auto& r = *cell->ratio_vs_fp8;
    mean.push_back(fmt_fixed(r.mean, 3));
    sd.push_back(r.sd ? fmt_fixed(*r.sd, 3) : kNoInterval);
    hw.push_back(r.ci95_hw ? fmt_fixed(*r.ci95_hw, 3) : kNoInterval);
    n.push_back(fmt_int(r.n));
  }
  t.add_row(mean);
  t.add_row(sd);
  t.add_row(hw);
  t.add_row(n);
  d.table(t);
  d.image("per-passage ratio plot", c.stem + "_passages.svg");
}

void layer_weighted_section(Document& d, const Ctx& c) {
  d.heading(2, "Layer-weighted ratio to FP8");
  if (c.s.weights.empty()) {
    d.paragraph("The experiment defines no layer mix (params_json `layer_mix`); no layer weighting.");
    return;
  }
  double total_layers = 0;
  for (const auto& w : c.s.weights) total_layers += w.layers;
  Table wt({"stream", "layers", "weight"}, {Align::kLeft, Align::kRight, Align::kRight});
  for (const auto& w : c.s.weights) {
    wt.add_row({stream_cell(w.stream), fmt_short(w.layers), fmt_fixed(w.weight, 4)});
  }
  wt.add_row({"**total**", fmt_short(total_layers), fmt_fixed(1.0, 4)});
  d.paragraph(
      "Weights w_s = layers of that stream type / all attention layers, from the experiment's layer mix. "
      "Layer weighted = sum w_s ratio_s; its published interval combines the per-stream half-widths "
      "as sqrt(sum (w_s hw_s)^2); the paired interval is the t interval of the per-passage weighted "
      "ratio (every stream is measured on the same passages). The simple mean weights each stream "
      "equally (half-width combined the published way). MSE change = layer-weighted ratio - 1.");
  d.table(wt);
  Table t({"codec", "layer-weighted bits", "simple mean of streams", "layer weighted ± published CI",
           "layer weighted ± paired CI", "MSE change vs FP8"},
          {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  for (const auto& lw : c.s.layer_weighted) {
    if (!lw.complete) {
      std::string missing;
      for (const auto& m : lw.missing_streams) missing += (missing.empty() ? "" : ", ") + stream_short(m);
      t.add_row({codec_label(lw.codec), kNotAvailable, kNotAvailable,
                 "incomplete: no " + missing, kNotAvailable, kNotAvailable});
      continue;
    }
    std::vector<stats::Summary> per_stream;
    for (const auto& w : c.s.weights) {
      const auto* cell = c.s.find_cell(w.stream, lw.codec);
      if (cell && cell->ratio_vs_fp8) per_stream.push_back(*cell->ratio_vs_fp8);
    }
    const auto simple = equal_weight_mean(per_stream);
    const std::string name = lw.codec == c.codec ? "**" + codec_label(lw.codec) + "**" : codec_label(lw.codec);
    t.add_row({name, fmt_bits(lw.weighted_bits), fmt_pm_fixed(simple.mean, simple.rss_hw, 3),
               fmt_pm_fixed(lw.mean, lw.rss_hw, 3), fmt_pm_fixed(lw.paired.mean, lw.paired.ci95_hw, 3),
               fmt_percent(lw.mean - 1.0)});
  }
  d.table(t);
}

void bits_section(Document& d, const Ctx& c) {
  d.heading(2, "Bits per vector");
  d.paragraph(
      "Bits per stored vector as recorded with each run (lattice codecs: the published accounting, "
      "SPEC section 3; FP8: 8 bits per coordinate plus one 16-bit scale per 64). Bit change = "
      "bits / FP8 bits - 1; CR = compression ratio.");
  Table t({"codec", "bits per vector", "FP8 bits", "bit change vs FP8", "CR vs FP8", "CR vs bf16"},
          {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  // One row per codec; bits are per stream but identical at equal D (shown once
  // when all streams agree, else per stream).
  std::vector<std::string> codecs;
  for (const auto& cell : c.s.cells) {
    if (std::find(codecs.begin(), codecs.end(), cell.codec) == codecs.end()) codecs.push_back(cell.codec);
  }
  for (const auto& codec : codecs) {
    std::vector<const stats::CellStats*> cs;
    for (const auto& cell : c.s.cells) {
      if (cell.codec == codec) cs.push_back(&cell);
    }
    bool same = true;
    for (const auto* x : cs) {
      same = same && x->bits_per_vector == cs[0]->bits_per_vector && x->fp8_bits == cs[0]->fp8_bits &&
             x->cr_vs_bf16 == cs[0]->cr_vs_bf16 && x->bits_consistent;
    }
    const std::string name = codec == c.codec ? "**" + codec_label(codec) + "**" : codec_label(codec);
    auto row = [&](const stats::CellStats& x, const std::string& label) {
      std::string change = kNotAvailable;
      if (x.bit_saving) change = fmt_percent(-*x.bit_saving);
      t.add_row({label, fmt_bits(x.bits_per_vector) + (x.bits_consistent ? "" : " (varies)"),
                 x.fp8_bits ? fmt_bits(*x.fp8_bits) : kNotAvailable, change, fmt_cr(x.cr_vs_fp8),
                 fmt_cr(x.cr_vs_bf16)});
    };
    if (same) {
      row(*cs[0], name);
    } else {
      for (const auto* x : cs) row(*x, name + " on " + stream_short(x->stream));
    }
  }
  d.table(t);
}

void family_vs_family_section(Document& d, const Ctx& c) {
  if (c.compare.empty()) return;
  const auto a = stats::parse_codec_spec(c.codec);
  const auto b = stats::parse_codec_spec(c.compare);
  if (a.is_baseline() || b.is_baseline() || a.family == b.family) return;
  std::string fa = a.family, fb = b.family;
  for (char& ch : fa) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  for (char& ch : fb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  d.heading(2, fa + " against " + fb + " at matched Q");
  // Every Q swept in both families.
  std::set<int> qa, qb;
  for (const auto& cell : c.s.cells) {
    if (!cell.q) continue;
    if (cell.family == a.family) qa.insert(*cell.q);
    if (cell.family == b.family) qb.insert(*cell.q);
  }
  std::vector<int> qs;
  std::set_intersection(qa.begin(), qa.end(), qb.begin(), qb.end(), std::back_inserter(qs));
  if (qs.empty()) {
    d.paragraph(fmt::format("No Q was run for both {} and {}.", fa, fb));
    return;
  }
  d.paragraph(fmt::format(
      "Ratio of mean rel-MSE {} / {} on the same passages, and the same as a gain in dB, "
      "10 log10({} rel-MSE / {} rel-MSE) (positive: {} has the smaller error). The per-codec "
      "ratios to FP8 carry their 95 % CIs. This is the two lattices' geometry at the same Q, not a comparison "
      "at matched rate: the two codecs spend different bits at the same Q (see the bits columns), so the gain "
      "says nothing about which stores the cache in fewer bits at equal error.",
      fa, fb, fb, fa, fa));
  Table t({"Q", "stream", fb + " bits", fa + " bits", fb + " / FP8", fa + " / FP8",
           fa + " / " + fb + " rel-MSE", fa + " gain"},
          {Align::kRight, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
           Align::kRight, Align::kRight});
  for (int q : qs) {
    const std::string ca = fmt::format("{}:q={}", a.family, q), cb = fmt::format("{}:q={}", b.family, q);
    for (const auto& stream : c.s.streams) {
      const auto* xa = c.s.find_cell(stream, ca);
      const auto* xb = c.s.find_cell(stream, cb);
      if (!xa || !xb) continue;
      std::string ratio = kNotAvailable, gain = kNotAvailable;
      if (xa->rel_mse.mean > 0 && xb->rel_mse.mean > 0) {
        ratio = fmt_fixed(xa->rel_mse.mean / xb->rel_mse.mean, 3);
        gain = fmt::format("{} dB", fmt_fixed(db_gain(xa->rel_mse.mean, xb->rel_mse.mean), 2));
      }
      t.add_row({fmt_int(q), stream_cell(stream), fmt_bits(xb->bits_per_vector), fmt_bits(xa->bits_per_vector),
                 xb->ratio_vs_fp8 ? fmt_ratio(*xb->ratio_vs_fp8) : kNotAvailable,
                 xa->ratio_vs_fp8 ? fmt_ratio(*xa->ratio_vs_fp8) : kNotAvailable, ratio, gain});
    }
  }
  d.table(t);
}

void forecast_section(Document& d, const Ctx& c) {
  d.heading(2, "Deployment forecast");
  const auto params = parse_forecast(c.s.experiment.params_json);
  if (!params) {
    d.paragraph(
        "No forecast: the experiment spec gives no `forecast` parameters "
        "(`kv_memory_gib_per_node`, `context_tokens`).");
    return;
  }
  if (c.s.weights.empty()) {
    d.paragraph("No forecast: the experiment defines no layer mix.");
    return;
  }
  const auto seqlen = params_seqlen(c.s.experiment.params_json);
  // Vectors per token per stream: spec override, else recorded vectors / seqlen.
  std::vector<std::pair<std::string, double>> vpt;
  std::vector<std::string> vpt_source;
  for (const auto& w : c.s.weights) {
    auto it = params->vectors_per_token.find(w.stream);
    if (it != params->vectors_per_token.end()) {
      vpt.emplace_back(w.stream, it->second);
      vpt_source.push_back("spec");
      continue;
    }
    const stats::StreamAuditStats* a = nullptr;
    for (const auto& x : c.s.audits) {
      if (x.stream == w.stream) a = &x;
    }
    if (a && seqlen && a->n_vectors > 0) {
      vpt.emplace_back(w.stream, static_cast<double>(a->n_vectors) / static_cast<double>(*seqlen));
      vpt_source.push_back(fmt::format("recorded {} / seqlen {}", a->n_vectors, *seqlen));
    } else {
      d.paragraph(fmt::format(
          "No forecast: vectors per token of `{}` are neither in the spec (`forecast.vectors_per_token`) "
          "nor derivable from recorded vectors per passage and seqlen.",
          w.stream));
      return;
    }
  }
  d.paragraph(fmt::format(
      "Computed from the experiment spec: {} GiB of KV memory per node, {} tokens of context per user, "
      "the layer mix and the recorded bits per vector. KV bytes per token = sum over streams of "
      "layers x vectors per token x bits / 8; users per node = floor(KV memory / KV bytes per user). "
      "Every layer is assumed to keep its vectors for the whole context.",
      fmt_short(params->kv_memory_gib_per_node), fmt_bits(params->context_tokens)));
  Table pt({"stream", "layers", "vectors per token", "source"},
           {Align::kLeft, Align::kRight, Align::kRight, Align::kLeft});
  for (std::size_t i = 0; i < vpt.size(); ++i) {
    pt.add_row({stream_cell(vpt[i].first), fmt_short(c.s.weights[i].layers), fmt_short(vpt[i].second),
                vpt_source[i]});
  }
  d.table(pt);
  Table t({"storage", "KV bytes per token", "KV per user (GiB)", "users per node", "users vs FP8"},
          {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  std::vector<std::string> codecs = {stats::kFp8Codec, c.codec};
  if (!c.compare.empty()) codecs.push_back(c.compare);
  std::optional<double> fp8_users;
  for (const auto& codec : codecs) {
    std::vector<ForecastStream> fs;
    bool ok = true;
    for (std::size_t i = 0; i < vpt.size(); ++i) {
      const auto* cell = c.s.find_cell(vpt[i].first, codec);
      if (!cell) {
        ok = false;
        break;
      }
      fs.push_back({vpt[i].first, c.s.weights[i].layers, vpt[i].second, cell->bits_per_vector});
    }
    if (!ok) {
      t.add_row({codec_label(codec), "not measured on every stream", kNotAvailable, kNotAvailable,
                 kNotAvailable});
      continue;
    }
    const auto r = forecast(fs, *params);
    if (codec == stats::kFp8Codec) fp8_users = r.users_per_node;
    std::string vs = kNotAvailable;
    if (fp8_users && *fp8_users > 0) vs = fmt_percent(r.users_per_node / *fp8_users - 1.0);
    t.add_row({codec_label(codec), fmt_fixed(r.bytes_per_token, 1), fmt_fixed(r.bytes_per_user / kGiB, 3),
               fmt_fixed(r.users_per_node, 0), vs});
  }
  d.table(t);
}

bool mentions(const std::vector<std::string>& v, const std::string& word) {
  for (const auto& x : v) {
    std::string l = x;
    for (char& ch : l) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (l.find(word) != std::string::npos) return true;
  }
  return false;
}

void caveats_section(Document& d, const Ctx& c) {
  d.heading(2, "Caveats");
  const auto& e = c.s.experiment;
  std::vector<std::string> items;
  std::vector<std::string> weights = c.prov.weights;
  weights.push_back(json_value_text(e.params_json, "weights"));
  std::vector<std::string> host = c.prov.host_kinds;
  for (const auto& h : c.prov.hosts) host.push_back(h);
  host.push_back(json_value_text(e.params_json, "host"));
  if (e.origin == "published") {
    items.push_back(
        "Imported from the published study's JSON, not re-run by kvlab: the rel-MSE values, audits "
        "and bit counts are the published ones (published bit accounting); only the statistics "
        "were recomputed from the per-passage rows.");
    items.push_back(
        "The published FP8 baseline ran its scale and division in bf16 on the GPU and rounded its "
        "output back to bf16 before taking the rel-MSE; kvlab's own runs do both in fp32, so "
        "kvlab's FP8 rel-MSE is slightly lower than the published one on the same streams.");
  } else {
    items.push_back(
        "FP8 simulation and every codec's decode run in fp32; the published GPU run computed the "
        "FP8 scale in bf16 and rounded the FP8 output to bf16 before its rel-MSE.");
  }
  if (mentions(weights, "random")) {
    items.push_back(
        "Random V4 weights (seeded init), not the trained V4-Flash checkpoint: the streams have "
        "the statistics of random projections, so ratios need not carry over to the real KV cache.");
  }
  if (mentions(host, "synthetic")) {
    items.push_back(
        "Synthetic hidden states (seeded) stand in for a host LLM's token embeddings: a passage's "
        "words only pick which synthetic token vectors repeat (see the host parameters), so the "
        "passages differ as draws of a random process, not as texts.");
  }
  if (mentions(c.prov.gemm, "bf16")) {
    items.push_back(
        "The write path's projection GEMM ran on bf16 inputs with fp32 accumulation and output "
        "(oneDNN AMX; see the provenance): kvlab takes that path only when every GEMM input is "
        "exactly a bf16 value, so it computes the same products as the fp32 GEMM and differs only "
        "in the order of accumulation (measured: < 1e-5 relative on the streams).");
  }
  if (mentions(weights, "\"simulate_fp8\":false")) {
    items.push_back(
        "The write path's own FP8 simulation of the nope dims was off (weights.simulate_fp8 = "
        "false): every codec, FP8 included, compresses the same pre-storage bf16 KV. With it on, "
        "the stream already lies on fp8_per64's grid and the baseline re-quantises it almost "
        "losslessly, so the comparison would measure only the RoPE dims.");
  }
  if (!c.s.weights.empty()) {
    std::string mix;
    for (const auto& w : c.s.weights) {
      mix += (mix.empty() ? "" : ", ") + fmt::format("{} {}", fmt_short(w.layers), stream_short(w.stream));
    }
    items.push_back(
        "One layer per stream type: each stream is measured on a single layer, which stands for all "
        "layers of its type in the layer-weighted numbers (" + mix + ").");
  }
  for (const auto& a : c.s.audits) {
    if (a.n_vectors > 0 && a.n_vectors < 64) {
      items.push_back(fmt::format(
          "`{}` has only {} vectors per passage: its per-passage rel-MSE is noisy and its interval wide.",
          a.stream, a.n_vectors));
    }
  }
  if (c.s.n_passages < 2) {
    items.push_back("Fewer than two passages: no confidence interval exists and no verdict is given.");
  } else {
    items.push_back(fmt::format(
        "Intervals are Student-t 95 % intervals over n = {} passages; they cover passage-to-passage "
        "variation only, not other weights, hosts or layers.",
        c.s.n_passages));
  }
  if (e.counts.failed > 0 || e.counts.queued > 0 || e.counts.running > 0) {
    items.push_back(fmt::format(
        "The experiment is incomplete: {} runs failed, {} queued, {} running; the statistics use the "
        "{} finished runs.",
        e.counts.failed, e.counts.queued, e.counts.running, e.counts.done));
  }
  for (const auto& w : c.s.warnings) items.push_back("stats: " + w);
  for (const auto& m : c.s.monotonicity) items.push_back("monotonicity: " + m.message);
  d.bullets(items);
}

}  // namespace

RenderedReport render_findings(const stats::StudySummary& s, const ReportProvenance& prov,
                               const FindingsOptions& opt) {
  std::string codec = opt.codec.empty() ? s.experiment.report_codec : opt.codec;
  std::string compare = opt.compare.empty() ? s.experiment.report_compare : opt.compare;
  if (codec.empty()) {
    throw UsageError(fmt::format(
        "experiment '{}' names no report codec (params_json \"report\": {{\"codec\": ...}}); "
        "pass --codec, e.g. --codec e8:q=38",
        s.experiment.name));
  }
  codec = stats::parse_codec_spec(codec).canonical;
  if (!compare.empty()) compare = stats::parse_codec_spec(compare).canonical;
  KVLAB_CHECK(codec != s.baseline, "the findings compare a codec with the baseline; codec '{}' is the baseline itself",
              codec);
  bool any = false, any_ratio = false;
  for (const auto& cell : s.cells) {
    if (cell.codec != codec) continue;
    any = true;
    any_ratio = any_ratio || cell.ratio_vs_fp8.has_value();
  }
  KVLAB_CHECK(any, "experiment '{}' has no finished runs of codec '{}'", s.experiment.name, codec);
  KVLAB_CHECK(any_ratio,
              "experiment '{}': codec '{}' has no FP8 (fp8_per64) baseline on the same passages on any "
              "stream",
              s.experiment.name, codec);
  if (!compare.empty()) {
    bool found = false;
    for (const auto& cell : s.cells) found = found || cell.codec == compare;
    if (!found) compare.clear();  // named in the spec but not run: the section says so via absence
  }
  Ctx c{s, prov, codec, compare, opt.file_stem};

  Document d;
  d.heading(1, fmt::format("Findings: {} against FP8 ({})", codec_label(codec), s.experiment.name));
  d.paragraph(generated_note("kvlab report findings"));
  provenance_section(d, s, prov);
  per_stream_section(d, c);
  published_vs_run_section(d, s, opt.published, codec);
  per_passage_section(d, c);
  audit_section(d, s);
  layer_weighted_section(d, c);
  bits_section(d, c);
  family_vs_family_section(d, c);
  d.heading(2, "Rate and distortion");
  d.paragraph(
      "Every lattice codec of this experiment: bits per vector against the rel-MSE ratio to FP8 "
      "(log scale), 95 % CI bars from the per-passage ratios; the square is FP8 itself.");
  d.image("Pareto plot: bits per vector vs rel-MSE ratio to FP8", c.stem + "_pareto.svg");
  forecast_section(d, c);
  caveats_section(d, c);

  RenderedReport r;
  r.markdown = d.str();
  r.files = findings_plots(s, codec, compare, c.stem);
  return r;
}

}  // namespace kvlab::report
