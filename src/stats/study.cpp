// The study summary: see study.h for what is computed and why.
#include "stats/study.h"

#include "stats/stages.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "common/error.h"
#include "common/metric_table.h"
#include "common/streams.h"

namespace kvlab::stats {

// ---------------------------------------------------------------- small parsers

const std::vector<Threshold>& published_thresholds() {
  static const std::vector<Threshold> t = {{"A", 1.00}, {"B", 1.05}, {"C", 1.20}};
  return t;
}

Threshold parse_threshold(const std::string& name) {
  std::string up = name;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& t : published_thresholds())
    if (t.name == up) return t;
  throw UsageError(fmt::format("unknown threshold '{}'; expected A (1.00 x FP8), B (1.05 x FP8) or C (1.20 x FP8)", name));
}

const char* to_string(QView v) {
  switch (v) {
    case QView::kPoint: return "point";
    case QView::kCiSafe: return "ci_safe";
    case QView::kPairedCiSafe: return "paired_ci_safe";
  }
  return "?";
}

const std::vector<std::pair<std::string, double>>& audit_gates() {
  static const std::vector<std::pair<std::string, double>> g = {
      {"excess_kurtosis_abs", 0.5},
      {"isotropy_variance_ratio", 1.5},
      {"hadamard_post_variance_ratio", 1.5},
      {"rms_wasserstein2_over_sigma_per_dim", 0.05},
  };
  return g;
}

// ---------------------------------------------------------------- lookups

const Summary* CellStats::metric(const std::string& name) const {
  const auto it = metrics.find(name);
  return it == metrics.end() ? nullptr : &it->second;
}
const Summary* CellStats::metric_ratio(const std::string& name) const {
  const auto it = metric_ratios.find(name);
  return it == metric_ratios.end() ? nullptr : &it->second;
}

const CellStats* StudySummary::find_cell(const std::string& stream, const std::string& codec) const {
  for (const auto& c : cells)
    if (c.stream == stream && c.codec == codec) return &c;
  return nullptr;
}
const LayerWeightedRatio* StudySummary::find_layer_weighted(const std::string& codec) const {
  for (const auto& l : layer_weighted)
    if (l.codec == codec) return &l;
  return nullptr;
}
const BestQ* StudySummary::find_best_q(const std::string& stream, const std::string& family,
                                       const std::string& threshold, QView view) const {
  for (const auto& b : best_q)
    if (b.stream == stream && b.family == family && b.threshold.name == threshold && b.view == view) return &b;
  return nullptr;
}
const Strategy* StudySummary::find_strategy(const std::string& name, const std::string& family,
                                            const std::string& threshold, QView view) const {
  for (const auto& s : strategies)
    if (s.name == name && s.family == family && s.threshold.name == threshold && s.view == view) return &s;
  return nullptr;
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Baseline first, then by variant, then rate.
bool codec_less(const CodecSpec& a, const CodecSpec& b, const std::string& baseline) {
  const bool ba = a.canonical == baseline, bb = b.canonical == baseline;
  if (ba != bb) return ba;
  if (a.is_baseline() != b.is_baseline()) return a.is_baseline();
  if (a.variant() != b.variant()) return a.variant() < b.variant();
  return a.rate.value_or(0) < b.rate.value_or(0);
}

bool matches_codec_filter(const CodecSpec& spec, const std::vector<std::string>& filter, const std::string& baseline) {
  if (filter.empty() || spec.canonical == baseline) return true;  // the baseline is always kept
  for (const auto& f : filter)
    if (f == spec.family || f == spec.variant() || f == spec.canonical) return true;
  return false;
}

// The value a view compares with its budget, for the summary's metric.
double used_for_view(const CellStats& c, const std::string& metric, QView v, bool* has_interval) {
  *has_interval = true;
  const Summary* m = c.metric(metric);
  const Summary* r = c.metric_ratio(metric);
  switch (v) {
    case QView::kPoint: return m ? m->mean : kNaN;
    case QView::kCiSafe:
      if (!m || !m->ci95_hw) {
        *has_interval = false;
        return m ? m->mean : kNaN;
      }
      return m->mean + *m->ci95_hw;
    case QView::kPairedCiSafe:
      if (!r || !r->ci95_hw) {
        *has_interval = false;
        return r ? r->mean : kNaN;
      }
      return r->mean + *r->ci95_hw;
  }
  return kNaN;
}

// Picks at most `cap` elements, evenly spaced, always keeping both ends.
template <class T>
std::vector<T> thin_out(const std::vector<T>& v, int cap) {
  if (cap <= 0 || static_cast<int>(v.size()) <= cap) return v;
  std::vector<T> out;
  if (cap == 1) return {v.back()};
  for (int i = 0; i < cap; ++i) {
    const std::size_t idx = static_cast<std::size_t>(std::llround(double(i) * double(v.size() - 1) / double(cap - 1)));
    if (out.empty() || !(out.back().q == v[idx].q)) out.push_back(v[idx]);
  }
  return out;
}

}  // namespace

namespace stages {

// Stage 1: group finished runs into (stream, codec) cells, replicates averaged.
void group_rows(Ctx& x) {
  std::unordered_map<std::string, CodecSpec> spec_cache;
  std::set<std::int64_t> passages_seen;
  for (const auto& r : x.data.results) {
    if (!x.stream_selected(r.stream)) continue;
    auto it = spec_cache.find(r.codec);
    if (it == spec_cache.end()) it = spec_cache.emplace(r.codec, parse_codec_spec(r.codec)).first;
    const CodecSpec& spec = it->second;
    KVLAB_CHECK(spec.canonical == r.codec, "run {}: codec '{}' is not canonical (expected '{}')", r.run_id, r.codec,
                spec.canonical);
    KVLAB_CHECK(spec.rate == r.q, "run {}: codec '{}' does not match its q column ({})", r.run_id, r.codec,
                r.q ? std::to_string(*r.q) : std::string("NULL"));
    if (!matches_codec_filter(spec, x.opt.codecs, x.out.baseline)) continue;
    KVLAB_CHECK(r.bits_per_vector > 0 && std::isfinite(r.bits_per_vector),
                "run {} ({} {}): bits_per_vector {} must be positive", r.run_id, r.stream, r.codec, r.bits_per_vector);
    auto [cit, inserted] = x.cell_map.try_emplace({r.stream, r.codec});
    CellData& c = cit->second;
    if (inserted) {
      c.stream = r.stream;
      c.spec = spec;
      c.codec = r.codec;
      c.bits = r.bits_per_vector;
      c.dim = r.dim;
    } else {
      if (r.bits_per_vector != c.bits) c.bits_consistent = false;
      if (!c.dim && r.dim) c.dim = r.dim;
    }
    PassageValue& pv = c.by_passage[r.passage_id];
    const auto add = [&](const std::string& m, double v) {
      pv.sum[m] += v;
      pv.count[m] += 1;
    };
    add("rel_mse", r.rel_mse);
    add("cos_sim", r.cos_sim);
    for (const auto& [m, v] : r.metrics) add(m, v);
    passages_seen.insert(r.passage_id);
  }
  for (auto& [key, c] : x.cell_map)
    for (auto& [pid, pv] : c.by_passage)
      for (auto& [m, v] : pv.sum) v /= pv.count[m];
  x.out.n_passages = static_cast<int>(passages_seen.size());
}

// The baseline: the option, else the experiment's, else fp8_per64 when
// recorded, else the first baseline-family codec recorded.
std::string choose_baseline(const ExperimentData& data, const SummaryOptions& opt) {
  if (!opt.baseline.empty()) return parse_codec_spec(opt.baseline).canonical;
  if (!data.info.baseline.empty()) return parse_codec_spec(data.info.baseline).canonical;
  std::set<std::string> seen;
  for (const auto& r : data.results) seen.insert(r.codec);
  if (seen.count("fp8_per64")) return "fp8_per64";
  for (const auto& f : codec_family_table())
    if (f.is_baseline && seen.count(f.name)) return f.name;
  return "fp8_per64";
}

// Stage 2: per-cell statistics of every metric and the paired ratios to the baseline.
void build_cells(Ctx& x) {
  StudySummary& out = x.out;
  std::unordered_map<std::int64_t, std::string> passage_name;
  for (const auto& p : x.data.passages) passage_name[p.id] = p.name;
  std::set<std::string> stream_set, family_set;
  for (const auto& [key, c] : x.cell_map) {
    stream_set.insert(c.stream);
    if (c.spec.rate) family_set.insert(c.spec.variant());
  }
  out.streams.assign(stream_set.begin(), stream_set.end());
  std::sort(out.streams.begin(), out.streams.end(), stream_less);
  out.families.assign(family_set.begin(), family_set.end());

  for (const auto& [key, c] : x.cell_map)
    if (c.codec == out.baseline) x.base_of_stream[c.stream] = &c;
  for (const auto& s : out.streams)
    if (!x.base_of_stream.count(s))
      out.warnings.push_back(fmt::format(
          "stream {} has no {} baseline (codec {}): no ratios, best Q or strategies for it", s,
          out.baseline == "fp8_per64" ? "FP8" : out.baseline, out.baseline));

  std::vector<const CellData*> ordered;
  for (const auto& [key, c] : x.cell_map) ordered.push_back(&c);
  std::sort(ordered.begin(), ordered.end(), [&](const CellData* a, const CellData* b) {
    if (a->stream != b->stream) return stream_less(a->stream, b->stream);
    return codec_less(a->spec, b->spec, out.baseline);
  });
  for (const CellData* cd : ordered) {
    CellStats cs;
    cs.stream = cd->stream;
    cs.codec = cd->codec;
    cs.family = cd->spec.rate ? cd->spec.variant() : cd->spec.family;
    cs.q = cd->spec.rate;
    cs.n_passages = static_cast<int>(cd->by_passage.size());
    cs.bits_per_vector = cd->bits;
    cs.bits_consistent = cd->bits_consistent;
    if (!cd->bits_consistent)
      out.warnings.push_back(fmt::format("{} {}: runs recorded different bits_per_vector; using {}", cd->stream,
                                         cd->codec, cd->bits));
    cs.dim_recorded = cd->dim.has_value();
    cs.dim = cd->dim.value_or(512);
    cs.cr_vs_bf16 = 16.0 * cs.dim / cs.bits_per_vector;
    cs.bits_per_dim = cs.bits_per_vector / cs.dim;
    std::map<std::string, std::vector<double>> vals;
    for (const auto& [pid, pv] : cd->by_passage)
      for (const auto& [m, v] : pv.sum) vals[m].push_back(v);
    for (const auto& [m, v] : vals) cs.metrics[m] = describe(v);
    cs.rel_mse = cs.metrics["rel_mse"];
    cs.cos_sim = cs.metrics["cos_sim"];
    const auto fit = x.base_of_stream.find(cd->stream);
    if (fit != x.base_of_stream.end()) {
      const CellData* base = fit->second;
      cs.fp8_bits = base->bits;
      cs.cr_vs_fp8 = base->bits / cs.bits_per_vector;
      cs.bit_saving = 1.0 - cs.bits_per_vector / base->bits;
      if (cd != base) {
        std::map<std::string, std::vector<double>> ratios;
        for (const auto& [pid, pv] : cd->by_passage) {
          const auto bit = base->by_passage.find(pid);
          if (bit == base->by_passage.end()) continue;
          for (const auto& [m, v] : pv.sum) {
            const MetricInfo* mi = find_metric(m);
            if (!mi || mi->kind != MetricKind::kDistortion || !bit->second.has(m)) continue;
            ratios[m].push_back(v / bit->second.get(m));
            cs.passage_metric_ratios[m][pid] = ratios[m].back();
          }
          PassageRatio pr;
          pr.passage_id = pid;
          const auto nit = passage_name.find(pid);
          pr.passage = nit != passage_name.end() ? nit->second : std::to_string(pid);
          pr.rel_mse = pv.get("rel_mse");
          pr.fp8_rel_mse = bit->second.get("rel_mse");
          pr.ratio = pr.rel_mse / pr.fp8_rel_mse;
          cs.passages.push_back(std::move(pr));
        }
        for (const auto& [m, v] : ratios) cs.metric_ratios[m] = describe(v);
        std::vector<double> rel;
        for (const auto& pr : cs.passages) rel.push_back(pr.ratio);
        cs.ratio_vs_fp8 = describe(rel);
      }
    }
    out.cells.push_back(std::move(cs));
  }
  index_cells(x);
}

void index_cells(Ctx& x) {
  x.cell_index.clear();
  x.swept.clear();
  for (const auto& c : x.out.cells) x.cell_index[{c.stream, c.codec}] = &c;
  for (const auto& c : x.out.cells)
    if (c.q) x.swept[{c.stream, c.family}].push_back(&c);
  for (auto& [k, v] : x.swept)
    std::sort(v.begin(), v.end(), [](const CellStats* a, const CellStats* b) { return *a->q < *b->q; });
}

// Stage 3: the four audit values per stream, against their gates.
void summarize_audits(Ctx& x) {
  // ---- audits
  {
    std::map<std::string, std::map<std::int64_t, std::vector<const AuditResult*>>> by_stream;
    for (const auto& a : x.data.audits)
      if (x.stream_selected(a.stream)) by_stream[a.stream][a.passage_id].push_back(&a);
    std::vector<std::string> astreams;
    for (const auto& [s, m] : by_stream) astreams.push_back(s);
    std::sort(astreams.begin(), astreams.end(), stream_less);
    using Getter = double (*)(const AuditResult&);
    const Getter getters[4] = {
        [](const AuditResult& a) { return a.excess_kurtosis_abs; },
        [](const AuditResult& a) { return a.isotropy_variance_ratio; },
        [](const AuditResult& a) { return a.hadamard_post_variance_ratio; },
        [](const AuditResult& a) { return a.rms_wasserstein2_over_sigma_per_dim; },
    };
    for (const auto& s : astreams) {
      const auto& per_passage = by_stream[s];
      StreamAuditStats st;
      st.stream = s;
      st.n_passages = static_cast<int>(per_passage.size());
      st.n_vectors = per_passage.begin()->second.front()->n_vectors;
      st.dim = per_passage.begin()->second.front()->dim;
      for (int m = 0; m < 4; ++m) {
        AuditMetricStats ms;
        ms.metric = audit_gates()[m].first;
        ms.gate = audit_gates()[m].second;
        std::vector<double> vals;
        for (const auto& [pid, rows] : per_passage) {
          double v = 0.0;
          for (const AuditResult* r : rows) v += getters[m](*r);
          v /= static_cast<double>(rows.size());
          vals.push_back(v);
          if (v > ms.gate) ++ms.passages_firing;
        }
        ms.value = describe(vals);
        ms.fires = ms.value.mean > ms.gate;
        st.metrics.push_back(std::move(ms));
      }
      x.out.audits.push_back(std::move(st));
    }
  }

}

// Stage 4: weights w_s = layers_s / sum layers from the layer mix.
void layer_weights(Ctx& x) {
  // ---- layer weights
  {
    double total = 0.0;
    for (const auto& [s, layers] : x.data.info.layer_mix) {
      KVLAB_CHECK(layers >= 0 && std::isfinite(layers), "experiment '{}': layer mix gives stream {} {} layers",
                  x.data.info.name, s, layers);
      if (x.stream_selected(s)) total += layers;
    }
    if (x.data.info.layer_mix.empty()) {
      x.out.warnings.push_back("the experiment defines no layer mix: no layer-weighted results or strategies");
    } else {
      KVLAB_CHECK(total > 0, "experiment '{}': the layer mix has no layers", x.data.info.name);
      for (const auto& [s, layers] : x.data.info.layer_mix)
        if (x.stream_selected(s) && layers > 0) x.out.weights.push_back({s, layers, layers / total});
      for (const auto& s : x.out.streams) {
        bool weighted = false;
        for (const auto& w : x.out.weights) weighted |= (w.stream == s);
        if (!weighted) x.out.warnings.push_back(fmt::format("stream {} is not in the layer mix: it gets no weight", s));
      }
    }
  }

}

// Stage 5: layer-weighted ratio of every non-baseline codec (published RSS and paired intervals).
void layer_weighted_ratios(Ctx& x) {
  // ---- layer-weighted ratio per lattice codec
  if (!x.out.weights.empty()) {
    std::set<std::tuple<std::string, int, std::string>> codecs;  // (variant, rate, spec), fixed-rate codecs at rate 0
    for (const auto& c : x.out.cells)
      if (c.codec != x.out.baseline) codecs.insert({c.family, c.q.value_or(0), c.codec});
    for (const auto& [family, q, spec] : codecs) {
      LayerWeightedRatio lw;
      lw.family = family;
      if (q > 0) lw.q = q;
      lw.codec = spec;
      double rss = 0.0;
      bool all_hw = true;
      double bf16_bits = 0.0;
      std::vector<const CellStats*> cells;
      for (const auto& w : x.out.weights) {
        const auto it = x.cell_index.find({w.stream, lw.codec});
        if (it == x.cell_index.end() || !it->second->ratio_vs_fp8 || it->second->ratio_vs_fp8->n == 0) {
          lw.missing_streams.push_back(w.stream);
          continue;
        }
        const CellStats* c = it->second;
        cells.push_back(c);
        lw.mean += w.weight * c->ratio_vs_fp8->mean;
        if (c->ratio_vs_fp8->ci95_hw)
          rss += std::pow(w.weight * *c->ratio_vs_fp8->ci95_hw, 2);
        else
          all_hw = false;
        lw.weighted_bits += w.weight * c->bits_per_vector;
        lw.weighted_fp8_bits += w.weight * *c->fp8_bits;
        bf16_bits += w.weight * 16.0 * c->dim;
      }
      lw.complete = lw.missing_streams.empty();
      if (!lw.complete) {
        lw.mean = kNaN;
        x.out.layer_weighted.push_back(std::move(lw));
        continue;
      }
      if (all_hw) lw.rss_hw = std::sqrt(rss);
      lw.cr_vs_fp8 = lw.weighted_fp8_bits / lw.weighted_bits;
      lw.cr_vs_bf16 = bf16_bits / lw.weighted_bits;
      lw.bit_saving = 1.0 - lw.weighted_bits / lw.weighted_fp8_bits;
      // Paired: passages with a ratio on every weighted stream.
      std::map<std::int64_t, std::pair<double, int>> acc;
      for (std::size_t i = 0; i < cells.size(); ++i)
        for (const auto& pr : cells[i]->passages) {
          auto& a = acc[pr.passage_id];
          a.first += x.out.weights[i].weight * pr.ratio;
          a.second += 1;
        }
      std::vector<double> paired;
      for (const auto& [pid, a] : acc)
        if (a.second == static_cast<int>(cells.size())) paired.push_back(a.first);
      lw.paired = describe(paired);
      x.out.layer_weighted.push_back(std::move(lw));
    }
  }

}

// Stage 6: error rising with the rate between neighbouring swept rates.
void monotonicity(Ctx& x) {
  // ---- monotonicity
  for (const auto& s : x.out.streams)
    for (const auto& f : x.out.families) {
      const auto it = x.swept.find({s, f});
      if (it == x.swept.end()) continue;
      const auto& v = it->second;
      for (std::size_t i = 0; i + 1 < v.size(); ++i) {
        const CellStats* lo = v[i];
        const CellStats* hi = v[i + 1];
        if (!(hi->rel_mse.mean > lo->rel_mse.mean)) continue;
        MonotonicityWarning w;
        w.stream = s;
        w.family = f;
        w.q_lo = *lo->q;
        w.q_hi = *hi->q;
        w.mean_lo = lo->rel_mse.mean;
        w.mean_hi = hi->rel_mse.mean;
        w.same_bits = lo->bits_per_vector == hi->bits_per_vector;
        const CellData& dlo = x.cell_map.at({s, lo->codec});
        const CellData& dhi = x.cell_map.at({s, hi->codec});
        std::vector<double> a, b;
        for (const auto& [pid, pv] : dhi.by_passage) {
          const auto jt = dlo.by_passage.find(pid);
          if (jt == dlo.by_passage.end()) continue;
          a.push_back(pv.get("rel_mse"));
          b.push_back(jt->second.get("rel_mse"));
        }
        if (!a.empty()) w.paired = paired_difference(a, b);
        const bool sig = w.paired && w.paired->significant();
        w.message = fmt::format(
            "{} {}: rel-MSE rises from Q={} ({:.6g}) to Q={} ({:.6g}){}; the max-usable-Q solver assumes it falls "
            "with Q ({})",
            s, f, w.q_lo, w.mean_lo, w.q_hi, w.mean_hi, w.same_bits ? " at the same bits" : "",
            sig ? "paired difference significant at 95 %" : "within noise (paired 95 % interval includes 0)");
        x.out.monotonicity.push_back(std::move(w));
      }
    }

}

// Stage 7: smallest admissible swept rate per stream, variant, threshold and view.
void best_points(Ctx& x) {
  // ---- best Q
  for (const auto& s : x.out.streams) {
    const auto bit = x.cell_index.find({s, x.out.baseline});
    if (bit == x.cell_index.end()) continue;
    const CellStats* fp8 = bit->second;
    for (const auto& f : x.out.families) {
      const auto it = x.swept.find({s, f});
      if (it == x.swept.end()) continue;
      const auto& v = it->second;
      for (const auto& th : x.opt.thresholds)
        for (QView view : x.opt.views) {
          BestQ b;
          b.stream = s;
          b.family = f;
          b.threshold = th;
          b.view = view;
          b.fp8_bits = fp8->bits_per_vector;
          b.max_swept_q = *v.back()->q;
          for (const CellStats* c : v) {
            QCheck qc;
            qc.q = *c->q;
            qc.bits = c->bits_per_vector;
            const Summary* base = fp8->metric(x.out.metric);
            qc.budget = view == QView::kPairedCiSafe ? th.factor : th.factor * (base ? base->mean : kNaN);
            qc.used = used_for_view(*c, x.out.metric, view, &qc.has_interval);
            qc.fits = qc.has_interval && std::isfinite(qc.used) && qc.used <= qc.budget;
            qc.margin = (qc.budget - qc.used) / qc.budget;
            b.checks.push_back(qc);
          }
          const QCheck* first = nullptr;
          for (const auto& qc : b.checks)
            if (qc.fits) {
              first = &qc;
              break;
            }
          if (first) {
            const CellStats* c = x.cell_index.at({s, codec_spec_at_rate(f, first->q).canonical});
            b.admissible = true;
            b.q_min = first->q;
            b.q_recommended = first->q;
            for (const auto& qc : b.checks)
              if (qc.fits && qc.bits == first->bits && qc.q > *b.q_recommended) b.q_recommended = qc.q;
            b.bits = first->bits;
            b.dim = c->dim;
            b.cr_vs_fp8 = *b.fp8_bits / b.bits;
            b.cr_vs_bf16 = 16.0 * c->dim / b.bits;
            b.bit_saving = 1.0 - b.bits / *b.fp8_bits;
            b.margin = first->margin;
            b.budget = first->budget;
            b.used = first->used;
            if (*b.q_recommended != *b.q_min)
              b.note = fmt::format("Q={} has the same bits and fits: prefer it", *b.q_recommended);
          } else {
            bool any_interval = false;
            for (const auto& qc : b.checks) any_interval |= qc.has_interval;
            b.note = any_interval ? fmt::format("not admissible (need Q > {})", b.max_swept_q)
                                  : std::string("not admissible (no interval: fewer than 2 passages)");
          }
          x.out.best_q.push_back(std::move(b));
        }
    }
  }

}

// Stage 8: deployments: one rate for all streams, or each stream its own.
void strategies(Ctx& x) {
  // ---- deployment strategies
  if (!x.out.weights.empty()) {
    for (const auto& f : x.out.families)
      for (const auto& th : x.opt.thresholds)
        for (QView view : x.opt.views) {
          // per_stream
          Strategy ps;
          ps.name = "per_stream";
          ps.family = f;
          ps.threshold = th;
          ps.view = view;
          ps.admissible = true;
          double bf16 = 0.0;
          for (const auto& w : x.out.weights) {
            StrategyStream ss;
            ss.stream = w.stream;
            ss.weight = w.weight;
            const BestQ* b = x.out.find_best_q(w.stream, f, th.name, view);
            if (!b || !b->admissible) {
              ps.admissible = false;
              ps.note += fmt::format("{}{}: {}", ps.note.empty() ? "" : "; ", w.stream,
                                     b ? b->note : std::string("no data"));
            } else {
              ss.q = b->q_recommended;
              ss.bits = b->bits;
              ss.fp8_bits = *b->fp8_bits;
              ss.dim = b->dim;
              ps.weighted_bits += w.weight * ss.bits;
              ps.weighted_fp8_bits += w.weight * ss.fp8_bits;
              bf16 += w.weight * 16.0 * ss.dim;
            }
            ps.streams.push_back(std::move(ss));
          }
          if (ps.admissible) {
            ps.cr_vs_fp8 = ps.weighted_fp8_bits / ps.weighted_bits;
            ps.cr_vs_bf16 = bf16 / ps.weighted_bits;
            ps.bit_saving = 1.0 - ps.weighted_bits / ps.weighted_fp8_bits;
          }

          // uniform: the smallest Q swept on every weighted stream that fits on all of them
          Strategy un;
          un.name = "uniform";
          un.family = f;
          un.threshold = th;
          un.view = view;
          std::set<int> common;
          bool first_stream = true;
          bool all_have = true;
          for (const auto& w : x.out.weights) {
            const BestQ* b = x.out.find_best_q(w.stream, f, th.name, view);
            if (!b) {
              all_have = false;
              break;
            }
            std::set<int> qs;
            for (const auto& qc : b->checks)
              if (qc.fits) qs.insert(qc.q);
            if (first_stream) {
              common = qs;
              first_stream = false;
            } else {
              std::set<int> keep;
              std::set_intersection(common.begin(), common.end(), qs.begin(), qs.end(),
                                    std::inserter(keep, keep.begin()));
              common.swap(keep);
            }
          }
          if (all_have && !common.empty()) {
            // Smallest weighted bits among the common fitting Q; at equal bits the largest Q.
            std::optional<int> best;
            double best_bits = 0.0;
            for (int q : common) {
              double wb = 0.0;
              for (const auto& w : x.out.weights) wb += w.weight * x.cell_index.at({w.stream, codec_spec_at_rate(f, q).canonical})->bits_per_vector;
              if (!best || wb < best_bits || (wb == best_bits && q > *best)) {
                best = q;
                best_bits = wb;
              }
            }
            un.admissible = true;
            un.uniform_q = best;
            double bf = 0.0;
            for (const auto& w : x.out.weights) {
              const CellStats* c = x.cell_index.at({w.stream, codec_spec_at_rate(f, *best).canonical});
              StrategyStream ss{w.stream, w.weight, best, c->bits_per_vector, *c->fp8_bits, c->dim};
              un.weighted_bits += w.weight * ss.bits;
              un.weighted_fp8_bits += w.weight * ss.fp8_bits;
              bf += w.weight * 16.0 * ss.dim;
              un.streams.push_back(ss);
            }
            un.cr_vs_fp8 = un.weighted_fp8_bits / un.weighted_bits;
            un.cr_vs_bf16 = bf / un.weighted_bits;
            un.bit_saving = 1.0 - un.weighted_bits / un.weighted_fp8_bits;
          } else {
            un.admissible = false;
            un.note = all_have ? "no swept Q fits on every stream" : "the family was not swept on every weighted stream";
            for (const auto& w : x.out.weights) un.streams.push_back(StrategyStream{w.stream, w.weight, std::nullopt, 0, 0, 512});
          }
          x.out.strategies.push_back(std::move(ps));
          x.out.strategies.push_back(std::move(un));
        }
  }

}

// Stage 9: rates worth running to pin down the best operating points.
void suggestions(Ctx& x) {
  // ---- suggestions
  // Without a bit formula no suggestions are computed (study.h: BitsFn).
  if (x.opt.bits_of) {
    std::set<std::pair<std::string, std::string>> seen;  // (stream, codec)
    for (const auto& b : x.out.best_q) {
      if (b.checks.empty()) continue;
      std::set<int> swept_q;
      for (const auto& qc : b.checks) swept_q.insert(qc.q);
      const auto bits = [&](int q) { return x.opt.bits_of(b.family, q, b.dim); };
      // Largest Q of the bit class of q (scan upward while bits stay equal).
      const auto class_top = [&](int q) {
        const double bq = bits(q);
        int top = q;
        while (top - q < 100000 && bits(top + 1) == bq) ++top;
        return top;
      };
      struct Cand {
        int q;
        double bits;
        std::string reason;
      };
      std::vector<Cand> cands;
      if (b.admissible) {
        const int qmin = *b.q_min;
        std::optional<int> qfail;
        for (const auto& qc : b.checks)
          if (qc.q < qmin) qfail = qc.q;
        if (qfail) {
          // Largest Q of each bit class from the last failing to the first passing swept Q.
          const double top_bits = bits(qmin);
          int q = *qfail + 1;
          while (q <= qmin || bits(q) == top_bits) {
            const int top = class_top(q);
            if (!swept_q.count(top))
              cands.push_back({top, bits(top),
                               top > qmin ? fmt::format("same bits as passing Q={} ({} {}), larger Q", qmin,
                                                        b.threshold.name, to_string(b.view))
                                          : fmt::format("between failing Q={} and passing Q={} ({} {})", *qfail,
                                                        qmin, b.threshold.name, to_string(b.view))});
            q = top + 1;
          }
        } else {
          // The smallest swept Q already fits: probe the bit class below it.
          if (qmin > 1) {
            int lo = qmin - 1;
            const double bl = bits(lo);
            while (lo > 1 && bits(lo - 1) == bl) --lo;
            const int top = class_top(lo);
            if (!swept_q.count(top))
              cands.push_back({top, bits(top),
                               fmt::format("smallest swept Q={} already fits ({} {}): probe the bit class below",
                                           qmin, b.threshold.name, to_string(b.view))});
          }
          const int top = class_top(qmin);
          if (top != qmin && !swept_q.count(top))
            cands.push_back({top, bits(top), fmt::format("same bits as passing Q={}, larger Q", qmin)});
        }
      } else {
        const int qmax = b.max_swept_q;
        const int top = class_top(qmax);
        if (top != qmax && !swept_q.count(top))
          cands.push_back({top, bits(top),
                           fmt::format("not admissible up to Q={} ({} {}): same bits, larger Q", qmax,
                                       b.threshold.name, to_string(b.view))});
        const int probe = class_top(2 * qmax);
        if (!swept_q.count(probe))
          cands.push_back({probe, bits(probe),
                           fmt::format("not admissible up to Q={} ({} {}): probe above the swept grid", qmax,
                                       b.threshold.name, to_string(b.view))});
      }
      cands = thin_out(cands, x.opt.max_suggestions_per_stream);
      for (const auto& c : cands) {
        Suggestion sg;
        sg.stream = b.stream;
        sg.family = b.family;
        sg.q = c.q;
        sg.bits = c.bits;
        sg.threshold = b.threshold.name;
        sg.view = b.view;
        sg.reason = c.reason;
        if (seen.insert({sg.stream, sg.codec()}).second) x.out.suggestions.push_back(std::move(sg));
      }
    }
    std::sort(x.out.suggestions.begin(), x.out.suggestions.end(), [](const Suggestion& a, const Suggestion& b) {
      if (a.stream != b.stream) return stream_less(a.stream, b.stream);
      if (a.family != b.family) return a.family < b.family;
      return a.q < b.q;
    });
  }

}

// Stage 10: every swept point on the rate-distortion plane, frontier flagged.
void pareto(Ctx& x) {
  // ---- Pareto rows (every swept point, frontier flagged per stream)
  for (const auto& s : x.out.streams) {
    std::vector<const CellStats*> rows;
    for (const auto& c : x.out.cells)
      if (c.stream == s) rows.push_back(&c);
    std::sort(rows.begin(), rows.end(), [](const CellStats* a, const CellStats* b) {
      return a->bits_per_vector != b->bits_per_vector ? a->bits_per_vector < b->bits_per_vector
                                                      : a->rel_mse.mean < b->rel_mse.mean;
    });
    for (const CellStats* c : rows) {
      ParetoRow p;
      p.stream = s;
      p.codec = c->codec;
      p.family = c->family;
      p.q = c->q;
      p.bits = c->bits_per_vector;
      p.rel_mse = c->rel_mse;
      p.ratio_vs_fp8 = c->ratio_vs_fp8;
      bool dominated = false;
      for (const CellStats* o : rows) {
        if (o == c) continue;
        const bool le_bits = o->bits_per_vector <= c->bits_per_vector;
        const bool le_err = o->rel_mse.mean <= c->rel_mse.mean;
        const bool strictly = o->bits_per_vector < c->bits_per_vector || o->rel_mse.mean < c->rel_mse.mean;
        if (le_bits && le_err && strictly) {
          dominated = true;
          break;
        }
      }
      p.on_frontier = !dominated && std::isfinite(c->rel_mse.mean);
      x.out.pareto.push_back(std::move(p));
    }
  }
}

}  // namespace stages

StudySummary summarize(const ExperimentData& data, const SummaryOptions& opt) {
  StudySummary out;
  out.experiment = data.info;
  out.passages = data.passages;
  out.baseline = stages::choose_baseline(data, opt);
  out.metric = metric_or_throw(opt.metric, true).name;
  using namespace stages;
  Ctx x{data, opt, out, {}, {}, {}, {}};
  group_rows(x);
  build_cells(x);
  summarize_audits(x);
  layer_weights(x);
  layer_weighted_ratios(x);
  monotonicity(x);
  best_points(x);
  strategies(x);
  suggestions(x);
  pareto(x);
  return out;
}

}  // namespace kvlab::stats
