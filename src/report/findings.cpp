// FINDINGS report of one experiment: see reports.h. Formatting only; the
// numbers come from stats::StudySummary and derived.h.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "report/audit.h"
#include "report/derived.h"
#include "report/markdown.h"
#include "report/plots.h"
#include "report/published.h"
#include "report/reports.h"
#include "report/sections.h"
#include "report/summary.h"

namespace kvlab::report {

using namespace detail;

namespace {

struct Ctx {
  const stats::StudySummary& s;
  const ReportProvenance& prov;
  std::string codec;    // canonical
  std::string compare;  // canonical or empty
  std::string stem;
  const FindingsOptions& opt;
};

const stats::CellStats* fp8_cell(const stats::StudySummary& s, const std::string& stream) {
  return s.find_cell(stream, s.baseline.empty() ? std::string(stats::kFp8Codec) : s.baseline);
}

void per_stream_section(Document& d, const Ctx& c) {
  d.heading(2, "Per stream: " + codec_label(c.codec) + " against " + baseline_label(c.s));
  const auto metrics = extra_metrics(c.s, c.codec);
  std::string extra;
  for (const auto* m : metrics) extra += (extra.empty() ? "" : ", ") + std::string(m->name) + " (" + m->description + ")";
  d.paragraph(fmt::format(
      "rel-MSE = sum ||x - x'||^2 / sum ||x - mean||^2 over the vectors of one stream and passage. "
      "The ratio is taken per passage (codec and baseline on the same passage) and then averaged; "
      "± is the Student-t 95 % half-width over the {} passages. Verdict from the ratio's interval: "
      "win if its upper end is below 1, loss if its lower end is above 1, tied otherwise.{}",
      c.s.n_passages,
      extra.empty() ? std::string()
                    : " The attention metrics recorded with the runs follow as paired ratios to the baseline with "
                      "their 95 % intervals and verdicts: " + extra + "."));
  std::vector<double> relmse;
  for (const auto& stream : c.s.streams) {
    if (const auto* x = c.s.find_cell(stream, c.codec)) relmse.push_back(x->rel_mse.mean);
    if (const auto* x = fp8_cell(c.s, stream)) relmse.push_back(x->rel_mse.mean);
  }
  const int e = column_exponent(relmse);
  const std::string bl = baseline_label(c.s);
  std::vector<std::string> h = {"stream", "n", bl + " rel-MSE" + unit_suffix(e),
                                codec_label(c.codec) + " rel-MSE" + unit_suffix(e), "ratio to " + bl,
                                "95 % CI of ratio", "verdict"};
  for (const auto* m : metrics) h.push_back(std::string(m->label) + " ratio [95 % CI], verdict");
  std::vector<Align> al = {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight,
                           Align::kLeft};
  al.resize(h.size(), Align::kRight);
  Table t(h, al);
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    const auto* base = fp8_cell(c.s, stream);
    if (!cell) {
      std::vector<std::string> row = {stream_cell(stream), "0",
                                      base ? fmt_relmse_scaled(base->rel_mse, e) : kNotAvailable, "not measured"};
      row.resize(h.size(), kNotAvailable);
      t.add_row(row);
      continue;
    }
    std::string ratio = kNotAvailable, interval = kNotAvailable, verdict = "no baseline";
    if (cell->ratio_vs_fp8) {
      ratio = fmt_ratio(*cell->ratio_vs_fp8);
      interval = fmt_interval(*cell->ratio_vs_fp8);
      verdict = to_string(verdict_of(*cell->ratio_vs_fp8));
    }
    std::vector<std::string> row = {stream_cell(stream), fmt_int(cell->n_passages),
                                    base ? fmt_relmse_scaled(base->rel_mse, e) : kNotAvailable,
                                    fmt_relmse_scaled(cell->rel_mse, e), ratio, interval, verdict};
    for (const auto* m : metrics) {
      const auto* r = cell->metric_ratio(m->name);
      row.push_back(r ? ratio_with_ci(*r) + ", " + to_string(verdict_of(*r)) : std::string(kNotAvailable));
    }
    t.add_row(row);
  }
  d.table(t);
}

void per_passage_section(Document& d, const Ctx& c) {
  d.heading(2, "Per passage: " + codec_label(c.codec) + " / " + baseline_label(c.s) + " rel-MSE ratio");
  // Columns: streams with a ratio; rows: passages in first-seen order.
  std::vector<const stats::CellStats*> cols;
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    if (cell && cell->ratio_vs_fp8) cols.push_back(cell);
  }
  if (cols.empty()) {
    d.paragraph("No stream has both " + codec_label(c.codec) + " and " + baseline_label(c.s) + " on the same passages.");
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
  d.heading(2, "Layer-weighted ratio to " + baseline_label(c.s));
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
      "equally (half-width combined the published way). MSE change = layer-weighted ratio - 1. Bits are "
      "memory weighted (by stored bytes per token; see the summary), not layer weighted.");
  d.table(wt);
  std::string ctx_src;
  const auto mem = experiment_memory(c.s, &ctx_src);
  Table t({"codec", "memory-weighted bits", "simple mean of streams", "layer weighted ± published CI",
           "layer weighted ± paired CI", "MSE change vs " + baseline_label(c.s)},
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
    const auto mb = mem ? codec_memory_bits(c.s, *mem, lw.codec) : std::nullopt;
    t.add_row({name, mb ? fmt_fixed(*mb, 1) : std::string(kNotAvailable), fmt_pm_fixed(simple.mean, simple.rss_hw, 3),
               fmt_pm_fixed(lw.mean, lw.rss_hw, 3), fmt_pm_fixed(lw.paired.mean, lw.paired.ci95_hw, 3),
               fmt_percent(lw.mean - 1.0)});
  }
  d.table(t);
}

// "dominated by E8 Q=44 on SWA, CSA" (measured), "Q=38-40 share these bits:
// Q=40 expected lower error (not run)", "baseline" or "".
std::string operating_point(const Ctx& c, const std::string& codec) {
  if (codec == c.s.baseline) return "baseline";
  std::vector<std::string> on;
  std::string by;
  const stats::CellStats* any = nullptr;
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, codec);
    if (!cell) continue;
    any = cell;
    if (const auto* dom = dominated_by(c.s, *cell)) {
      on.push_back(stream_short(stream));
      by = codec_label(dom->codec);
    }
  }
  if (!on.empty()) return fmt::format("dominated by {} on {}", by, fmt::join(on, ", "));
  if (any && any->q) {
    const auto bc = bit_class(c.opt.bits_of, any->family, *any->q, any->dim);
    if (bc && bc->hi > *any->q) {
      return fmt::format("Q={}-{} share these bits: dominated by Q={} (lower error expected; not run)", bc->lo, bc->hi,
                         bc->hi);
    }
  }
  return "";
}

void bits_section(Document& d, const Ctx& c) {
  d.heading(2, "Bits per vector");
  d.paragraph(
      "Bits per stored vector as recorded with each run (lattice codecs: the published accounting, "
      "SPEC section 3; the baseline: " + baseline_format(c.s) + "). Bit change = "
      "bits / baseline bits - 1 (negative: fewer bits); CR = compression ratio. *Operating point*: whether a point "
      "with at most the same bits has a lower mean rel-MSE on some stream (measured), or whether larger Q values of "
      "the same lattice cost the same bits (then the largest of them is the one to use).");
  const std::string bl = baseline_label(c.s);
  Table t({"codec", "bits per vector", bl + " bits", "bit change vs " + bl, "CR vs " + bl, "CR vs bf16",
           "operating point"},
          {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kRight, Align::kLeft});
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
                 fmt_cr(x.cr_vs_bf16), operating_point(c, codec)});
    };
    if (same) {
      row(*cs[0], name);
    } else {
      for (const auto* x : cs) row(*x, name + " on " + stream_short(x->stream));
    }
  }
  d.table(t);
  if (const auto g = codec_glossary(codecs); !g.empty()) d.paragraph(g);
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
      "ratios to {} carry their 95 % CIs. This is the two lattices' geometry at the same Q, not a comparison "
      "at matched rate: the two codecs spend different bits at the same Q (see the bits columns), so the gain "
      "says nothing about which stores the cache in fewer bits at equal error.",
      fa, fb, fb, fa, fa, baseline_label(c.s)));
  const std::string bl = baseline_label(c.s);
  Table t({"Q", "stream", fb + " bits", fa + " bits", fb + " / " + bl, fa + " / " + bl,
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
  // Which Q values share each compared point's bits: the matched-rate caveat in numbers.
  std::vector<std::string> classes;
  for (int q : qs) {
    for (const auto& fam : {b.family, a.family}) {
      const auto* x = c.s.find_cell(c.s.streams.empty() ? "" : c.s.streams[0], fmt::format("{}:q={}", fam, q));
      if (!x) continue;
      const auto bc = bit_class(c.opt.bits_of, fam, q, x->dim);
      if (bc && bc->hi > bc->lo) {
        classes.push_back(fmt::format("{} costs the same {} bits as every {} Q from {} to {}", codec_label(x->codec),
                                      fmt_bits(x->bits_per_vector), codec_label(x->codec).substr(0, 2), bc->lo,
                                      bc->hi));
      }
    }
  }
  if (!classes.empty()) {
    d.paragraph(fmt::format(
        "Bit classes: {}. At equal bits the largest Q of a class has the lowest error, so a matched-rate comparison "
        "sets the largest Q of each lattice at no more bits against each other (reports/FRONTIER.md), not equal Q.",
        fmt::join(classes, "; ")));
  }
}

// Codecs that clear threshold A on every stream in the paired view (upper
// end of the ratio interval <= 1), in summary order; `why` collects the others.
std::vector<std::string> clearing_codecs(const Ctx& c, std::vector<std::string>* why) {
  std::vector<std::string> out, seen;
  for (const auto& cell : c.s.cells) {
    if (cell.codec == c.s.baseline || std::find(seen.begin(), seen.end(), cell.codec) != seen.end()) continue;
    seen.push_back(cell.codec);
    // The reason names a missing stream first, else the stream whose interval reaches highest.
    std::string fail;
    double worst = 1.0;
    for (const auto& w : c.s.weights) {
      const auto* x = c.s.find_cell(w.stream, cell.codec);
      if (!x || !x->ratio_vs_fp8) {
        fail = "not measured against the baseline on " + stream_short(w.stream);
        break;
      }
      const auto up = x->ratio_vs_fp8->upper();
      if (!up) {
        fail = "no interval on " + stream_short(w.stream);
        break;
      }
      if (*up > worst) {
        worst = *up;
        fail = fmt::format("paired ratio interval reaches {} on {}", fmt_fixed(*up, 3), stream_short(w.stream));
      }
    }
    if (fail.empty()) {
      out.push_back(cell.codec);
    } else if (why) {
      why->push_back(codec_label(cell.codec) + " (" + fail + ")");
    }
  }
  return out;
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
  const auto mem = v4_memory(c.s.experiment.layer_mix, params->context_tokens);
  std::vector<std::string> excluded;
  const auto codecs = clearing_codecs(c, &excluded);
  d.paragraph(fmt::format(
      "V4's real cache at {} tokens of context per user and {} GiB of KV memory per node (experiment spec), with the "
      "layer mix of write-path mode `{}`: every layer keeps a window of the last 128 tokens of main KV, a CSA layer "
      "also S/4 compressed entries and one FP8 indexer key of 132 B per entry (not compressed by any codec here), "
      "an HCA layer S/128 entries (SPEC-V4-ATTENTION.md section 5). Window entries are stored in the SWA stream's "
      "format. KV bytes per token = sum over streams of stored vectors per token x bits / 8, plus the indexer keys; "
      "users per node = floor(KV memory / (bytes per token x context)). Only codecs that clear threshold A on every "
      "stream (upper end of the paired ratio interval <= 1) are forecast; left out: {}.",
      fmt_bits(params->context_tokens), fmt_short(params->kv_memory_gib_per_node), write_path_of(c.s),
      excluded.empty() ? std::string("none") : fmt::format("{}", fmt::join(excluded, "; "))));
  std::vector<std::string> notes;
  if (write_path_of(c.s) == "published") {
    notes.push_back(
        "The published harness's layer mix counts the MTP slot as a SWA-only layer (3 SWA-only, 20 CSA, 20 HCA); "
        "V4-Flash's own config has 2, 21 and 20 (write-path mode `v4`), which adds one CSA layer's entries and "
        "indexer keys.");
  }
  if (c.s.baseline != "v4_native") {
    notes.push_back(fmt::format(
        "The baseline row stores every vector in this run's baseline {}, not in V4's deployed 584-byte record "
        "(`v4_native`, 4672 bits), so it understates V4's own FP8 cache.",
        baseline_format(c.s)));
  }
  if (!notes.empty()) d.paragraph(fmt::format("{}", fmt::join(notes, " ")));
  Table pt({"stream", "stored vectors per token", "from"}, {Align::kLeft, Align::kRight, Align::kLeft});
  for (const auto& st : mem.streams) pt.add_row({stream_cell(st.stream), fmt_sig(st.vectors_per_token, 4), st.how});
  pt.add_row({"CSA indexer keys (132 B each)", fmt_sig(mem.indexer_keys_per_token, 4), "CSA layers x S / 4 / S"});
  d.table(pt);
  Table t({"storage", "clears A on every stream (paired view)", "KV bytes per token", "KV per user (GiB)", "users per node",
           "users vs " + baseline_label(c.s)},
          {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  std::vector<std::string> rows = {c.s.baseline};
  rows.insert(rows.end(), codecs.begin(), codecs.end());
  std::optional<double> base_users;
  for (const auto& codec : rows) {
    std::vector<ForecastStream> fs;
    bool ok = true;
    for (const auto& st : mem.streams) {
      const auto* cell = c.s.find_cell(st.stream, codec);
      if (!cell) {
        ok = ok && st.vectors_per_token == 0;
        continue;
      }
      if (st.vectors_per_token > 0) fs.push_back({st.stream, 1.0, st.vectors_per_token, cell->bits_per_vector});
    }
    if (mem.indexer_keys_per_token > 0) {
      fs.push_back({"indexer", 1.0, mem.indexer_keys_per_token, kV4IndexerKeyBytes * 8.0});
    }
    if (!ok || fs.empty()) {
      t.add_row({codec_label(codec), kNotAvailable, "not measured on every stream", kNotAvailable, kNotAvailable,
                 kNotAvailable});
      continue;
    }
    const auto r = forecast(fs, *params);
    if (codec == c.s.baseline) base_users = r.users_per_node;
    std::string vs = kNotAvailable;
    if (base_users && *base_users > 0) vs = fmt_percent(r.users_per_node / *base_users - 1.0);
    t.add_row({codec_label(codec), codec == c.s.baseline ? "baseline" : "yes", fmt_fixed(r.bytes_per_token, 1),
               fmt_fixed(r.bytes_per_user / kGiB, 3), fmt_fixed(r.users_per_node, 0), vs});
  }
  d.table(t);
}

// "SWA, CSA and HCA" from short names.
std::string and_list(const std::vector<std::string>& v) {
  if (v.empty()) return "";
  if (v.size() == 1) return v[0];
  std::string out;
  for (std::size_t i = 0; i + 1 < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out + " and " + v.back();
}

// The answer table of the summary: per stream and weighted over layers.
void answer_table(Document& d, const Ctx& c) {
  const auto metrics = extra_metrics(c.s, c.codec);
  std::vector<std::string> h = {"stream", "layers", "bits: " + codec_label(c.codec) + " / " + baseline_label(c.s),
                                "rel-MSE ratio [95 % CI]", "verdict"};
  for (const auto* m : metrics) h.push_back(std::string(m->label) + " ratio [95 % CI]");
  h.push_back("threshold A, CI-safe view");
  std::vector<Align> al(h.size(), Align::kRight);
  al[0] = Align::kLeft;
  al[4] = Align::kLeft;
  al.back() = Align::kLeft;
  Table t(h, al);
  double layers = 0;
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    const auto* base = fp8_cell(c.s, stream);
    std::string nl = kNotAvailable;
    for (const auto& w : c.s.weights) {
      if (w.stream == stream) {
        nl = fmt_short(w.layers);
        layers += w.layers;
      }
    }
    if (!cell || !cell->ratio_vs_fp8 || !base) {
      std::vector<std::string> row(h.size(), kNotAvailable);
      row[0] = stream_cell(stream);
      row[4] = "not measured against the baseline";
      t.add_row(row);
      continue;
    }
    std::vector<std::string> row = {stream_cell(stream), nl,
                                    fmt_bits(cell->bits_per_vector) + " / " + fmt_bits(base->bits_per_vector),
                                    ratio_with_ci(*cell->ratio_vs_fp8), to_string(verdict_of(*cell->ratio_vs_fp8))};
    for (const auto* m : metrics) {
      const auto* r = cell->metric_ratio(m->name);
      row.push_back(r ? ratio_with_ci(*r) + " " + to_string(verdict_of(*r)) : std::string(kNotAvailable));
    }
    const auto chk = ci_safe_check(*cell, *base, 1.0);
    // Within 2 % of the budget either way the outcome is flagged: the interval
    // it rests on is itself uncertain (see the caveats).
    const bool marginal = chk.has_interval && chk.budget > 0 && std::fabs(chk.used / chk.budget - 1.0) < 0.02;
    const std::string flag = marginal ? ", marginal: within 2 %" : "";
    row.push_back(!chk.has_interval ? std::string(kNoInterval)
                  : chk.fits        ? fmt::format("meets ({} <= {}{})", fmt_sci(chk.used, 3), fmt_sci(chk.budget, 3), flag)
                                    : fmt::format("fails ({} > {}{})", fmt_sci(chk.used, 3), fmt_sci(chk.budget, 3), flag));
    t.add_row(row);
  }
  const auto* lw = c.s.find_layer_weighted(c.codec);
  std::string ctx_src;
  const auto mem = experiment_memory(c.s, &ctx_src);
  if (lw && lw->complete) {
    std::string bits = kNotAvailable;
    if (mem) {
      const auto cb = codec_memory_bits(c.s, *mem, c.codec), bb = codec_memory_bits(c.s, *mem, c.s.baseline);
      // Rounded to 0.1 first: a weighted mean of equal bits prints as those bits.
      auto b = [](double x) { return fmt_bits(std::round(x * 10.0) / 10.0); };
      if (cb && bb) bits = b(*cb) + " / " + b(*bb);
    }
    const std::string what =
        mem ? fmt::format("**all layers** (layer-weighted ratio; bits weighted by stored vectors at {} tokens)",
                          fmt_bits(mem->context_tokens))
            : std::string("**all layers** (layer-weighted ratio)");
    std::vector<std::string> row = {what, fmt_short(layers),
                                    bits, ratio_with_ci(lw->paired), to_string(verdict_of(lw->paired))};
    row.resize(h.size(), kNotAvailable);
    t.add_row(row);
  }
  d.table(t);
  if (mem) d.paragraph(memory_weighting_note(*mem, ctx_src));
}

// Sentences on operating points a cheaper-or-equal, lower-error point beats.
std::string dominance_text(const Ctx& c) {
  std::string out;
  std::vector<std::string> measured;
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    if (!cell) continue;
    if (const auto* dom = dominated_by(c.s, *cell)) {
      measured.push_back(fmt::format("on {} by {} ({} bits, rel-MSE {} vs {})", stream_short(stream),
                                     codec_label(dom->codec), fmt_bits(dom->bits_per_vector),
                                     fmt_sci(dom->rel_mse.mean, 3), fmt_sci(cell->rel_mse.mean, 3)));
    }
    if (out.empty() && cell->q) {
      const auto bc = bit_class(c.opt.bits_of, cell->family, *cell->q, cell->dim);
      if (bc && bc->hi > *cell->q) {
        const auto* run_hi = c.s.find_cell(stream, fmt::format("{}:q={}", cell->family, bc->hi));
        out = fmt::format(
            "Operating point: {} shares its {} bits with every Q from {} to {}; at equal bits the error falls with Q, "
            "so Q={} {} {} at the same bits: prefer the largest Q of a bit class.",
            codec_label(c.codec), fmt_bits(cell->bits_per_vector), bc->lo, bc->hi, bc->hi,
            run_hi ? "(measured here)" : "(not run here)",
            run_hi ? "has the lower error" : "is expected to have the lower error");
      }
    }
  }
  if (!measured.empty()) {
    out += (out.empty() ? "" : " ") +
           fmt::format("{} is dominated (a point with at most its bits has a lower mean rel-MSE) {}.",
                       codec_label(c.codec), fmt::join(measured, "; "));
  }
  return out;
}

// "What this means": verdicts, bits, and how far they carry.
std::string meaning_text(const Ctx& c) {
  std::vector<std::string> win, tied, loss;
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    if (!cell || !cell->ratio_vs_fp8) continue;
    const auto v = verdict_of(*cell->ratio_vs_fp8);
    (v == Verdict::kWin ? win : v == Verdict::kLoss ? loss : tied).push_back(stream_short(stream));
  }
  const std::string codec = codec_label(c.codec), base = baseline_label(c.s);
  std::string t;
  if (!win.empty()) t += fmt::format("On this run's {} streams {} has a smaller error than {}. ", and_list(win), codec, base);
  if (!loss.empty()) t += fmt::format("On {} it has a larger error. ", and_list(loss));
  if (!tied.empty()) {
    t += fmt::format("On {} the interval contains 1: these {} passages cannot tell the two apart. ", and_list(tied),
                     c.s.n_passages);
  }
  std::string ctx_src;
  if (const auto mem = experiment_memory(c.s, &ctx_src)) {
    const auto cb = codec_memory_bits(c.s, *mem, c.codec), bb = codec_memory_bits(c.s, *mem, c.s.baseline);
    if (cb && bb && *bb > 0 && *cb > 0) {
      t += fmt::format(
          "It stores the KV vectors in {} {} bits than {} (memory weighted: {} compression against it; V4's FP8 "
          "indexer keys, which no codec here compresses, shrink the saving per user{}). ",
          fmt_fixed(100.0 * std::fabs(1.0 - *cb / *bb), 1) + " %", *cb <= *bb ? "fewer" : "more", base,
          fmt_cr(*bb / *cb), parse_forecast(c.s.experiment.params_json) ? ", see the deployment forecast" : "");
    }
  }
  std::vector<std::string> fails_ci_safe;
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    const auto* b = fp8_cell(c.s, stream);
    if (!cell || !b || !cell->ratio_vs_fp8 || verdict_of(*cell->ratio_vs_fp8) != Verdict::kWin) continue;
    const auto chk = ci_safe_check(*cell, *b, 1.0);
    if (chk.has_interval && !chk.fits) fails_ci_safe.push_back(stream_short(stream));
  }
  if (!fails_ci_safe.empty()) {
    t += fmt::format("The win on {} holds in the paired view only: by the published CI-safe test it fails "
                     "threshold A, so a deployment that needs the stricter test takes a larger Q there. ",
                     and_list(fails_ci_safe));
  }
  if (const auto* lw = c.s.find_layer_weighted(c.codec); lw && lw->complete && lw->paired.ci95_hw) {
    t += fmt::format("Over all layers (layer weighted) the error ratio is {}: {}. ", ratio_with_ci(lw->paired),
                     to_string(verdict_of(lw->paired)));
  }
  if (c.opt.published) {
    std::vector<std::string> pub;
    for (const auto& stream : c.s.streams) {
      const auto p = published_ratio(*c.opt.published, stream, c.codec);
      if (!p.found) continue;
      std::string v = "no interval";
      if (p.lo && p.hi) v = *p.hi < 1 ? "win" : *p.lo > 1 ? "loss" : "tied";
      pub.push_back(fmt::format("{} {} ({})", stream_short(stream), fmt_fixed(p.mean, 3), v));
    }
    if (!pub.empty()) {
      t += fmt::format(
          "The published study (trained weights, Qwen2-0.5B host) found {}; it differs from this run in weights, host "
          "and write path at once, so this run neither confirms nor refutes it. ",
          fmt::join(pub, ", "));
    }
  }
  t += "This answers the question for streams with the statistics of this run (see the caveats): it shows how the "
       "codecs behave on such data and is not a forecast for the trained V4-Flash cache.";
  return t;
}

void summary_section(Document& d, const Ctx& c) {
  d.heading(2, "Summary");
  d.paragraph(fmt::format(
      "**Question.** Does {} store {} with no more error than the {} baseline, in fewer bits? "
      "Error is the rel-MSE of the reconstructed vectors; each passage gives one paired ratio {} / {} (below 1: "
      "the codec has the smaller error). Experiment `{}`: n = {} passages, write-path mode `{}`, baseline {}.",
      codec_label(c.codec), data_source_text(data_source(c.s, c.prov)), baseline_label(c.s), codec_label(c.codec),
      baseline_label(c.s), c.s.experiment.name, c.s.n_passages, write_path_of(c.s), baseline_format(c.s)));
  d.paragraph("**Answer**, per stream and over all layers:");
  answer_table(d, c);
  d.paragraph(
      "**Verdict rules.** *win*: the upper end of the 95 % interval of the paired ratio is below 1; *loss*: its "
      "lower end is above 1; *tied*: the interval contains 1; no verdict without an interval (n < 2). The "
      "all-layers ratio weights each stream by its share of attention layers (the published definition) and takes "
      "the t interval of the per-passage weighted ratio. The last column is the published *CI-safe* test of "
      "threshold A that MAX_USABLE_CR also reports: the codec's mean rel-MSE plus its own (unpaired) 95 % "
      "half-width must not exceed the baseline's mean rel-MSE.");
  std::vector<std::string> split;
  for (const auto& stream : c.s.streams) {
    const auto* cell = c.s.find_cell(stream, c.codec);
    const auto* base = fp8_cell(c.s, stream);
    if (!cell || !base || !cell->ratio_vs_fp8) continue;
    const auto chk = ci_safe_check(*cell, *base, 1.0);
    if (verdict_of(*cell->ratio_vs_fp8) == Verdict::kWin && chk.has_interval && !chk.fits) {
      split.push_back(fmt::format("{} is a win in the paired view (ratio {}) yet fails threshold A in the CI-safe "
                                  "view ({} + half-width = {} > {} mean {})",
                                  stream_short(stream), ratio_with_ci(*cell->ratio_vs_fp8), codec_label(c.codec),
                                  fmt_sci(chk.used, 3), baseline_label(c.s), fmt_sci(chk.budget, 3)));
    }
  }
  if (!split.empty()) {
    d.paragraph(fmt::format(
        "**Two views, one set of runs.** {}. Both statements hold: the paired ratio cancels the passage-to-passage "
        "variation both codecs share, while the CI-safe view adds the codec's whole spread across passages to its "
        "mean; MAX_USABLE_CR's *paired CI-safe* view is this report's verdict and its *CI-safe* view is this "
        "column, so the two reports agree once the view is named.",
        fmt::format("{}", fmt::join(split, "; "))));
  }
  if (const auto dom = dominance_text(c); !dom.empty()) d.paragraph(dom);
  d.paragraph("**What this means.** " + meaning_text(c));
  decisions_section(d, c.opt.decisions);
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
              "experiment '{}': codec '{}' has no baseline ({}) run on the same passages on any stream",
              s.experiment.name, codec, s.baseline.empty() ? std::string("fp8_per64") : s.baseline);
  if (!compare.empty()) {
    bool found = false;
    for (const auto& cell : s.cells) found = found || cell.codec == compare;
    if (!found) compare.clear();  // named in the spec but not run: the section says so via absence
  }
  Ctx c{s, prov, codec, compare, opt.file_stem, opt};

  Document d;
  d.heading(1, fmt::format("Findings: {} against {} ({})", codec_label(codec), baseline_label(s), s.experiment.name));
  d.paragraph(generated_note("kvlab report findings"));
  summary_section(d, c);
  caveats_section(d, s, prov, opt.published);
  published_vs_run_section(d, s, opt.published, codec);
  provenance_section(d, s, prov);
  per_stream_section(d, c);
  per_passage_section(d, c);
  audit_section(d, s);
  layer_weighted_section(d, c);
  bits_section(d, c);
  family_vs_family_section(d, c);
  d.heading(2, "Rate and distortion");
  d.paragraph(
      "Every codec of this experiment: bits per vector against the rel-MSE ratio to " + baseline_label(s) +
      " (log scale), 95 % CI bars from the per-passage ratios; the square is " + baseline_label(s) +
      " itself (ratio 1 by definition).");
  d.image("Pareto plot: bits per vector vs rel-MSE ratio to " + baseline_label(s), c.stem + "_pareto.svg");
  forecast_section(d, c);

  RenderedReport r;
  r.markdown = d.str();
  r.files = findings_plots(s, codec, compare, c.stem);
  return r;
}

}  // namespace kvlab::report
