// A hand-made stats::ExperimentData for the stats tests: passages with ids
// 100, 101, ..., and finished runs added one codec and stream at a time.
// Header-only: the tests that include it link kvlab_stats already.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "stats/experiment_data.h"
#include "stats/study.h"

namespace kvlab::testutil {

struct StudyBuilder {
  stats::ExperimentData d;
  std::int64_t next_run = 1;
  // cos_sim of a row from its rel-MSE.
  std::function<double(double)> cos_of = [](double rel) { return 1.0 - rel; };

  // `passages` passages named p0, p1, ... with content hash hash(i).
  StudyBuilder(int passages, std::vector<std::pair<std::string, double>> layer_mix,
               const std::function<std::string(int)>& hash = [](int i) { return "hash" + std::to_string(i); }) {
    d.info.name = "hand";
    d.info.origin = "sweep";
    d.info.layer_mix = std::move(layer_mix);
    for (int i = 0; i < passages; ++i) d.passages.push_back({100 + i, i, "p" + std::to_string(i), hash(i), "synthetic"});
  }

  // One run of passage id `passage` (dim 512).
  stats::RunResult& row(const std::string& stream, const std::string& codec, std::int64_t passage, double rel,
                        double bits) {
    stats::RunResult r;
    r.run_id = next_run++;
    r.passage_id = passage;
    r.stream = stream;
    r.codec = codec;
    r.q = stats::parse_codec_spec(codec).rate;
    r.bits_per_vector = bits;
    r.rel_mse = rel;
    r.cos_sim = cos_of(rel);
    r.dim = 512;
    d.results.push_back(r);
    return d.results.back();
  }

  // One run per passage 100 + i with rel-MSE rel[i] (and attn_out_rel
  // attn[i] when attn is given).
  void add(const std::string& stream, const std::string& codec, double bits, const std::vector<double>& rel,
           const std::vector<double>& attn = {}) {
    for (std::size_t i = 0; i < rel.size(); ++i) {
      auto& r = row(stream, codec, 100 + static_cast<std::int64_t>(i), rel[i], bits);
      if (!attn.empty()) r.metrics["attn_out_rel"] = attn[i];
    }
  }
};

}  // namespace kvlab::testutil
