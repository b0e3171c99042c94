// The lowest-bit operating point of a codec family: see best.h.
#include "stats/best.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/metric_table.h"
#include "common/streams.h"

namespace kvlab::stats {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<std::pair<std::string, std::string>>& metric_aliases() {
  static const std::vector<std::pair<std::string, std::string>> a = {
      {"attn_out", "attn_out_rel"}, {"kl", "kl_mean"}, {"logit", "logit_rel_mse"}, {"rel_mse", "rel_mse"}};
  return a;
}

// The value a view compares with the threshold.
void apply_view(BestCandidate& c, double factor, bool ci_safe) {
  if (ci_safe) {
    c.has_interval = c.ratio.ci95_hw.has_value();
    c.used = c.has_interval ? *c.ratio.upper() : kNaN;
  } else {
    c.used = c.ratio.n > 0 ? c.ratio.mean : kNaN;
  }
  c.clears = c.has_interval && std::isfinite(c.used) && c.used <= factor;
}

bool cheaper(const BestCandidate& a, const BestCandidate& b) {
  if (a.bits_per_vector != b.bits_per_vector) return a.bits_per_vector < b.bits_per_vector;
  if (a.used != b.used) return a.used < b.used;
  return a.codec < b.codec;
}

bool in_family(const CodecSpec& spec, const std::string& family) {
  if (!spec.rate) return false;
  return family.find(':') == std::string::npos ? spec.family == family : spec.variant() == family;
}

// Validates the family against the codec table and the experiment.
void check_family(const StudySummary& s, const std::string& family) {
  const std::string fam = family.substr(0, family.find(':'));
  const CodecFamilyInfo* info = find_codec_family(fam);
  KVLAB_CHECK(info && !info->rate_param.empty(), "unknown codec family '{}' for best; expected a family with a rate "
              "parameter: {}", family, fmt::join(rate_families(), ", "));
  if (family.find(':') != std::string::npos) codec_spec_at_rate(family, info->min_rate);  // throws on a bad variant
  std::set<std::string> ran;
  bool any = false;
  for (const auto& c : s.cells) {
    if (!c.q) continue;
    const CodecSpec spec = parse_codec_spec(c.codec);
    ran.insert(spec.family);
    ran.insert(spec.variant());
    any |= in_family(spec, family);
  }
  KVLAB_CHECK(any, "experiment '{}' ran no codec of family '{}'; families it ran: {}", s.experiment.name, family,
              ran.empty() ? std::string("none") : fmt::format("{}", fmt::join(ran, ", ")));
}

BestCandidate candidate_of(const CellStats& c, const std::string& metric, const BestOptions& o) {
  BestCandidate k;
  k.stream = c.stream;
  k.codec = c.codec;
  k.variant = c.family;
  k.rate = c.q.value_or(0);
  k.bits_per_vector = c.bits_per_vector;
  k.dim = c.dim;
  k.bits_per_dim = c.bits_per_vector / c.dim;
  if (const Summary* r = c.metric_ratio(metric)) k.ratio = *r;
  else k.ratio.mean = kNaN;
  apply_view(k, o.threshold.factor, o.ci_safe);
  return k;
}

void per_stream(const StudySummary& s, const BestOptions& o, BestResult& out) {
  for (const auto& st : s.streams) {
    const CellStats* base = s.find_cell(st, s.baseline);
    if (!base) continue;
    BestStream bs;
    bs.stream = st;
    bs.baseline_bits = base->bits_per_vector;
    for (const auto& c : s.cells)
      if (c.stream == st && c.codec != s.baseline && in_family(parse_codec_spec(c.codec), o.family))
        bs.candidates.push_back(candidate_of(c, s.metric, o));
    if (bs.candidates.empty()) continue;
    std::sort(bs.candidates.begin(), bs.candidates.end(), cheaper);
    for (const auto& k : bs.candidates)
      if (k.clears) {
        bs.best = k;
        break;
      }
    if (!bs.best) {
      bool any_interval = false;
      for (const auto& k : bs.candidates) any_interval |= k.has_interval;
      bs.note = !any_interval ? std::string("no candidate clears (no interval: fewer than 2 passages)")
                              : fmt::format("no swept point of {} clears {} ({:.2f} x {})", o.family,
                                            o.threshold.name, o.threshold.factor, s.baseline);
    }
    out.streams.push_back(std::move(bs));
  }
}

// One codec on every weighted stream: its per-passage weighted ratio.
std::optional<BestCandidate> weighted_candidate(const StudySummary& s, const std::string& codec,
                                                const BestOptions& o, double* baseline_bits) {
  BestCandidate k;
  k.stream = "layer_weighted";
  k.codec = codec;
  std::map<std::int64_t, std::pair<double, std::size_t>> acc;
  double bits_per_dim = 0.0, base_bits = 0.0;
  for (const auto& w : s.weights) {
    const CellStats* c = s.find_cell(w.stream, codec);
    const CellStats* b = s.find_cell(w.stream, s.baseline);
    if (!c || !b) return std::nullopt;
    const auto it = c->passage_metric_ratios.find(s.metric);
    if (it == c->passage_metric_ratios.end()) return std::nullopt;
    for (const auto& [pid, r] : it->second) {
      acc[pid].first += w.weight * r;
      acc[pid].second += 1;
    }
    k.variant = c->family;
    k.rate = c->q.value_or(0);
    k.bits_per_vector += w.weight * c->bits_per_vector;
    bits_per_dim += w.weight * c->bits_per_vector / c->dim;
    base_bits += w.weight * b->bits_per_vector;
  }
  std::vector<double> per_passage;
  for (const auto& [pid, a] : acc)
    if (a.second == s.weights.size()) per_passage.push_back(a.first);
  k.ratio = describe(per_passage);
  k.bits_per_dim = bits_per_dim;
  k.dim = k.bits_per_dim > 0 ? static_cast<int>(std::lround(k.bits_per_vector / k.bits_per_dim)) : 512;
  apply_view(k, o.threshold.factor, o.ci_safe);
  *baseline_bits = base_bits;
  return k;
}

void layer_weighted(const StudySummary& s, const BestOptions& o, BestResult& out) {
  BestLayerWeighted& lw = out.layer_weighted;
  lw.available = !s.weights.empty();
  if (!lw.available) {
    lw.note = "the experiment defines no layer mix";
    return;
  }
  std::set<std::string> codecs;
  for (const auto& c : s.cells)
    if (c.codec != s.baseline && in_family(parse_codec_spec(c.codec), o.family)) codecs.insert(c.codec);
  for (const auto& codec : codecs)
    if (auto k = weighted_candidate(s, codec, o, &lw.baseline_bits)) lw.candidates.push_back(std::move(*k));
  std::sort(lw.candidates.begin(), lw.candidates.end(), cheaper);
  for (const auto& k : lw.candidates)
    if (k.clears) {
      lw.best = k;
      break;
    }
  if (lw.candidates.empty())
    lw.note = fmt::format("no codec of {} was run on every weighted stream with its baseline", o.family);
  else if (!lw.best)
    lw.note = fmt::format("no codec of {} clears {} layer weighted", o.family, o.threshold.name);
  // Per-stream deployment.
  lw.per_stream_admissible = true;
  for (const auto& w : s.weights) {
    const BestStream* bs = nullptr;
    for (const auto& x : out.streams)
      if (x.stream == w.stream) bs = &x;
    if (!bs || !bs->best) {
      lw.per_stream_admissible = false;
      continue;
    }
    lw.per_stream_bits += w.weight * bs->best->bits_per_vector;
    lw.per_stream_bits_per_dim += w.weight * bs->best->bits_per_dim;
  }
  if (!lw.per_stream_admissible) lw.per_stream_bits = lw.per_stream_bits_per_dim = 0.0;
}

}  // namespace

std::string resolve_threshold_metric(const std::string& name) {
  for (const auto& [alias, full] : metric_aliases())
    if (name == alias) return full;
  const MetricInfo* m = find_metric(name);
  if (m && m->thresholds_apply) return m->name;
  std::vector<std::string> allowed;
  for (const auto& [alias, full] : metric_aliases())
    if (alias != full) allowed.push_back(alias);
  for (const auto& x : metric_table())
    if (x.thresholds_apply) allowed.push_back(x.name);
  throw UsageError(fmt::format("unknown --metric '{}'; expected one of: {}", name, fmt::join(allowed, ", ")));
}

std::vector<std::string> rate_families() {
  std::vector<std::string> out;
  for (const auto& f : codec_family_table())
    if (!f.rate_param.empty()) out.push_back(f.name);
  return out;
}

bool BestResult::any_inadmissible() const {
  for (const auto& s : streams)
    if (!s.best) return true;
  return false;
}

BestResult best_operating_point(const StudySummary& s, const BestOptions& o) {
  check_family(s, o.family);
  BestResult out;
  out.experiment = s.experiment.name;
  out.family = o.family;
  out.metric = s.metric;
  out.baseline = s.baseline;
  out.threshold = o.threshold;
  out.ci_safe = o.ci_safe;
  out.weights = s.weights;
  out.warnings = s.warnings;
  per_stream(s, o, out);
  bool recorded = false;
  for (const auto& bs : out.streams)
    for (const auto& k : bs.candidates) recorded |= k.ratio.n > 0;
  if (!recorded) {
    std::set<std::string> have;
    for (const auto& c : s.cells)
      for (const auto& [m, r] : c.metric_ratios) have.insert(m);
    throw Error(fmt::format("experiment '{}': no {} run recorded metric '{}' with its baseline {}; metrics with a "
                            "ratio to the baseline: {}",
                            s.experiment.name, o.family, s.metric, s.baseline,
                            have.empty() ? std::string("none") : fmt::format("{}", fmt::join(have, ", "))));
  }
  layer_weighted(s, o, out);
  return out;
}

}  // namespace kvlab::stats
