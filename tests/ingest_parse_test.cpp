// The ingest parsers on their own (no database): each published JSON shape
// and CSV become the expected rows of a store::ImportBundle, and bad input
// is named by file and JSON path or by file, line and column.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/hash.h"
#include "ingest/benchmark.h"
#include "ingest/csv.h"
#include "ingest/published.h"
#include "testutil/testutil.h"

namespace ig = kvlab::ingest;
namespace tu = kvlab::testutil;
using nlohmann::json;

namespace {

ig::ImportOptions options() {
  ig::ImportOptions o;
  o.layer_mix = {{"sliding_window_kv", 3}, {"csa_pool_kv_ratio4", 20}, {"hca_pool_kv_ratio128", 20}};
  return o;
}

json stream_result(const std::string& stream, double scale) {
  return {{"stream", stream},
          {"shape", {1, 64, 512}},
          {"dtype", "torch.bfloat16"},
          {"audit",
           {{"excess_kurtosis_abs", 1.5 * scale},
            {"isotropy_variance_ratio", 2.5},
            {"hadamard_post_variance_ratio", 3.5},
            {"rms_wasserstein2_over_sigma_per_dim", 0.25},
            {"num_vectors", 64},
            {"D", 512}}},
          {"codecs",
           {{"fp8_per64_baseline", {{"bits_per_vector", 4224}, {"rel_mse", 0.001 * scale}, {"cos_sim", 0.9995}}},
            {"v15_e8_Q38", {{"bits_per_vector", 3296}, {"rel_mse", 0.0008 * scale}, {"cos_sim", 0.9996}}},
            {"v14_d4_Q38", {{"bits_per_vector", 3300}, {"rel_mse", 0.0009 * scale}, {"cos_sim", 0.9994}}},
            {"v15_e8_Q10", {{"bits_per_vector", 2336}, {"rel_mse", 0.01 * scale}, {"cos_sim", 0.995}}}}}};
}

// Two passages (ids 5 and 7) x two streams x four codecs; passage 7 has no published prefix.
json per_passage_file() {
  json j;
  j["generated_at"] = "2026-01-01T00:00:00";
  j["config"] = {{"host_model", "tiny"}, {"seqlen", 2048}, {"device", "cuda"},
                 {"dsv4_config", {{"trained_weights", true}, {"weight_source", "hf:x"}}},
                 {"passages_sha_first64", {"", "", "", "", "", "The first sixty-four characters of passage five"}}};
  for (int id : {5, 7})
    j["per_passage"].push_back(
        {{"passage_id", id},
         {"results", {stream_result("sliding_window_kv", id), stream_result("hca_pool_kv_ratio128", 2.0 * id)}}});
  return j;
}

const kvlab::store::ImportRun* find_run(const kvlab::store::ImportBundle& b, const std::string& passage,
                                        const std::string& stream, const std::string& codec) {
  for (const auto& r : b.runs)
    if (r.passage == passage && r.stream == stream && r.codec == codec) return &r;
  return nullptr;
}

}  // namespace

TEST(ImportParsePublished, CodecNames) {
  EXPECT_EQ(ig::published_codec_spec("v14_d4_Q10"), "d4:q=10");
  EXPECT_EQ(ig::published_codec_spec("v15_e8_Q38"), "e8:q=38");
  EXPECT_EQ(ig::published_codec_spec("fp8_per64_baseline"), "fp8_per64");
  EXPECT_THROW(ig::published_codec_spec("v15_e9_Q38"), kvlab::Error);
  EXPECT_THROW(ig::published_codec_spec("v15_e8_Q0"), kvlab::Error);
  EXPECT_THROW(ig::published_codec_spec("fp8"), kvlab::Error);
}

TEST(ImportParsePublished, PerPassageShapeIntoRows) {
  const std::string text = per_passage_file().dump();
  const auto b = ig::parse_published_text(text, "/some/dir/mine.json", options());
  EXPECT_EQ(b.origin, "published");
  EXPECT_EQ(b.name, "mine");  // the file stem
  EXPECT_EQ(b.sha256, kvlab::sha256_hex(text));
  ASSERT_EQ(b.passages.size(), 2u);
  EXPECT_EQ(b.passages[0].idx, 5);
  EXPECT_EQ(b.passages[0].name, "p5");
  EXPECT_EQ(b.passages[0].content_hash, kvlab::sha256_hex("The first sixty-four characters of passage five"));
  EXPECT_EQ(b.passages[0].source, "published:mine.json#5");
  EXPECT_EQ(b.passages[1].name, "p7");
  EXPECT_EQ(b.passages[1].content_hash, kvlab::sha256_hex("published:" + b.sha256 + "#7"));
  ASSERT_EQ(b.runs.size(), 2u * 2 * 4);
  ASSERT_EQ(b.audits.size(), 2u * 2);
  const auto* r = find_run(b, "p7", "hca_pool_kv_ratio128", "e8:q=38");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->q, 38);
  EXPECT_EQ(r->replicate, 0);
  EXPECT_DOUBLE_EQ(r->result.rel_mse, 0.0008 * 14);
  EXPECT_DOUBLE_EQ(r->result.bits_per_vector, 3296);
  EXPECT_DOUBLE_EQ(r->result.cos_sim, 0.9996);
  EXPECT_EQ(r->result.n_vectors, 64);
  EXPECT_EQ(r->result.dim, 512);
  const auto* f = find_run(b, "p5", "sliding_window_kv", "fp8_per64");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->q.has_value());
  EXPECT_EQ(b.audits[3].passage, "p7");
  EXPECT_EQ(b.audits[3].row.stream, "hca_pool_kv_ratio128");
  EXPECT_DOUBLE_EQ(b.audits[3].row.excess_kurtosis_abs, 1.5 * 14);
  EXPECT_EQ(b.audits[3].row.n_vectors, 64);
  const json p = json::parse(b.params_json);
  EXPECT_EQ(p["report"]["codec"], "e8:q=38");  // the largest e8 Q, compared with d4 at that Q
  EXPECT_EQ(p["report"]["compare"], "d4:q=38");
  EXPECT_EQ(p["streams"], json({"hca_pool_kv_ratio128", "sliding_window_kv"}));
  EXPECT_EQ(p["codecs"], json({"d4:q=38", "e8:q=10", "e8:q=38", "fp8_per64"}));
  EXPECT_EQ(p["layer_mix"]["csa_pool_kv_ratio4"], 20);
  EXPECT_EQ(p["stream_dtype"], "bf16");
  EXPECT_EQ(p["weights"]["kind"], "trained");
  EXPECT_EQ(p["import"]["format"], "published per-passage JSON");
  EXPECT_EQ(p["import"]["generated_at"], "2026-01-01T00:00:00");
  EXPECT_EQ(b.provenance.device, "cuda");
  EXPECT_EQ(b.provenance.stream_dtype, "bf16");
  EXPECT_EQ(b.provenance.host_kind, "published");
  EXPECT_NE(b.spec_text.find("2 passages"), std::string::npos) << b.spec_text;
}

TEST(ImportParsePublished, CanonicalizerAndExperimentName) {
  auto o = options();
  o.experiment = "named";
  o.canonicalize = [](const std::string& family, std::optional<int> q) {
    return q ? family + "@" + std::to_string(*q) : family + "!";
  };
  const auto b = ig::parse_published_text(per_passage_file().dump(), "x.json", o);
  EXPECT_EQ(b.name, "named");
  EXPECT_NE(find_run(b, "p5", "sliding_window_kv", "e8@38"), nullptr);
  EXPECT_NE(find_run(b, "p5", "sliding_window_kv", "fp8_per64!"), nullptr);
}

TEST(ImportParsePublished, SinglePassageShape) {
  json j;
  j["config"] = {{"device", "cpu"}};
  j["results_by_stream"] = {stream_result("csa_pool_kv_ratio4", 1)};
  const std::string text = j.dump();
  const auto b = ig::parse_published_text(text, "t.json", options());
  ASSERT_EQ(b.passages.size(), 1u);
  EXPECT_EQ(b.passages[0].name, "p0");
  EXPECT_EQ(b.passages[0].content_hash, kvlab::sha256_hex("published:" + kvlab::sha256_hex(text) + "#0"));
  EXPECT_EQ(b.runs.size(), 4u);
  EXPECT_EQ(b.audits.size(), 1u);
  EXPECT_EQ(json::parse(b.params_json)["import"]["format"], "published single-passage JSON");
}

TEST(ImportParsePublished, AggregateShapeHasNoRuns) {
  json j;
  j["config"] = {{"n_passages", 8}, {"bits_fp8_per64_baseline", 4224}};
  j["bits_per_vec_by_q"] = {{"10", 2336}, {"38", 3296}};
  j["aggregate_by_stream"]["sliding_window_kv"] = {
      {"fp8_rel_mse", {{"mean", 0.001}, {"std", 0.0002}, {"ci95_hw", 0.0001}, {"n", 8}}},
      {"e8_rel_mse_by_q", {{"10", {{"mean", 0.01}, {"n", 8}}}, {"38", {{"mean", 0.0008}, {"n", 8}}}}},
      {"audit", {{"excess_kurtosis_abs", {{"mean", 2.0}, {"n", 8}}}, {"note", "kept"}}}};
  const auto b = ig::parse_published_text(j.dump(), "agg.json", options());
  EXPECT_TRUE(b.runs.empty());
  EXPECT_TRUE(b.passages.empty());
  EXPECT_TRUE(b.audits.empty());
  const json p = json::parse(b.params_json);
  EXPECT_FALSE(p.contains("report"));
  const json& s = p["published_aggregate"]["sliding_window_kv"];
  EXPECT_DOUBLE_EQ(s["fp8_per64"]["rel_mse"]["mean"].get<double>(), 0.001);
  EXPECT_DOUBLE_EQ(s["fp8_per64"]["rel_mse"]["ci95_hw"].get<double>(), 0.0001);
  EXPECT_EQ(s["fp8_per64"]["bits"], 4224);
  EXPECT_EQ(s["e8:q=38"]["bits"], 3296);
  EXPECT_DOUBLE_EQ(s["e8:q=10"]["rel_mse"]["mean"].get<double>(), 0.01);
  EXPECT_EQ(s["audit"]["note"], "kept");
  EXPECT_EQ(p["codecs"], json({"e8:q=10", "e8:q=38", "fp8_per64"}));
  EXPECT_NE(b.spec_text.find("8 passages"), std::string::npos) << b.spec_text;
  // A Q key that is not an integer is named with its path.
  j["aggregate_by_stream"]["sliding_window_kv"]["e8_rel_mse_by_q"]["x1"] = {{"mean", 1}, {"n", 8}};
  tu::expect_contains(tu::error_of([&] { ig::parse_published_text(j.dump(), "agg.json", options()); }),
                      "agg.json.aggregate_by_stream.sliding_window_kv.e8_rel_mse_by_q.x1: Q 'x1' is not an integer");
}

TEST(ImportParsePublished, ReferenceFiles) {
  const auto n8 = ig::parse_published(tu::reference_path("stage075_n8.json"), options());
  EXPECT_EQ(n8.passages.size(), 8u);
  EXPECT_EQ(n8.runs.size(), 8u * 3 * 5);
  EXPECT_EQ(n8.audits.size(), 8u * 3);
  const auto trained = ig::parse_published(tu::reference_path("stage075_trained.json"), options());
  EXPECT_EQ(trained.runs.size(), 15u);
  const auto* r = find_run(trained, "p0", "sliding_window_kv", "e8:q=38");
  ASSERT_NE(r, nullptr);
  EXPECT_DOUBLE_EQ(r->result.rel_mse, 0.0008033817284740508);
  const auto sweep = ig::parse_published(tu::reference_path("stage075_qsweep_n8.json"), options());
  EXPECT_TRUE(sweep.runs.empty());
  EXPECT_EQ(json::parse(sweep.params_json)["published_aggregate"]["hca_pool_kv_ratio128"].size(), 14u);
}

TEST(ImportParsePublished, BadFieldsNameTheFileAndPath) {
  const auto msg = [](const json& j) {
    return tu::error_of([&] { ig::parse_published_text(j.dump(), "dir/bad.json", options()); });
  };
  json j = per_passage_file();
  j["per_passage"][1]["results"][0]["codecs"]["v15_e8_Q38"]["rel_mse"] = "small";
  tu::expect_contains(msg(j), "bad.json.per_passage[1].results[0].codecs.v15_e8_Q38.rel_mse: expected a number, "
                              "got \"small\"");
  j = per_passage_file();
  j["per_passage"][0]["results"][1].erase("audit");
  tu::expect_contains(msg(j), "bad.json.per_passage[0].results[1]: missing field 'audit'");
  j = per_passage_file();
  j["per_passage"][0]["results"][1]["audit"]["D"] = json::array();
  tu::expect_contains(msg(j), "bad.json.per_passage[0].results[1].audit.D: expected a number");
  j = per_passage_file();
  j["per_passage"][0]["results"][0]["stream"] = "swa";
  tu::expect_contains(msg(j), "bad.json.per_passage[0].results[0]: unknown stream 'swa'");
  j = per_passage_file();
  j["per_passage"][0]["results"][0]["stream"] = 3;
  tu::expect_contains(msg(j), "bad.json.per_passage[0].results[0].stream: expected a string");
  j = per_passage_file();
  j["per_passage"][1]["results"][0]["shape"][2] = "wide";
  tu::expect_contains(msg(j), "bad.json.per_passage[1].results[0].shape[2]: expected a number");
  j = per_passage_file();
  j["per_passage"][0]["results"][0]["codecs"]["v15_e8_Q38"]["bits_per_vector"] = 0;
  tu::expect_contains(msg(j), "codecs.v15_e8_Q38.bits_per_vector: expected > 0, got 0");
  j = per_passage_file();
  j["per_passage"][0]["results"] = json::object();
  tu::expect_contains(msg(j), "bad.json.per_passage[0].results: expected an array");
  j = per_passage_file();
  j.erase("config");
  tu::expect_contains(msg(j), "bad.json: missing field 'config'");
  tu::expect_contains(msg(json{{"config", json::object()}, {"other", 1}}), "unknown published shape");
  tu::expect_contains(tu::error_of([] { ig::parse_published_text("{ nope", "dir/bad.json", options()); }),
                      "'dir/bad.json' is not valid JSON");
  tu::expect_contains(tu::error_of([] { ig::parse_published("/nonexistent/x.json", options()); }),
                      "cannot open '/nonexistent/x.json'");
  tu::expect_contains(tu::error_of([] { ig::parse_published_text("{}", "x.json", ig::ImportOptions{}); }),
                      "layer mix");
}

TEST(ImportParseCsv, SplitLine) {
  EXPECT_EQ(ig::split_csv_line(R"(a,"b,c" ,"say ""hi""",,x ,  y)", "f:1"),
            (std::vector<std::string>{"a", "b,c", "say \"hi\"", "", "x", "y"}));
  // A quote after other characters is kept as a character.
  EXPECT_EQ(ig::split_csv_line(R"(a, "b)", "f:1"), (std::vector<std::string>{"a", "\"b"}));
  EXPECT_EQ(ig::split_csv_line("", "f:1"), (std::vector<std::string>{""}));
  tu::expect_contains(tu::error_of([] { ig::split_csv_line(R"(a,"open)", "f.csv:9"); }),
                      "f.csv:9: unterminated quoted field");
}

TEST(ImportParseCsv, RowsPassagesAndParams) {
  const std::string text =
      "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim,replicate,passage_hash,n_vectors,dim,run_id\r\n"
      "b,sliding_window_kv,fp8_per64,,4224,0.001,0.9997,,,2048,512,7\r\n"
      "\r\n"
      "a,sliding_window_kv,e8:q=38,,3296,0.0008,0.9998,1,hash-a,,,\n"
      "b,csa_pool_kv_ratio4,d4,38,3300,0.0009,0.9996,0,,,,\n";
  const auto b = ig::parse_csv_text(text, "/tmp/runs.csv", options());
  EXPECT_EQ(b.origin, "csv");
  EXPECT_EQ(b.name, "runs");
  EXPECT_EQ(b.sha256, kvlab::sha256_hex(text));
  ASSERT_EQ(b.passages.size(), 2u);  // in order of first appearance
  EXPECT_EQ(b.passages[0].name, "b");
  EXPECT_EQ(b.passages[0].idx, 0);
  EXPECT_EQ(b.passages[0].content_hash, kvlab::sha256_hex("csv-passage:b"));
  EXPECT_EQ(b.passages[0].source, "csv:runs.csv#b");
  EXPECT_EQ(b.passages[1].content_hash, "hash-a");
  ASSERT_EQ(b.runs.size(), 3u);
  EXPECT_EQ(b.runs[0].codec, "fp8_per64");
  EXPECT_FALSE(b.runs[0].q.has_value());
  EXPECT_EQ(b.runs[0].result.n_vectors, 2048);
  EXPECT_EQ(b.runs[0].result.dim, 512);
  EXPECT_EQ(b.runs[1].codec, "e8:q=38");
  EXPECT_EQ(b.runs[1].q, 38);
  EXPECT_EQ(b.runs[1].replicate, 1);
  EXPECT_FALSE(b.runs[1].result.n_vectors.has_value());
  EXPECT_DOUBLE_EQ(b.runs[1].result.rel_mse, 0.0008);
  EXPECT_EQ(b.runs[2].codec, "d4:q=38");
  EXPECT_TRUE(b.audits.empty());
  const json p = json::parse(b.params_json);
  EXPECT_EQ(p["report"]["codec"], "e8:q=38");
  EXPECT_EQ(p["report"]["compare"], "d4:q=38");
  EXPECT_EQ(p["import"]["format"], "csv");
  EXPECT_EQ(p["streams"], json({"csa_pool_kv_ratio4", "sliding_window_kv"}));
  EXPECT_EQ(b.provenance.host_kind, "csv");
  EXPECT_EQ(b.spec_text.find("imported from CSV runs.csv"), 0u) << b.spec_text;
}

TEST(ImportParseCsv, BadValuesNameLineAndColumn) {
  const std::string hdr = "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n";
  const auto msg = [](const std::string& text) {
    return tu::error_of([&] { ig::parse_csv_text(text, "d/r.csv", options()); });
  };
  // Line numbers count blank lines.
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,e8,38,3296,0.1,0.9\n\nb,sliding_window_kv,e8,38,3296,abc,0.9\n"),
                      "r.csv:4 column rel_mse: 'abc' is not a number");
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,e8,x,3296,0.1,0.9\n"), "r.csv:2 column q: 'x' is not an integer");
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,e8,38,3296,0.1,1.5\n"), "r.csv:2 column cos_sim: cos_sim 1.5");
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,e8,38,3296,inf,0.9\n"), "r.csv:2 column rel_mse: 'inf' is not");
  tu::expect_contains(msg(hdr + ",sliding_window_kv,e8,38,3296,0.1,0.9\n"), "r.csv:2 column passage: empty passage");
  tu::expect_contains(msg(hdr + "a,swa,e8,38,3296,0.1,0.9\n"), "r.csv:2 column stream: unknown stream 'swa'");
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,E8,38,3296,0.1,0.9\n"), "r.csv:2 column codec: codec 'E8'");
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,e8:q=38,10,3296,0.1,0.9\n"), "r.csv:2: codec 'e8:q=38' disagrees");
  tu::expect_contains(msg("passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim,colour\n"),
                      "r.csv:1: unknown column 'colour'");
  tu::expect_contains(msg("passage,passage,stream\n"), "r.csv:1: column 'passage' appears twice");
  tu::expect_contains(msg("passage,stream,codec,q,rel_mse,cos_sim\n"), "missing column 'bits_per_vector'");
  tu::expect_contains(
      msg("passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim,passage_hash\n"
          "a,sliding_window_kv,e8,38,3296,0.1,0.9,h1\na,sliding_window_kv,fp8_per64,,4224,0.1,0.9,h2\n"),
      "r.csv:3: passage 'a' has two different passage_hash values");
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,e8,38,3296,0.1,0.9\n"
                                "a,sliding_window_kv,e8:q=38,,3296,0.1,0.9\n"),
                      "r.csv:3: duplicate row for passage 'a'");
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,e8,38,3296,0.1\n"), "r.csv:2: 6 fields, the header has 7");
  tu::expect_contains(msg(hdr + "a,sliding_window_kv,\"e8,38,3296,0.1,0.9\n"), "r.csv:2: unterminated quoted field");
  tu::expect_contains(msg(hdr), "'d/r.csv' has a header but no rows");
  tu::expect_contains(msg("\n \n"), "'d/r.csv' is empty");
}

TEST(ImportParseBenchmark, DeterministicRows) {
  ig::BenchmarkSpec spec;
  spec.passages = 2;
  spec.qmax = 3;
  spec.bits_of = [](const std::string& f, int q, int dim) { return (f == "e8" ? 100.0 : 200.0) * q + dim; };
  spec.layer_mix = options().layer_mix;
  const auto b = ig::benchmark_bundle(spec);
  EXPECT_EQ(b.origin, "sweep");
  EXPECT_EQ(b.name, "bench_query");
  EXPECT_EQ(b.passages.size(), 2u);
  EXPECT_EQ(b.runs.size(), 2u * 3 * (1 + 2 * 3));
  EXPECT_EQ(b.audits.size(), 2u * 3);
  const auto* r = find_run(b, "bench1", "csa_pool_kv_ratio4", "e8:q=2");
  ASSERT_NE(r, nullptr);
  EXPECT_DOUBLE_EQ(r->result.bits_per_vector, 712);
  EXPECT_EQ(r->result.n_vectors, 512);
  const auto* f = find_run(b, "bench0", "sliding_window_kv", "fp8_per64");
  ASSERT_NE(f, nullptr);
  EXPECT_DOUBLE_EQ(f->result.bits_per_vector, 8.0 * 512 + 16.0 * 8);
  const json p = json::parse(b.params_json);
  EXPECT_EQ(p["report"]["codec"], "e8:q=3");
  EXPECT_EQ(p["report"]["compare"], "d4:q=3");
  // The same seed gives the same numbers; another seed other ones.
  const auto again = ig::benchmark_bundle(spec);
  EXPECT_EQ(again.runs[5].result.rel_mse, b.runs[5].result.rel_mse);
  EXPECT_EQ(again.audits[4].row.isotropy_variance_ratio, b.audits[4].row.isotropy_variance_ratio);
  spec.seed = 2;
  EXPECT_NE(ig::benchmark_bundle(spec).runs[5].result.rel_mse, b.runs[5].result.rel_mse);
  spec.qmax = 0;
  tu::expect_contains(tu::error_of([&] { ig::benchmark_bundle(spec); }), "qmax (0) must be >= 1");
}
