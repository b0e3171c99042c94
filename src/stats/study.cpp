// The study summary: see study.h for what is computed and why.
#include "stats/study.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "common/error.h"

namespace kvlab::stats {

// ---------------------------------------------------------------- small parsers

std::string CodecSpec::canonical() const {
  if (!q) return family;
  return fmt::format("{}:q={}", family, *q);
}

CodecSpec parse_codec_spec(const std::string& spec) {
  if (spec == kFp8Codec) return CodecSpec{spec, std::nullopt};
  const auto colon = spec.find(':');
  KVLAB_CHECK(colon != std::string::npos && colon > 0 && spec.compare(colon + 1, 2, "q=") == 0,
              "codec spec '{}' is not canonical; expected 'fp8_per64' or '<family>:q=<Q>' such as 'e8:q=38'", spec);
  const std::string family = spec.substr(0, colon);
  for (char c : family)
    KVLAB_CHECK(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_',
                "codec spec '{}': family '{}' must be lower-case letters, digits or '_'", spec, family);
  const std::string qs = spec.substr(colon + 3);
  int q = 0;
  const auto [ptr, ec] = std::from_chars(qs.data(), qs.data() + qs.size(), q);
  KVLAB_CHECK(ec == std::errc() && ptr == qs.data() + qs.size() && !qs.empty() && q >= 1,
              "codec spec '{}': Q '{}' must be an integer >= 1", spec, qs);
  return CodecSpec{family, q};
}

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

int stream_rank(const std::string& s) {
  for (int i = 0; i < 3; ++i)
    if (s == kStreamOrder[i]) return i;
  return 3;
}
bool stream_less(const std::string& a, const std::string& b) {
  const int ra = stream_rank(a), rb = stream_rank(b);
  return ra != rb ? ra < rb : a < b;
}

// Per-passage value of one (stream, codec) cell: replicates averaged.
struct PassageValue {
  double rel_mse = 0.0;
  double cos_sim = 0.0;
  int count = 0;
};

struct CellData {
  std::string stream;
  CodecSpec spec;
  std::string codec;
  double bits = 0.0;
  bool bits_consistent = true;
  std::optional<int> dim;
  std::map<std::int64_t, PassageValue> by_passage;  // passage id -> averaged values
};

bool codec_less(const CodecSpec& a, const CodecSpec& b) {
  if (a.is_fp8() != b.is_fp8()) return a.is_fp8();
  if (a.family != b.family) return a.family < b.family;
  return a.q.value_or(0) < b.q.value_or(0);
}

bool matches_codec_filter(const CodecSpec& spec, const std::vector<std::string>& filter) {
  if (filter.empty() || spec.is_fp8()) return true;  // the baseline is always kept
  const std::string canon = spec.canonical();
  for (const auto& f : filter)
    if (f == spec.family || f == canon) return true;
  return false;
}

double used_for_view(const CellStats& c, QView v, bool* has_interval) {
  *has_interval = true;
  switch (v) {
    case QView::kPoint: return c.rel_mse.mean;
    case QView::kCiSafe:
      if (!c.rel_mse.ci95_hw) {
        *has_interval = false;
        return c.rel_mse.mean;
      }
      return c.rel_mse.mean + *c.rel_mse.ci95_hw;
    case QView::kPairedCiSafe:
      if (!c.ratio_vs_fp8 || !c.ratio_vs_fp8->ci95_hw) {
        *has_interval = false;
        return c.ratio_vs_fp8 ? c.ratio_vs_fp8->mean : kNaN;
      }
      return c.ratio_vs_fp8->mean + *c.ratio_vs_fp8->ci95_hw;
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

StudySummary summarize(const ExperimentData& data, const SummaryOptions& opt) {
  StudySummary out;
  out.experiment = data.info;

  std::unordered_map<std::int64_t, std::string> passage_name;
  for (const auto& p : data.passages) passage_name[p.id] = p.name;

  const auto stream_selected = [&](const std::string& s) {
    return opt.streams.empty() || std::find(opt.streams.begin(), opt.streams.end(), s) != opt.streams.end();
  };

  // ---- group rows into cells (one per stream x codec)
  std::map<std::pair<std::string, std::string>, CellData> cell_map;
  std::unordered_map<std::string, CodecSpec> spec_cache;
  std::set<std::int64_t> passages_seen;
  for (const auto& r : data.results) {
    if (!stream_selected(r.stream)) continue;
    auto it = spec_cache.find(r.codec);
    if (it == spec_cache.end()) it = spec_cache.emplace(r.codec, parse_codec_spec(r.codec)).first;
    const CodecSpec& spec = it->second;
    KVLAB_CHECK(spec.q == r.q, "run {}: codec '{}' does not match its q column ({})", r.run_id, r.codec,
                r.q ? std::to_string(*r.q) : std::string("NULL"));
    if (!matches_codec_filter(spec, opt.codecs)) continue;
    KVLAB_CHECK(r.bits_per_vector > 0 && std::isfinite(r.bits_per_vector),
                "run {} ({} {}): bits_per_vector {} must be positive", r.run_id, r.stream, r.codec, r.bits_per_vector);
    auto [cit, inserted] = cell_map.try_emplace({r.stream, r.codec});
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
    pv.rel_mse += r.rel_mse;
    pv.cos_sim += r.cos_sim;
    pv.count += 1;
    passages_seen.insert(r.passage_id);
  }
  for (auto& [key, c] : cell_map)
    for (auto& [pid, pv] : c.by_passage) {
      pv.rel_mse /= pv.count;
      pv.cos_sim /= pv.count;
    }
  out.n_passages = static_cast<int>(passages_seen.size());

  // ---- streams and families
  std::set<std::string> stream_set, family_set;
  for (const auto& [key, c] : cell_map) {
    stream_set.insert(c.stream);
    if (!c.spec.is_fp8()) family_set.insert(c.spec.family);
  }
  out.streams.assign(stream_set.begin(), stream_set.end());
  std::sort(out.streams.begin(), out.streams.end(), stream_less);
  out.families.assign(family_set.begin(), family_set.end());

  // ---- cells
  std::map<std::string, const CellData*> fp8_of_stream;
  for (const auto& [key, c] : cell_map)
    if (c.spec.is_fp8()) fp8_of_stream[c.stream] = &c;
  for (const auto& s : out.streams)
    if (!fp8_of_stream.count(s))
      out.warnings.push_back(fmt::format(
          "stream {} has no FP8 baseline (codec fp8_per64): no ratios, best Q or strategies for it", s));

  std::vector<const CellData*> ordered;
  for (const auto& [key, c] : cell_map) ordered.push_back(&c);
  std::sort(ordered.begin(), ordered.end(), [](const CellData* a, const CellData* b) {
    if (a->stream != b->stream) return stream_less(a->stream, b->stream);
    return codec_less(a->spec, b->spec);
  });
  for (const CellData* cd : ordered) {
    CellStats cs;
    cs.stream = cd->stream;
    cs.codec = cd->codec;
    cs.family = cd->spec.family;
    cs.q = cd->spec.q;
    cs.n_passages = static_cast<int>(cd->by_passage.size());
    cs.bits_per_vector = cd->bits;
    cs.bits_consistent = cd->bits_consistent;
    if (!cd->bits_consistent)
      out.warnings.push_back(fmt::format("{} {}: runs recorded different bits_per_vector; using {}", cd->stream,
                                         cd->codec, cd->bits));
    cs.dim_recorded = cd->dim.has_value();
    cs.dim = cd->dim.value_or(512);
    cs.cr_vs_bf16 = 16.0 * cs.dim / cs.bits_per_vector;
    std::vector<double> rel, cos;
    rel.reserve(cd->by_passage.size());
    cos.reserve(cd->by_passage.size());
    for (const auto& [pid, pv] : cd->by_passage) {
      rel.push_back(pv.rel_mse);
      cos.push_back(pv.cos_sim);
    }
    cs.rel_mse = describe(rel);
    cs.cos_sim = describe(cos);
    const auto fit = fp8_of_stream.find(cd->stream);
    if (fit != fp8_of_stream.end()) {
      const CellData* fp8 = fit->second;
      cs.fp8_bits = fp8->bits;
      cs.cr_vs_fp8 = fp8->bits / cs.bits_per_vector;
      cs.bit_saving = 1.0 - cs.bits_per_vector / fp8->bits;
      if (!cd->spec.is_fp8()) {
        std::vector<double> ratios;
        for (const auto& [pid, pv] : cd->by_passage) {
          const auto bit = fp8->by_passage.find(pid);
          if (bit == fp8->by_passage.end()) continue;
          PassageRatio pr;
          pr.passage_id = pid;
          const auto nit = passage_name.find(pid);
          pr.passage = nit != passage_name.end() ? nit->second : std::to_string(pid);
          pr.rel_mse = pv.rel_mse;
          pr.fp8_rel_mse = bit->second.rel_mse;
          pr.ratio = pv.rel_mse / bit->second.rel_mse;
          ratios.push_back(pr.ratio);
          cs.passages.push_back(std::move(pr));
        }
        cs.ratio_vs_fp8 = describe(ratios);
      }
    }
    out.cells.push_back(std::move(cs));
  }
  // Index: (stream, codec) -> cell.
  std::map<std::pair<std::string, std::string>, const CellStats*> cell_index;
  for (const auto& c : out.cells) cell_index[{c.stream, c.codec}] = &c;

  // ---- audits
  {
    std::map<std::string, std::map<std::int64_t, std::vector<const AuditResult*>>> by_stream;
    for (const auto& a : data.audits)
      if (stream_selected(a.stream)) by_stream[a.stream][a.passage_id].push_back(&a);
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
      out.audits.push_back(std::move(st));
    }
  }

  // ---- layer weights
  {
    double total = 0.0;
    for (const auto& [s, layers] : data.info.layer_mix) {
      KVLAB_CHECK(layers >= 0 && std::isfinite(layers), "experiment '{}': layer mix gives stream {} {} layers",
                  data.info.name, s, layers);
      if (stream_selected(s)) total += layers;
    }
    if (data.info.layer_mix.empty()) {
      out.warnings.push_back("the experiment defines no layer mix: no layer-weighted results or strategies");
    } else {
      KVLAB_CHECK(total > 0, "experiment '{}': the layer mix has no layers", data.info.name);
      for (const auto& [s, layers] : data.info.layer_mix)
        if (stream_selected(s) && layers > 0) out.weights.push_back({s, layers, layers / total});
      for (const auto& s : out.streams) {
        bool weighted = false;
        for (const auto& w : out.weights) weighted |= (w.stream == s);
        if (!weighted) out.warnings.push_back(fmt::format("stream {} is not in the layer mix: it gets no weight", s));
      }
    }
  }

  // ---- layer-weighted ratio per lattice codec
  if (!out.weights.empty()) {
    std::set<std::pair<std::string, int>> lattice_codecs;
    for (const auto& c : out.cells)
      if (c.q) lattice_codecs.insert({c.family, *c.q});
    for (const auto& [family, q] : lattice_codecs) {
      LayerWeightedRatio lw;
      lw.family = family;
      lw.q = q;
      lw.codec = CodecSpec{family, q}.canonical();
      double rss = 0.0;
      bool all_hw = true;
      double bf16_bits = 0.0;
      std::vector<const CellStats*> cells;
      for (const auto& w : out.weights) {
        const auto it = cell_index.find({w.stream, lw.codec});
        if (it == cell_index.end() || !it->second->ratio_vs_fp8 || it->second->ratio_vs_fp8->n == 0) {
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
        out.layer_weighted.push_back(std::move(lw));
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
          a.first += out.weights[i].weight * pr.ratio;
          a.second += 1;
        }
      std::vector<double> paired;
      for (const auto& [pid, a] : acc)
        if (a.second == static_cast<int>(cells.size())) paired.push_back(a.first);
      lw.paired = describe(paired);
      out.layer_weighted.push_back(std::move(lw));
    }
  }

  // ---- swept Q per (stream, family), ascending
  std::map<std::pair<std::string, std::string>, std::vector<const CellStats*>> swept;
  for (const auto& c : out.cells)
    if (c.q) swept[{c.stream, c.family}].push_back(&c);
  for (auto& [k, v] : swept)
    std::sort(v.begin(), v.end(), [](const CellStats* a, const CellStats* b) { return *a->q < *b->q; });

  // ---- monotonicity
  for (const auto& s : out.streams)
    for (const auto& f : out.families) {
      const auto it = swept.find({s, f});
      if (it == swept.end()) continue;
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
        const CellData& dlo = cell_map.at({s, lo->codec});
        const CellData& dhi = cell_map.at({s, hi->codec});
        std::vector<double> a, b;
        for (const auto& [pid, pv] : dhi.by_passage) {
          const auto jt = dlo.by_passage.find(pid);
          if (jt == dlo.by_passage.end()) continue;
          a.push_back(pv.rel_mse);
          b.push_back(jt->second.rel_mse);
        }
        if (!a.empty()) w.paired = paired_difference(a, b);
        const bool sig = w.paired && w.paired->significant();
        w.message = fmt::format(
            "{} {}: rel-MSE rises from Q={} ({:.6g}) to Q={} ({:.6g}){}; the max-usable-Q solver assumes it falls "
            "with Q ({})",
            s, f, w.q_lo, w.mean_lo, w.q_hi, w.mean_hi, w.same_bits ? " at the same bits" : "",
            sig ? "paired difference significant at 95 %" : "within noise (paired 95 % interval includes 0)");
        out.monotonicity.push_back(std::move(w));
      }
    }

  // ---- best Q
  for (const auto& s : out.streams) {
    const auto fit = fp8_of_stream.find(s);
    if (fit == fp8_of_stream.end()) continue;
    const CellStats* fp8 = cell_index.at({s, kFp8Codec});
    for (const auto& f : out.families) {
      const auto it = swept.find({s, f});
      if (it == swept.end()) continue;
      const auto& v = it->second;
      for (const auto& th : opt.thresholds)
        for (QView view : opt.views) {
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
            qc.budget = view == QView::kPairedCiSafe ? th.factor : th.factor * fp8->rel_mse.mean;
            qc.used = used_for_view(*c, view, &qc.has_interval);
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
            const CellStats* c = cell_index.at({s, CodecSpec{f, first->q}.canonical()});
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
          out.best_q.push_back(std::move(b));
        }
    }
  }

  // ---- deployment strategies
  if (!out.weights.empty()) {
    for (const auto& f : out.families)
      for (const auto& th : opt.thresholds)
        for (QView view : opt.views) {
          // per_stream
          Strategy ps;
          ps.name = "per_stream";
          ps.family = f;
          ps.threshold = th;
          ps.view = view;
          ps.admissible = true;
          double bf16 = 0.0;
          for (const auto& w : out.weights) {
            StrategyStream ss;
            ss.stream = w.stream;
            ss.weight = w.weight;
            const BestQ* b = out.find_best_q(w.stream, f, th.name, view);
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
          for (const auto& w : out.weights) {
            const BestQ* b = out.find_best_q(w.stream, f, th.name, view);
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
              for (const auto& w : out.weights) wb += w.weight * cell_index.at({w.stream, CodecSpec{f, q}.canonical()})->bits_per_vector;
              if (!best || wb < best_bits || (wb == best_bits && q > *best)) {
                best = q;
                best_bits = wb;
              }
            }
            un.admissible = true;
            un.uniform_q = best;
            double bf = 0.0;
            for (const auto& w : out.weights) {
              const CellStats* c = cell_index.at({w.stream, CodecSpec{f, *best}.canonical()});
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
            for (const auto& w : out.weights) un.streams.push_back(StrategyStream{w.stream, w.weight, std::nullopt, 0, 0, 512});
          }
          out.strategies.push_back(std::move(ps));
          out.strategies.push_back(std::move(un));
        }
  }

  // ---- suggestions
  // Without a bit formula no suggestions are computed (study.h: BitsFn).
  if (opt.bits_of) {
    std::set<std::pair<std::string, std::string>> seen;  // (stream, codec)
    for (const auto& b : out.best_q) {
      if (b.checks.empty()) continue;
      std::set<int> swept_q;
      for (const auto& qc : b.checks) swept_q.insert(qc.q);
      const auto bits = [&](int q) { return opt.bits_of(b.family, q, b.dim); };
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
      cands = thin_out(cands, opt.max_suggestions_per_stream);
      for (const auto& c : cands) {
        Suggestion sg;
        sg.stream = b.stream;
        sg.family = b.family;
        sg.q = c.q;
        sg.bits = c.bits;
        sg.threshold = b.threshold.name;
        sg.view = b.view;
        sg.reason = c.reason;
        if (seen.insert({sg.stream, sg.codec()}).second) out.suggestions.push_back(std::move(sg));
      }
    }
    std::sort(out.suggestions.begin(), out.suggestions.end(), [](const Suggestion& a, const Suggestion& b) {
      if (a.stream != b.stream) return stream_less(a.stream, b.stream);
      if (a.family != b.family) return a.family < b.family;
      return a.q < b.q;
    });
  }

  // ---- Pareto rows (every swept point, frontier flagged per stream)
  for (const auto& s : out.streams) {
    std::vector<const CellStats*> rows;
    for (const auto& c : out.cells)
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
      out.pareto.push_back(std::move(p));
    }
  }
  return out;
}

}  // namespace kvlab::stats
