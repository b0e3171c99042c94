// Tests for src/host: the synthetic host (determinism, dependence on seeds
// and text, the realistic variant's properties), the registry seam, and
// the kv-file reader.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "common/error.h"
#include "host/host.h"
#include "io/safetensors.h"
#include "testutil/testutil.h"

using namespace kvlab::host;

namespace {
const c10::Device kCpu(c10::kCPU);

using kvlab::testutil::error_of;
}  // namespace

TEST(SyntheticHost, DeterministicAndSeedDependent) {
  auto h = make_host("synthetic:seed=5,dtype=fp32");
  EXPECT_EQ(h->kind(), "synthetic");
  PassageInput p{"p0", "", 11};
  at::Tensor a = h->hidden(p, 256, 128, kCpu);
  EXPECT_EQ(a.sizes(), (at::IntArrayRef{1, 256, 128}));
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(a, make_host("synthetic:seed=5,dtype=fp32")->hidden(p, 256, 128, kCpu)));
  EXPECT_FALSE(at::equal(a, make_host("synthetic:seed=6,dtype=fp32")->hidden(p, 256, 128, kCpu)));
  PassageInput q = p;
  q.seed = 12;
  EXPECT_FALSE(at::equal(a, h->hidden(q, 256, 128, kCpu)));
  PassageInput t = p;
  t.text = "the cat sat on the mat";
  at::Tensor at_ = h->hidden(t, 256, 128, kCpu);
  EXPECT_FALSE(at::equal(a, at_));
  t.text = "the cat sat on the hat";
  EXPECT_FALSE(at::equal(at_, h->hidden(t, 256, 128, kCpu)));
  // A shorter request is a prefix of a longer one (same tokens).
  at::Tensor longer = h->hidden(p, 512, 128, kCpu);
  EXPECT_TRUE(at::equal(longer.narrow(1, 0, 256), a));
  // bf16 option, the default: the fp32 values rounded to bf16.
  at::Tensor b = make_host("synthetic:seed=5,dtype=bf16")->hidden(p, 256, 128, kCpu);
  EXPECT_EQ(b.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(b, a.to(at::kBFloat16)));
  auto hb = make_host("synthetic:seed=5");
  at::Tensor dflt = hb->hidden(p, 256, 128, kCpu);
  EXPECT_EQ(dflt.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(dflt, b));
  // Rows cached from earlier passages give the same values as a fresh host.
  t.text = "the cat sat on the mat and the hat";
  at::Tensor cached = hb->hidden(t, 256, 128, kCpu), cached32 = h->hidden(t, 256, 128, kCpu);
  EXPECT_TRUE(at::equal(cached, make_host("synthetic:seed=5")->hidden(t, 256, 128, kCpu)));
  EXPECT_TRUE(at::equal(cached32, make_host("synthetic:seed=5,dtype=fp32")->hidden(t, 256, 128, kCpu)));
  EXPECT_TRUE(at::equal(cached, cached32.to(at::kBFloat16)));
}

TEST(SyntheticHost, RealisticRepeatsTokensAndIsHeavyTailedAndAnisotropic) {
  auto h = make_host("synthetic:seed=1,kind=realistic");
  PassageInput p{"t", "alpha beta gamma alpha delta beta alpha", 3};
  at::Tensor x = h->hidden(p, 256, 512, kCpu).squeeze(0).to(at::kFloat);
  // Words repeat -> identical rows: token 0 ("alpha") at positions 0, 3, 6, 7 (cycle of 7 words).
  EXPECT_TRUE(at::equal(x[0], x[3]));
  EXPECT_TRUE(at::equal(x[0], x[6]));
  EXPECT_TRUE(at::equal(x[0], x[7]));
  EXPECT_FALSE(at::equal(x[0], x[1]));
  // The same word in another passage gets the same vector (embedding table).
  at::Tensor y = h->hidden(PassageInput{"u", "alpha zeta", 99}, 128, 512, kCpu).squeeze(0).to(at::kFloat);
  EXPECT_TRUE(at::equal(x[0], y[0]));
  // Untexted passages: Zipf ids repeat often, so there are far fewer
  // distinct rows than tokens; distribution statistics over many tokens.
  at::Tensor z = h->hidden(PassageInput{"z", "", 7}, 2048, 512, kCpu).squeeze(0).to(at::kFloat);
  const int64_t distinct = std::get<0>(at::unique_dim(z, 0)).size(0);
  EXPECT_LT(distinct, 1500);
  EXPECT_GT(distinct, 100);
  at::Tensor u = std::get<0>(at::unique_dim(z, 0));
  at::Tensor var = u.var(0, false);
  EXPECT_GT((var.max() / var.min()).item<double>(), 50.0);  // anisotropic channels
  at::Tensor c = (u - u.mean(0)) / u.std(0, false);
  const double kurt = (c.pow(4).mean(0) - 3.0).mean().item<double>();
  EXPECT_GT(kurt, 0.5);  // heavy tails (Student-t(4): excess kurtosis is infinite in theory, large in practice)
  const double ms = z.square().mean().item<double>();
  EXPECT_GT(ms, 0.2);
  EXPECT_LT(ms, 5.0);
  // iid variant: close to standard normal, no repeats.
  at::Tensor w = make_host("synthetic:seed=1,kind=iid")->hidden(PassageInput{"z", "", 7}, 1024, 256, kCpu).to(at::kFloat);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(w.std().item<double>(), 1.0, 0.01);
}

TEST(SyntheticHost, DescribeRecordsParameters) {
  auto h = make_host("synthetic:seed=9,kind=iid,vocab=500");
  auto d = h->describe();
  EXPECT_EQ(d["kind"], "synthetic");
  EXPECT_EQ(d["seed"], 9);
  EXPECT_EQ(d["variant"], "iid");
  EXPECT_EQ(d["spec"], "synthetic:seed=9,kind=iid,vocab=500");
  auto r = make_host("synthetic")->describe();
  EXPECT_EQ(r["variant"], "realistic");
  EXPECT_EQ(r["vocab"], 32000);
  EXPECT_TRUE(r.contains("outlier_channels"));
}

TEST(HostRegistry, UnknownKindsAndBadOptions) {
  std::string msg = error_of([] { make_host("nope:x"); });
  EXPECT_NE(msg.find("'nope:x'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("synthetic"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { make_host("kv-file:/x"); }).find("load_kv_file"), std::string::npos);
  EXPECT_NE(error_of([] { make_host("synthetic:seed=abc"); }).find("'abc'"), std::string::npos);
  EXPECT_NE(error_of([] { make_host("synthetic:seed=99999999999999999999999"); }).find("seed"), std::string::npos);
  EXPECT_NE(error_of([] { make_host("synthetic:kind=gauss"); }).find("iid or realistic"), std::string::npos);
  EXPECT_NE(error_of([] { make_host("synthetic:color=red"); }).find("'color'"), std::string::npos);
  EXPECT_NE(error_of([] { make_host("synthetic:seed"); }).find("key=value"), std::string::npos);
  auto h = make_host("synthetic");
  EXPECT_NE(error_of([&] { h->hidden(PassageInput{}, 0, 16, kCpu); }).find("seqlen"), std::string::npos);
}

TEST(HostRegistry, RegisterHostKindSeam) {
  register_host_kind("fake", [](const std::string& spec) {
    auto inner = make_synthetic_host("synthetic:seed=3");
    EXPECT_EQ(spec, "fake:anything");
    return inner;
  });
  auto kinds = host_kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "fake"), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "synthetic"), kinds.end());
  auto h = make_host("fake:anything");
  EXPECT_EQ(h->describe()["seed"], 3);
  EXPECT_THROW(register_host_kind("a:b", [](const std::string&) { return make_synthetic_host("synthetic"); }),
               kvlab::Error);
}

TEST(KvFile, ReadsStreamsAndRejectsBadTensors) {
  auto dir = kvlab::testutil::make_temp_dir("host_kv");
  std::vector<float> a(6 * 8), b(2 * 4 * 8);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) * 0.25f;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = -static_cast<float>(i);
  {
    kvlab::io::SafetensorsWriter w;
    w.add_f32("sliding_window_kv", {6, 8}, a.data());
    w.add_f32("csa_pool_kv_ratio4", {2, 4, 8}, b.data());
    std::vector<uint16_t> bf(8, 0x3F80);
    w.add("hca_pool_kv_ratio128", kvlab::io::DType::BF16, {1, 8}, bf.data(), 16);
    w.write(dir + "/kv.safetensors");
  }
  auto m = load_kv_file(dir + "/kv.safetensors");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m["sliding_window_kv"].sizes(), (at::IntArrayRef{6, 8}));
  EXPECT_EQ(m["sliding_window_kv"][5][7].item<float>(), a[47]);
  EXPECT_EQ(m["csa_pool_kv_ratio4"].sizes(), (at::IntArrayRef{2, 4, 8}));
  EXPECT_TRUE(at::equal(m["hca_pool_kv_ratio128"], at::ones({1, 8})));
  auto bad = [&](auto fill) {
    kvlab::io::SafetensorsWriter w;
    fill(w);
    w.write(dir + "/bad.safetensors");
    return error_of([&] { load_kv_file(dir + "/bad.safetensors"); });
  };
  EXPECT_NE(bad([&](auto& w) { w.add_f32("v", {48}, a.data()); }).find("[tokens, D]"), std::string::npos);
  EXPECT_NE(bad([&](auto& w) {
              std::vector<int32_t> i(4);
              w.add("v", kvlab::io::DType::I32, {2, 2}, i.data(), 16);
            }).find("I32"),
            std::string::npos);
  EXPECT_NE(bad([&](auto& w) {
              std::vector<float> n = a;
              n[3] = std::nanf("");
              w.add_f32("v", {6, 8}, n.data());
            }).find("non-finite"),
            std::string::npos);
  EXPECT_NE(bad([&](auto& w) { (void)w; }).find("no tensors"), std::string::npos);
  EXPECT_THROW(load_kv_file(dir + "/missing.safetensors"), kvlab::Error);
}
