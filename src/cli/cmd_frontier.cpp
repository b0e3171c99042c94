// `kvlab frontier`: the rate-distortion frontier of one experiment on the
// console (or as JSON): per stream every codec's bits/dim, rel-MSE, ratio to
// the baseline, entropy rate and distance to the Gaussian bounds, and the
// matched-rate rows (each lattice point vs the scalar envelope at its own
// rate, time-sharing, and vs the best non-lattice codec at no more bits,
// paired CIs). Option parsing only: stats::compute_frontier
// computes, report/frontier.h renders.
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/options.h"
#include "common/codec_spec.h"
#include "common/error.h"
#include "report/frontier.h"
#include "stats/frontier.h"
#include "store/db.h"
#include "store/query.h"

namespace kvlab::cli {
namespace {

int cmd_frontier(const std::vector<std::string>& args) {
  CommonOptions c;
  std::vector<std::string> streams;
  std::string against;
  double tolerance = stats::kRateGapTolerance;
  po::options_description d(
      "kvlab frontier: every codec's rel-MSE vs bits/dim per stream, the entropy rate, the distance to the "
      "Gaussian bounds and the matched-rate table (lattice vs the scalar envelope at its own rate, and vs the best "
      "scalar codec at no more bits)");
  add_db(d, c);
  add_experiment(d, c);
  add_json(d, c);
  d.add_options()("stream", po::value(&streams)->composing(), "only this stream (repeatable)")(
      "against", po::value(&against), "baseline codec of the ratios (default: the experiment's)")(
      "rate-gap-tolerance", po::value(&tolerance),
      "bits/dim: a lattice 'better' or 'tied' against a comparator cheaper by more than this is 'not comparable' "
      "(default 0.1)");
  if (!parse(args, d, "kvlab frontier [--db FILE] [--experiment E] [--stream S ...] [--against BASE] [--rate-gap-tolerance B] [--json]"))
    return 0;
  stats::FrontierOptions o;
  o.streams = streams;
  o.rate_gap_tolerance = tolerance;
  auto db = store::open_database(c.db, store::OpenMode::kReadOnly);
  const auto data = store::load_experiment(*db, c.experiment);
  KVLAB_CHECK(!data.results.empty(), "experiment '{}' has no finished runs yet; run `kvlab run --db {}` first",
              data.info.name, c.db);
  if (!against.empty()) {
    o.baseline = parse_codec_spec(against).canonical;
    bool ran = false;
    for (const auto& r : data.results) ran = ran || r.codec == o.baseline;
    KVLAB_CHECK(ran, "--against '{}': experiment '{}' ran no such codec", against, data.info.name);
  }
  const auto f = stats::compute_frontier(data, o);
  std::cout << (c.json ? report::frontier_json(f) : report::frontier_text(f));
  return 0;
}

CommandRegistrar reg_frontier{"frontier",
                              "rate-distortion frontier per stream and the matched-rate tables (lattice vs the scalar "
                              "envelope at its rate and vs the best scalar codec at no more bits, paired CIs)",
                              cmd_frontier};

}  // namespace
}  // namespace kvlab::cli
