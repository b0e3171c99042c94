// Tests for the shared name tables: the codec-spec parser and family table,
// the stream table and the metric table (src/common/).
#include <gtest/gtest.h>

#include <set>

#include "common/codec_spec.h"
#include "common/error.h"
#include "common/metric_table.h"
#include "common/streams.h"

namespace kvlab {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(CodecSpecTable, ScalarSpecsCanonicalise) {
  EXPECT_EQ(parse_codec_spec("int:bits=8").canonical, "int:bits=8,block=64,scale=fp16");
  EXPECT_EQ(parse_codec_spec("INT : scale=UE8M0 , bits = 4").canonical, "int:bits=4,block=64,scale=ue8m0");
  EXPECT_EQ(parse_codec_spec("int:bits=6,scale=uf16,block=32").canonical, "int:bits=6,block=32,scale=fp16");
  EXPECT_EQ(parse_codec_spec("hadamard_lloyd:bits=3").canonical, "hadamard_lloyd:bits=3");
  EXPECT_EQ(parse_codec_spec("v4_native").canonical, "v4_native");
  const auto s = parse_codec_spec("hadamard_int:bits=5,scale=ue8m0");
  EXPECT_EQ(s.rate, 5);
  EXPECT_EQ(s.variant(), "hadamard_int:block=64,scale=ue8m0");
  EXPECT_EQ(s.with_rate(7), "hadamard_int:bits=7,block=64,scale=ue8m0");
  EXPECT_EQ(s.param("scale"), "ue8m0");
  EXPECT_TRUE(parse_codec_spec("v4_native").is_baseline());
  EXPECT_FALSE(s.is_baseline());
  EXPECT_EQ(codec_spec_at_rate("e8", 38).canonical, "e8:q=38");
  EXPECT_EQ(codec_spec_at_rate("int:block=64,scale=fp16", 8).canonical, "int:bits=8,block=64,scale=fp16");
  EXPECT_EQ(codec_spec_at_rate("int", 3).canonical, "int:bits=3,block=64,scale=fp16");
  EXPECT_EQ(parse_codec_spec("e8:q=38").variant(), "e8");
}

TEST(CodecSpecTable, CanonicalFormIsAFixedPoint) {
  for (const auto& f : codec_family_table()) {
    const std::string spec = f.rate_param.empty() ? f.name : codec_spec_at_rate(f.name, f.min_rate).canonical;
    const auto a = parse_codec_spec(spec);
    EXPECT_EQ(parse_codec_spec(a.canonical).canonical, a.canonical) << spec;
  }
}

TEST(CodecSpecTable, BadSpecsNameTheValueAndWhatIsAllowed) {
  std::string m = error_of([] { parse_codec_spec("int:bits=9"); });
  EXPECT_NE(m.find("bits = 9"), std::string::npos) << m;
  EXPECT_NE(m.find("2 <= bits <= 8"), std::string::npos) << m;
  m = error_of([] { parse_codec_spec("int:bits=4,scale=fp32"); });
  EXPECT_NE(m.find("'fp32'"), std::string::npos) << m;
  EXPECT_NE(m.find("fp16, ue8m0"), std::string::npos) << m;
  m = error_of([] { parse_codec_spec("int:bits=4,block=48"); });
  EXPECT_NE(m.find("'48'"), std::string::npos) << m;
  m = error_of([] { parse_codec_spec("int:bits=4,q=3"); });
  EXPECT_NE(m.find("unknown parameter 'q'"), std::string::npos) << m;
  m = error_of([] { parse_codec_spec("int:bits=4,bits=5"); });
  EXPECT_NE(m.find("given twice"), std::string::npos) << m;
  m = error_of([] { parse_codec_spec("hadamard_lloyd"); });
  EXPECT_NE(m.find("needs its bits"), std::string::npos) << m;
  m = error_of([] { parse_codec_spec("v4_native:bits=3"); });
  EXPECT_NE(m.find("takes no parameters"), std::string::npos) << m;
  m = error_of([] { parse_codec_spec("int4"); });
  EXPECT_NE(m.find("'int4'"), std::string::npos) << m;
  for (const auto& f : codec_family_table()) EXPECT_NE(m.find(f.name), std::string::npos) << m;
  m = error_of([] { parse_codec_spec("int:bits"); });
  EXPECT_NE(m.find("name=value"), std::string::npos) << m;
}

TEST(StreamTable, OrderLabelsAndUnknowns) {
  ASSERT_EQ(stream_table().size(), 3u);
  EXPECT_EQ(stream_label("csa_pool_kv_ratio4"), "CSA");
  EXPECT_EQ(stream_label("other"), "other");
  EXPECT_TRUE(stream_less("sliding_window_kv", "hca_pool_kv_ratio128"));
  EXPECT_TRUE(stream_less("hca_pool_kv_ratio128", "aaa"));  // unknown streams after the table's
  EXPECT_EQ(find_stream("hca_pool_kv_ratio128")->ratio, 128);
}

TEST(MetricTable, NamesAreUniqueAndLookupsWork) {
  std::set<std::string> names;
  for (const auto& m : metric_table()) EXPECT_TRUE(names.insert(m.name).second) << m.name;
  EXPECT_TRUE(find_metric("rel_mse")->results_column);
  EXPECT_FALSE(find_metric("attn_out_rel")->results_column);
  EXPECT_TRUE(metric_or_throw("kl_mean", true).thresholds_apply);
  const std::string m = error_of([] { metric_or_throw("cos_sim", true); });
  EXPECT_NE(m.find("'cos_sim'"), std::string::npos) << m;
  EXPECT_NE(m.find("attn_out_rel"), std::string::npos) << m;
}

}  // namespace
}  // namespace kvlab
