// The FRONTIER report and the `kvlab frontier` views: rendered from a
// hand-built run set (the matched-rate row's cells, the summary counts, the
// definitions and write-path mode, one SVG per stream with a series per
// codec variant and the two bounds), and end to end through the executable
// on a stub-executor database with hand-inserted entropy and bound metrics
// (byte-identical regeneration, --json, errors).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/frontier.h"
#include "stats/frontier.h"
#include "store/db.h"
#include "store/passage_sets.h"
#include "testutil/testutil.h"

namespace kvlab::report {
namespace {

namespace fs = std::filesystem;
namespace ks = kvlab::stats;
using testutil::md_cells;
using testutil::md_section;

constexpr const char* kS = "sliding_window_kv";
constexpr const char* kH = "hca_pool_kv_ratio128";

std::string canon(const std::string& c) { return ks::parse_codec_spec(c).canonical; }

ks::RunResult row(std::int64_t passage, const std::string& stream, const std::string& codec, double rel,
                  double bits) {
  ks::RunResult r;
  r.passage_id = passage;
  r.stream = stream;
  r.codec = canon(codec);
  r.q = ks::parse_codec_spec(codec).rate;
  r.bits_per_vector = bits;
  r.rel_mse = rel;
  r.cos_sim = 1 - rel;
  r.dim = 512;
  return r;
}

// Two streams, three passages; e8:q=38 at 3296 bits against int:bits=6 (3200
// bits, the best non-lattice codec at <= 3296) with per-passage ratios 0.8,
// 0.9, 1.0 on SWA; bounds and entropy on every run.
ks::ExperimentData hand_data() {
  ks::ExperimentData d;
  d.info.name = "hand_frontier";
  d.info.id = 7;
  d.info.origin = "sweep";
  d.info.params_json = "{}";
  d.info.baseline = "v4_native";
  d.info.write_path = "v4";
  d.info.layer_mix = {{kS, 2}, {kH, 20}};
  const double e8[3] = {0.8, 0.9, 1.0};
  for (int i = 0; i < 3; ++i) {
    const std::int64_t p = i + 1;
    d.passages.push_back({p, i, "p" + std::to_string(p), "h" + std::to_string(p), ""});
    const double scale = 1e-3 * (1 + i);
    for (const char* stream : {kS, kH}) {
      const double sf = stream == std::string(kS) ? 1.0 : 3.0;
      std::vector<ks::RunResult> rs = {
          row(p, stream, "v4_native", sf * scale, 4672),
          row(p, stream, "int:bits=6", sf * scale, 3200),
          row(p, stream, "e8:q=38", sf * scale * (stream == std::string(kS) ? e8[i] : 1.5), 3296),
          row(p, stream, "hadamard_lloyd:bits=2", sf * scale * 100, 1040),
      };
      for (auto& r : rs) {
        const double R = r.bits_per_vector / 512;
        r.metrics["entropy_bits_per_dim"] = R - 0.25;
        if (r.codec != "v4_native") r.metrics["range_bits_per_dim"] = R - 0.2;  // no range coder for v4_native
        r.metrics["gauss_bound_rel_mse"] = std::pow(2.0, -2 * R);
        r.metrics["rwf_bound_rel_mse"] = 0.5 * std::pow(2.0, -2 * R);
        r.run_id = static_cast<std::int64_t>(d.results.size()) + 1;
        d.results.push_back(r);
      }
    }
  }
  return d;
}

FrontierReportOptions stem_opts(const std::string& stem) {
  FrontierReportOptions o;
  o.file_stem = stem;
  o.command = "kvlab report frontier";
  return o;
}

ReportProvenance hand_prov() {
  ReportProvenance p;
  p.database_file = "hand.db";
  p.database_sha256 = "00ff";
  p.generator = "kvlab test";
  return p;
}

// The table row of a section whose first cell is `first`.
std::vector<std::string> row_of(const std::vector<std::string>& lines, const std::string& first) {
  for (const auto& l : lines) {
    if (l.rfind("|", 0) != 0) continue;
    auto c = md_cells(l);
    if (!c.empty() && c[0] == first) return c;
  }
  return {};
}

// Every table row of a section whose first cell is `first`, in order.
std::vector<std::vector<std::string>> rows_of(const std::vector<std::string>& lines, const std::string& first) {
  std::vector<std::vector<std::string>> out;
  for (const auto& l : lines) {
    if (l.rfind("|", 0) != 0) continue;
    auto c = md_cells(l);
    if (!c.empty() && c[0] == first) out.push_back(c);
  }
  return out;
}

TEST(ReportFrontier, MatchedRateAndSummaryTables) {
  const auto f = ks::compute_frontier(hand_data());
  const auto r = render_frontier(f, hand_prov());
  const auto matched = md_section(r.markdown, "Matched rate");
  ASSERT_FALSE(matched.empty()) << r.markdown;
  // SWA first. The scalar hull ends at INT6 (6.25 bits/dim, least error), so at 6.438 bits/dim the envelope is
  // INT6 itself, 0.1875 bits/dim cheaper: ratio 0.9 ± t(0.975,2) * 0.1 / sqrt(3) = 0.248, tied across a gap
  // over the 0.1 tolerance: not comparable, in both tables.
  const auto e8 = rows_of(matched, "E8 Q=38");
  ASSERT_EQ(e8.size(), 4u) << r.markdown;  // SWA and HCA, envelope and no-more-bits tables
  ASSERT_EQ(e8[0].size(), 10u);
  EXPECT_EQ(e8[0][1], "6.438");
  EXPECT_EQ(e8[0][3], "INT6/64 fp16 (last hull vertex)");
  EXPECT_EQ(e8[0][4], "6.250");
  EXPECT_EQ(e8[0][6], "0.90 ± 0.25");
  EXPECT_EQ(e8[0][7], "[0.652, 1.15]");
  EXPECT_EQ(e8[0][8], "3");
  EXPECT_EQ(e8[0][9], "not comparable (rate gap)");
  ASSERT_EQ(e8[1].size(), 11u);
  EXPECT_EQ(e8[1][2], "INT6/64 fp16");
  EXPECT_EQ(e8[1][3], "6.250");
  EXPECT_EQ(e8[1][4], "0.188");  // (3296 - 3200) / 512
  EXPECT_EQ(e8[1][6], "0.90 ± 0.25");
  EXPECT_EQ(e8[1][9], "rate gap 0.188: not comparable");
  EXPECT_EQ(e8[1][10], "yes");
  // HCA: 1.5 every passage: a loss with more bits stands in both tables.
  EXPECT_EQ(e8[2][9], "lattice worse");
  EXPECT_EQ(e8[3][9], "lattice worse");
  const auto summary = md_section(r.markdown, "Summary");
  int rows = 0;
  for (const auto& l : summary) {
    if (l.rfind("| `", 0) != 0) continue;
    const auto c = md_cells(l);
    ASSERT_EQ(c.size(), 12u) << l;
    ++rows;
    EXPECT_EQ(c[1], "E8");
    EXPECT_EQ(c[2], "1");
    if (c[0].find("HCA") != std::string::npos) {
      EXPECT_EQ(c[5], "1") << l;  // matched rate: lattice worse
      EXPECT_EQ(c[7], "1.50");
      EXPECT_EQ(c[10], "1") << l;  // no more bits: worse
    } else {
      EXPECT_EQ(c[3], "0") << l;
      EXPECT_EQ(c[4], "0") << l;
      EXPECT_EQ(c[6], "1") << l;   // no verdict at matched rate
      EXPECT_EQ(c[11], "1") << l;  // not comparable at no more bits
    }
  }
  EXPECT_EQ(rows, 2);
  testutil::expect_contains(r.markdown, "**SWA**: at matched rate, E8 beats the best scalar codec at 0 of 1 points, "
                                        "ties at 0 and loses at 0 (1 without a verdict).");
  testutil::expect_contains(r.markdown, "**HCA**: at matched rate, E8 beats the best scalar codec at 0 of 1 points, "
                                        "ties at 0 and loses at 1.");
}

// Scalar INT2 (2 bits/dim, 4x) and INT4 (4 bits/dim, 0.1x) around two E8 points: Q=10 at 3 bits/dim with 3x
// (beats INT2, its comparator at no more bits, but loses to the 50/50 mix of INT2 and INT4, 2.05x) and Q=22 at
// 3.5 bits/dim with 0.2x (beats the mix there).
ks::ExperimentData envelope_data() {
  ks::ExperimentData d;
  d.info.name = "env";
  d.info.id = 9;
  d.info.origin = "sweep";
  d.info.params_json = "{}";
  d.info.baseline = "v4_native";
  d.info.write_path = "v4";
  const double noise[3] = {1.0, 1.02, 0.98};
  for (int i = 0; i < 3; ++i) {
    const std::int64_t p = i + 1;
    d.passages.push_back({p, i, "p" + std::to_string(p), "h" + std::to_string(p), ""});
    const double sc = 1e-2 * (1 + i);
    for (auto r : {row(p, kS, "v4_native", 0.01 * sc, 4672), row(p, kS, "int:bits=2", 4 * sc, 1024),
                   row(p, kS, "int:bits=4", 0.1 * sc, 2048), row(p, kS, "e8:q=10", 3 * noise[i] * sc, 1536),
                   row(p, kS, "e8:q=22", 0.2 * noise[i] * sc, 1792)}) {
      r.run_id = static_cast<std::int64_t>(d.results.size()) + 1;
      d.results.push_back(r);
    }
  }
  return d;
}

TEST(ReportFrontier, SummaryCountsTheMatchedRateVerdicts) {
  const auto r = render_frontier(ks::compute_frontier(envelope_data()), hand_prov());
  const auto matched = md_section(r.markdown, "Matched rate");
  const auto q10 = rows_of(matched, "E8 Q=10");
  ASSERT_EQ(q10.size(), 2u) << r.markdown;
  EXPECT_EQ(q10[0][3], "0.50 x INT2/64 fp16 + 0.50 x INT4/64 fp16");
  EXPECT_EQ(q10[0][4], "3.000");
  EXPECT_EQ(q10[0][9], "lattice worse");
  EXPECT_EQ(q10[1][2], "INT2/64 fp16");
  EXPECT_EQ(q10[1][9], "rate gap 1.000: not comparable");
  const auto q22 = rows_of(matched, "E8 Q=22");
  ASSERT_EQ(q22.size(), 2u);
  EXPECT_EQ(q22[0][3], "0.25 x INT2/64 fp16 + 0.75 x INT4/64 fp16");
  EXPECT_EQ(q22[0][9], "lattice better");
  const auto summary = md_section(r.markdown, "Summary");
  const auto row = row_of(summary, "`sliding_window_kv` (SWA)");
  ASSERT_EQ(row.size(), 12u) << r.markdown;
  EXPECT_EQ(row[2], "2");
  EXPECT_EQ(row[3], "1");   // better at matched rate (Q=22)
  EXPECT_EQ(row[5], "1");   // worse at matched rate (Q=10)
  EXPECT_EQ(row[8], "0");   // no "better" at no more bits: both gaps exceed the tolerance
  EXPECT_EQ(row[11], "2");
  testutil::expect_contains(r.markdown, "**SWA**: at matched rate, E8 beats the best scalar codec at 1 of 2 points, "
                                        "ties at 0 and loses at 1.");
}

ReportProvenance data_prov(bool random, bool synthetic) {
  ReportProvenance p = hand_prov();
  p.weights = {random ? R"({"kind":"random","seed":0})" : R"({"kind":"checkpoint","path":"/m"})"};
  p.host_kinds = {synthetic ? "synthetic" : "hf"};
  if (synthetic)
    p.hosts = {R"({"kind":"synthetic","tokens_from_text":"whitespace words, FNV-1a mod vocab, repeated to seqlen"})"};
  return p;
}

std::vector<store::PassageText> texts(const ks::ExperimentData& d, int words) {
  std::vector<store::PassageText> out;
  for (const auto& p : d.passages) {
    store::PassageText t{p.id, p.idx, p.name, p.content_hash, "text:" + p.name + ".txt", std::nullopt};
    std::string s;
    for (int i = 0; i < words; ++i) s += (i ? (i % 7 ? " " : "\n") : "") + std::string("w") + std::to_string(i);
    t.text = s;
    out.push_back(t);
  }
  return out;
}

TEST(ReportFrontier, DataCaveatsFollowTheProvenance) {
  ks::ExperimentData d = hand_data();
  d.info.params_json = R"({"seqlen": 2048})";
  const auto f = ks::compute_frontier(d);
  const auto yes = render_frontier(f, data_prov(true, true)).markdown;
  const auto title = yes.substr(0, yes.find('\n'));
  EXPECT_EQ(title, "# Rate-distortion frontier: nested lattices (E8) against scalar KV-cache codecs at matched rate "
                   "(random (seeded) V4 weights and synthetic hidden states)");
  EXPECT_EQ(title.find("hand_frontier"), std::string::npos);  // not the experiment name
  const auto cav = md_section(yes, "Caveats");
  std::string c;
  for (const auto& l : cav) c += l + "\n";
  testutil::expect_contains(c, "Random V4 weights (seeded init), not the trained V4-Flash checkpoint");
  testutil::expect_contains(c, "Synthetic hidden states (seeded)");
  const auto no = render_frontier(f, data_prov(false, false)).markdown;
  EXPECT_EQ(no.find("Random V4 weights"), std::string::npos);
  EXPECT_EQ(no.find("Synthetic hidden states"), std::string::npos);
  EXPECT_EQ(no.substr(0, no.find('\n')),
            "# Rate-distortion frontier: nested lattices (E8) against scalar KV-cache codecs at matched rate");
}

TEST(ReportFrontier, RepetitionIsKeyedOnWordsAgainstSeqlen) {
  ks::ExperimentData d = hand_data();
  d.info.params_json = R"({"seqlen": 2048})";
  const auto f = ks::compute_frontier(d);
  FrontierReportOptions o;
  // Long texts (3000 words > 2048 tokens): no repetition anywhere.
  o.passages = texts(d, 3000);
  const auto longs = render_frontier(f, data_prov(true, true), o).markdown;
  testutil::expect_contains(longs, "3 passages (p1, p2, p3), 3000 words each, seqlen 2048 tokens: no text was "
                                   "repeated to fill the sequence");
  EXPECT_EQ(longs.find("repeated to fill the sequence)"), std::string::npos);  // neither definitions nor caveats
  EXPECT_EQ(longs.find("a short passage repeated"), std::string::npos);
  EXPECT_EQ(longs.find("repeated to fill it"), std::string::npos);
  const auto pas = md_section(longs, "Passages");
  const auto p1 = row_of(pas, "1");
  ASSERT_EQ(p1.size(), 5u) << longs;
  EXPECT_EQ(p1[1], "`p1`");
  EXPECT_EQ(p1[3], "3000");
  EXPECT_EQ(p1[4], "no");
  // Short texts (160 words): repeated 12.8 times; the caveat and the water-filling explanation say so.
  o.passages = texts(d, 160);
  const auto shorts = render_frontier(f, data_prov(true, true), o).markdown;
  testutil::expect_contains(shorts, "3 of 3 texts are shorter than seqlen and were repeated to fill it");
  testutil::expect_contains(shorts, "a short passage repeated to fill the sequence");
  testutil::expect_contains(shorts, "3 of the 3 passages are shorter than seqlen");
  EXPECT_EQ(row_of(md_section(shorts, "Passages"), "1")[4], "yes (text used 12.8 times)");
  // A host that does not map words to tokens: repetition unknown, never claimed.
  const auto hf = render_frontier(f, data_prov(false, false), o).markdown;
  testutil::expect_contains(hf, "whether a text was repeated is not known");
  EXPECT_EQ(hf.find("a short passage repeated"), std::string::npos);
  EXPECT_EQ(row_of(md_section(hf, "Passages"), "1")[4], "unknown");
}

TEST(ReportFrontier, NamesOtherExperimentsOnOtherPassages) {
  const auto d = hand_data();
  const auto f = ks::compute_frontier(d);
  FrontierReportOptions o;
  store::ExperimentPassageSet mine{7, "hand_frontier", "sweep", "v4", "v4_native", {"p1", "p2", "p3"},
                                   {"h1", "h2", "h3"}};
  store::ExperimentPassageSet other{8, "v4_native_n8", "sweep", "v4", "v4_native", {"p1", "short_a"},
                                    {"h1", "hx"}};
  store::ExperimentPassageSet same{9, "again", "sweep", "v4", "v4_native", {"p1", "p2", "p3"}, {"h1", "h2", "h3"}};
  o.passage_sets = {mine, other, same};
  const auto md = render_frontier(f, hand_prov(), o).markdown;
  std::string pas;
  for (const auto& l : md_section(md, "Passages")) pas += l + "\n";
  testutil::expect_contains(pas, "`v4_native_n8` (write path v4, baseline v4_native): **other passages** (1 of its 2 "
                                 "shared with this experiment: p1, short_a)");
  testutil::expect_contains(pas, "`again` (write path v4): the same 3 passages.");
  EXPECT_EQ(pas.find("`hand_frontier` ("), std::string::npos);  // not itself
}

TEST(ReportFrontier, StatesDefinitionsModeBaselineAndBounds) {
  const auto f = ks::compute_frontier(hand_data());
  const auto r = render_frontier(f, hand_prov());
  const std::string& md = r.markdown;
  for (const char* needle : {"write path `v4`", "baseline `v4_native`", "**bits/dim**", "**entropy rate**",
                             "**Gaussian bound**", "**Water-filling bound**", "references, not lower bounds",
                             "SWA 2, HCA 20", "## Provenance", "`hand.db`, sha256 `00ff`"})
    EXPECT_NE(md.find(needle), std::string::npos) << needle;
  // The per-stream frontier row of int:bits=6 on SWA: entropy, bound, dB to the bound.
  const auto fr = md_section(md, "Frontier per stream");
  const auto i6 = row_of(fr, "INT6/64 fp16");
  ASSERT_GE(i6.size(), 12u);
  EXPECT_EQ(i6[2], "6.250");
  EXPECT_EQ(i6[3], "6.000 ± 0.000");           // R - 0.25, the same every passage
  EXPECT_EQ(i6[4], "6.050 ± 0.000");           // range-coded: R - 0.2
  EXPECT_EQ(i6[6], "1.000 ± 0");                 // same rel-MSE as the baseline on every passage
  EXPECT_EQ(i6[7], "1.73e-04");                // 2^(-12.5)
  EXPECT_EQ(i6.back(), "hull, Pareto");
  // dB to the water-filling bound is 3.01 dB above the Gaussian one (bound halved).
  const double g = std::stod(i6[8].substr(0, i6[8].find(' ')));
  const double w = std::stod(i6[10].substr(0, i6[10].find(' ')));
  EXPECT_NEAR(w - g, 3.01, 0.006);
  // The range-coded column: its header after the entropy one, n/a where no range coder ran.
  const auto head = row_of(fr, "codec");
  ASSERT_GE(head.size(), 5u);
  EXPECT_EQ(head[3], "entropy bits/dim");
  EXPECT_EQ(head[4], "range-coded bits/dim");
  const auto v4 = row_of(fr, "V4 native");
  ASSERT_GE(v4.size(), 5u);
  EXPECT_EQ(v4[4], "n/a");
  EXPECT_NE(md.find("**range-coded bits/dim** (`range_bits_per_dim`)"), std::string::npos);
}

TEST(ReportFrontier, OneSvgPerStreamWithVariantsAndBounds) {
  const auto f = ks::compute_frontier(hand_data());
  const auto r = render_frontier(f, hand_prov(), stem_opts("FR"));
  ASSERT_EQ(r.files.size(), 2u);
  EXPECT_EQ(r.files[0].name, "FR_swa.svg");
  EXPECT_EQ(r.files[1].name, "FR_hca.svg");
  EXPECT_NE(r.markdown.find("](FR_swa.svg)"), std::string::npos);
  // 4 codec variants + 2 bounds + the entropy-coded points; 4 codec points, 4 bound points (one per rate)
  // each and the 4 codecs again at their entropy-coded rates.
  const auto& svg = r.files[0].content;
  EXPECT_EQ(testutil::count_occurrences(svg, "class=\"legend-entry\""), 7) << svg;
  EXPECT_NE(svg.find("Gaussian bound"), std::string::npos);
  EXPECT_NE(svg.find("water-filling bound"), std::string::npos);
  EXPECT_EQ(testutil::count_occurrences(svg, "class=\"point\""), 16);
  EXPECT_NE(svg.find("e8:q=38 entropy-coded: 6.188 bits/dim (stored: 6.438)"), std::string::npos);
  // Deterministic.
  const auto again = render_frontier(ks::compute_frontier(hand_data()), hand_prov(), stem_opts("FR"));
  EXPECT_EQ(again.markdown, r.markdown);
  EXPECT_EQ(again.files[0].content, svg);
}

TEST(ReportFrontier, JsonAndTextViews) {
  const auto f = ks::compute_frontier(hand_data());
  const auto j = nlohmann::json::parse(frontier_json(f));
  EXPECT_EQ(j["baseline"], "v4_native");
  EXPECT_EQ(j["write_path"], "v4");
  ASSERT_EQ(j["streams"].size(), 2u);
  const auto& m = j["streams"][0]["matched"][0];
  EXPECT_EQ(m["lattice"], "e8:q=38");
  EXPECT_EQ(m["scalar"], canon("int:bits=6"));
  EXPECT_NEAR(m["ratio"]["mean"].get<double>(), 0.9, 1e-12);
  EXPECT_EQ(m["verdict"], "not comparable (rate gap)");  // tied across 0.1875 bits/dim
  EXPECT_EQ(m["envelope"]["lower"], canon("int:bits=6"));
  EXPECT_NEAR(m["envelope"]["rate_gap_bits_per_dim"].get<double>(), 0.1875, 1e-12);
  EXPECT_EQ(j["passages"].size(), 3u);
  EXPECT_DOUBLE_EQ(j["rate_gap_tolerance_bits_per_dim"].get<double>(), 0.1);
  const auto& p0 = j["streams"][0]["points"][0];
  EXPECT_EQ(p0["codec"], "hadamard_lloyd:bits=2");
  EXPECT_TRUE(p0["attn_out_rel"].is_null());
  const std::string t = frontier_text(f);
  EXPECT_NE(t.find("e8:q=38"), std::string::npos);
  EXPECT_NE(t.find("not comparable (rate gap)"), std::string::npos);
  EXPECT_NE(t.find("INT6/64 fp16 (last hull vertex) at 6.250 bits/d"), std::string::npos) << t;
  EXPECT_NE(t.find("write path v4, baseline v4_native, n = 3 passages"), std::string::npos) << t;
}

// ---------------------------------------------------------------- through the executable

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One stub-executor database per suite (each kvlab start loads LibTorch).
class FrontierCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testutil::make_temp_dir("kvlab-frontier");
    db_ = dir_ + "/f.db";
    if (!fs::exists(testutil::kvlab_binary())) return;  // reported by SetUp
    const std::string spec = dir_ + "/f.ini";
    std::ofstream(spec) << "[experiment]\nname = fr\nseqlen = 512\nstream_dtype = bf16\ndevice = cpu\n"
                           "streams = sliding_window_kv csa_pool_kv_ratio4\n"
                           "[weights]\nkind = random\nseed = 0\nwrite_path = v4\n"
                           "[host]\nkind = synthetic\nseed = 1234\n"
                           "[passages]\nsynthetic = 0-2\nseed_base = 100\n"
                           "[codecs]\ncodec = v4_native\ne8.q = 10 38\nd4.q = 38\nint.bits = 4 6\n"
                           "hadamard_lloyd.bits = 3\n"
                           "[report]\ncodec = e8:q=38\nbaseline = v4_native\n";
    setup_rc_ = testutil::run_command(testutil::kvlab_binary() + " queue " + spec + " --db " + db_, &setup_out_);
    if (setup_rc_ != 0) return;
    setup_rc_ = testutil::run_command(
        testutil::kvlab_binary() + " run --executor stub --progress none --db " + db_, &setup_out_);
    if (setup_rc_ != 0) return;
    // Known entropy and bound values (replacing the stub's own hashed ones) that the checks below recompute.
    // A failure here must fail the tests (SetUp checks setup_rc_), not skip them.
    try {
      auto db = store::open_database(db_, store::OpenMode::kReadWrite);
      db->exec("INSERT OR REPLACE INTO run_metrics (run_id, metric, value) SELECT r.id, 'entropy_bits_per_dim', "
               "res.bits_per_vector / 512.0 - 0.125 FROM runs r JOIN results res ON res.run_id = r.id");
      db->exec("INSERT OR REPLACE INTO run_metrics (run_id, metric, value) SELECT r.id, 'gauss_bound_rel_mse', "
               "res.rel_mse / 4.0 FROM runs r JOIN results res ON res.run_id = r.id");
    } catch (const std::exception& e) {
      setup_rc_ = 1;
      setup_out_ = std::string("inserting the metric rows failed: ") + e.what();
    }
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void SetUp() override {
    ASSERT_TRUE(fs::exists(testutil::kvlab_binary()))
        << "the kvlab executable is needed (build target kvlab): " << testutil::kvlab_binary();
    ASSERT_EQ(setup_rc_, 0) << setup_out_;
  }
  static inline std::string dir_, db_, setup_out_;
  static inline int setup_rc_ = -1;
};

TEST_F(FrontierCli, RegeneratesByteIdenticalReports) {
  std::string out;
  const std::string cmd = testutil::kvlab_binary() + " report frontier --db " + db_ + " --experiment fr --out ";
  ASSERT_EQ(testutil::run_command(cmd + dir_ + "/a/FRONTIER.md", &out), 0) << out;
  ASSERT_EQ(testutil::run_command(cmd + dir_ + "/b/FRONTIER.md", &out), 0) << out;
  for (const char* f : {"FRONTIER.md", "FRONTIER_swa.svg", "FRONTIER_csa.svg"}) {
    const std::string a = slurp(dir_ + "/a/" + f);
    ASSERT_FALSE(a.empty()) << f;
    EXPECT_EQ(a, slurp(dir_ + "/b/" + f)) << f;
  }
  const std::string md = slurp(dir_ + "/a/FRONTIER.md");
  EXPECT_NE(md.find("write path `v4`"), std::string::npos);
  // Every run is 6.02 dB above its (hand-inserted) Gaussian bound: rel / (rel / 4).
  EXPECT_NE(md.find("6.02 ± 0.00"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ + "/a/FRONTIER_hca.svg"));  // no HCA runs
  // Passages named (from the database), the provenance's random weights and synthetic host stated.
  EXPECT_NE(md.find("3 passages (p0, p1, p2)"), std::string::npos) << md;
  EXPECT_NE(md.find("Random V4 weights (seeded init)"), std::string::npos);
  EXPECT_NE(md.find("Synthetic hidden states (seeded)"), std::string::npos);
  EXPECT_EQ(md.find("# Rate-distortion frontier: fr\n"), std::string::npos);
}

TEST_F(FrontierCli, ConsoleJsonAndErrors) {
  std::string out;
  ASSERT_EQ(testutil::run_command(testutil::kvlab_binary() + " frontier --json --db " + db_ +
                                      " --stream csa_pool_kv_ratio4 2>/dev/null",
                                  &out),
            0)
      << out;
  const auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["streams"].size(), 1u);
  EXPECT_EQ(j["streams"][0]["stream"], "csa_pool_kv_ratio4");
  EXPECT_EQ(j["streams"][0]["matched"].size(), 3u);  // e8 10, e8 38, d4 38
  EXPECT_EQ(j["streams"][0]["points"].size(), 7u);
  EXPECT_NEAR(j["streams"][0]["points"][0]["entropy_bits_per_dim"]["mean"].get<double>(),
              j["streams"][0]["points"][0]["bits_per_dim"].get<double>() - 0.125, 1e-12);
  // The stub's range-coded rate: on every point but the baseline (no range coder), below the fixed rate.
  for (const auto& p : j["streams"][0]["points"]) {
    if (p["family"] == "v4_native") {
      EXPECT_TRUE(p["range_bits_per_dim"].is_null()) << p.dump();
      continue;
    }
    ASSERT_TRUE(p["range_bits_per_dim"].is_object()) << p.dump();
    EXPECT_GT(p["range_bits_per_dim"]["mean"].get<double>(), 0.0);
    EXPECT_LT(p["range_bits_per_dim"]["mean"].get<double>(), p["bits_per_dim"].get<double>());
  }
  ASSERT_NE(testutil::run_command(testutil::kvlab_binary() + " frontier --db " + db_ + " --stream nope", &out), 0);
  testutil::expect_contains(out, "stream 'nope'");
  ASSERT_NE(testutil::run_command(testutil::kvlab_binary() + " frontier --db " + db_ + " --against e8:q=11", &out),
            0);
  testutil::expect_contains(out, "--against 'e8:q=11'");
  ASSERT_NE(testutil::run_command(testutil::kvlab_binary() + " report frontier --db " + db_ + " --out x.txt", &out),
            0);
  testutil::expect_contains(out, "must end in .md");
}

}  // namespace
}  // namespace kvlab::report
