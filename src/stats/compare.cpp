// Cross-experiment comparison: see compare.h.
#include "stats/compare.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/streams.h"
#include "stats/study.h"

namespace kvlab::stats {

namespace {

struct SideCell {
  std::optional<int> q;
  double bits = 0.0;
  std::map<std::string, double> by_hash;  // passage content hash -> rel_mse (replicates averaged)
  std::map<std::string, int> count;
};

std::map<std::pair<std::string, std::string>, SideCell> collect(const ExperimentData& d) {
  std::map<std::int64_t, std::string> hash;
  for (const auto& p : d.passages) hash[p.id] = p.content_hash.empty() ? "id:" + std::to_string(p.id) : p.content_hash;
  std::map<std::pair<std::string, std::string>, SideCell> out;
  for (const auto& r : d.results) {
    auto& c = out[{r.stream, r.codec}];
    c.q = r.q;
    c.bits = r.bits_per_vector;
    const auto it = hash.find(r.passage_id);
    const std::string h = it != hash.end() ? it->second : "id:" + std::to_string(r.passage_id);
    c.by_hash[h] += r.rel_mse;
    c.count[h] += 1;
  }
  for (auto& [k, c] : out)
    for (auto& [h, v] : c.by_hash) v /= c.count[h];
  return out;
}

std::set<std::string> passage_hashes(const ExperimentData& d) {
  std::set<std::string> s;
  for (const auto& p : d.passages) s.insert(p.content_hash);
  return s;
}

std::vector<double> values(const SideCell& c) {
  std::vector<double> v;
  for (const auto& [h, x] : c.by_hash) v.push_back(x);
  return v;
}

}  // namespace

ExperimentDiff diff_experiments(const ExperimentData& a, const ExperimentData& b) {
  ExperimentDiff d;
  d.name_a = a.info.name;
  d.name_b = b.info.name;
  const auto ha = passage_hashes(a), hb = passage_hashes(b);
  std::vector<std::string> shared;
  std::set_intersection(ha.begin(), ha.end(), hb.begin(), hb.end(), std::back_inserter(shared));
  d.shared_passages = static_cast<int>(shared.size());
  d.paired = !ha.empty() && ha == hb;

  const auto ca = collect(a), cb = collect(b);
  const StudySummary sa = summarize(a), sb = summarize(b);
  for (const auto& [key, x] : ca) {
    const auto it = cb.find(key);
    if (it == cb.end()) {
      d.only_a.push_back(key.first + " " + key.second);
      continue;
    }
    const SideCell& y = it->second;
    DiffCell c;
    c.stream = key.first;
    c.codec = key.second;
    c.q = x.q;
    c.bits_a = x.bits;
    c.bits_b = y.bits;
    const auto va = values(x), vb = values(y);
    c.a = describe(va);
    c.b = describe(vb);
    c.ratio = c.a.mean / c.b.mean;
    if (d.paired) {
      std::vector<double> pa, pb, r;
      for (const auto& [h, v] : x.by_hash) {
        const auto jt = y.by_hash.find(h);
        if (jt == y.by_hash.end()) continue;
        pa.push_back(v);
        pb.push_back(jt->second);
        r.push_back(v / jt->second);
      }
      c.difference = paired_difference(pa, pb);
      c.paired_ratio = describe(r);
    } else {
      c.difference = welch_difference(va, vb);
    }
    if (const CellStats* s = sa.find_cell(c.stream, c.codec)) c.ratio_vs_fp8_a = s->ratio_vs_fp8;
    if (const CellStats* s = sb.find_cell(c.stream, c.codec)) c.ratio_vs_fp8_b = s->ratio_vs_fp8;
    d.cells.push_back(std::move(c));
  }
  for (const auto& [key, y] : cb)
    if (!ca.count(key)) d.only_b.push_back(key.first + " " + key.second);
  // Canonical order: stream, then FP8 first, family, Q.
  const auto rank = [](const std::string& s) { return kvlab::stream_rank(s); };
  std::stable_sort(d.cells.begin(), d.cells.end(), [&](const DiffCell& x, const DiffCell& y) {
    if (x.stream != y.stream) return rank(x.stream) != rank(y.stream) ? rank(x.stream) < rank(y.stream) : x.stream < y.stream;
    const bool fx = !x.q, fy = !y.q;
    if (fx != fy) return fx;
    const std::string famx = x.codec.substr(0, x.codec.find(':')), famy = y.codec.substr(0, y.codec.find(':'));
    if (famx != famy) return famx < famy;
    return x.q.value_or(0) < y.q.value_or(0);
  });
  return d;
}

}  // namespace kvlab::stats
