// The seeded synthetic host (spec "synthetic[:seed=N,kind=...,dtype=...,vocab=V]").
//
// Random numbers come from a SplitMix64 counter stream (Steele, Lea & Flood
// 2014) with Box-Muller normals, not from <random> distributions (whose
// output is implementation-defined), so a (spec, passage) pair gives the
// same hidden states on every platform and device.
//
// kind=iid: x[t, j] ~ N(0, 1) independently.
//
// kind=realistic (default): token-embedding-like vectors. A host-level
// geometry (from the host seed only) gives every channel j
//   a mean mu_j ~ N(0, 0.3^2), a log-normal scale s_j = exp(N(0, 1)),
//   4 outlier channels with gain 20 (massive-activation channels), and a
//   rank-16 factor U [hidden, 16] ~ N(0, 1/16);
// token v's embedding (from the host seed and v only, so repeated tokens
// repeat their vector, across passages too) is
//   e(v)_j = c * (mu_j + s_j g_j (t_j(v) + sum_r U_jr z_r(v))),
// t_j ~ Student-t(4) / sqrt(2) (unit variance, heavy tails), z ~ N(0, 1),
// c normalising the expected mean square over channels to 1. The passage's
// token sequence: its text's words (whitespace separated) hashed to ids in
// [0, vocab), repeated until seqlen tokens (the published host repeated
// each text); a passage without text draws seqlen ids from a Zipf(1.1) law
// over the vocab with the passage seed. Every parameter is in describe().
//
// dtype=bf16 (default; as the published host cast its states) or fp32: the
// values are computed in float32 and rounded to bf16 (nearest-even) at the end.
//
// Not a language model: no context, no position dependence.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <numbers>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "common/hash.h"
#include "common/rng.h"
#include "host/host.h"

namespace kvlab::host {

namespace {

struct Rng : SplitMix64 {
  using SplitMix64::SplitMix64;
  // Student-t with 4 degrees of freedom, scaled to unit variance.
  double t4_unit() {
    const double chi2 = -2.0 * std::log(uniform() * uniform());  // chi^2 with 4 dof
    return normal() / std::sqrt(chi2 / 4.0) / std::numbers::sqrt2;
  }
};

uint64_t hash_text(const std::string& text) {
  if (text.empty()) return 0;
  const std::string hex = sha256_hex(text);
  return std::stoull(hex.substr(0, 16), nullptr, 16);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

constexpr double kMeanSd = 0.3;
constexpr double kLogScaleSd = 1.0;
constexpr int kOutliers = 4;
constexpr double kOutlierGain = 20.0;
constexpr int kRank = 16;
constexpr double kZipf = 1.1;
constexpr std::size_t kRowCacheBytes = std::size_t{256} << 20;

class SyntheticHost final : public HiddenSource {
 public:
  SyntheticHost(uint64_t seed, bool realistic, bool bf16, int64_t vocab, std::string spec)
      : seed_(seed), realistic_(realistic), bf16_(bf16), vocab_(vocab), spec_(std::move(spec)) {}

  std::string kind() const override { return "synthetic"; }

  nlohmann::json describe() const override {
    nlohmann::json j = {{"kind", "synthetic"},
                        {"spec", spec_},
                        {"seed", seed_},
                        {"variant", realistic_ ? "realistic" : "iid"},
                        {"dtype", bf16_ ? "bf16" : "fp32"},
                        {"rng", "splitmix64+box-muller"},
                        {"passage_key", "host seed, passage seed, sha256(text) if text"}};
    if (realistic_) {
      j["vocab"] = vocab_;
      j["channel_mean_sd"] = kMeanSd;
      j["channel_log_scale_sd"] = kLogScaleSd;
      j["outlier_channels"] = kOutliers;
      j["outlier_gain"] = kOutlierGain;
      j["low_rank"] = kRank;
      j["token_tail"] = "student_t(4)/sqrt(2)";
      j["zipf_exponent_untexted"] = kZipf;
      j["tokens_from_text"] = "whitespace words, FNV-1a mod vocab, repeated to seqlen";
    }
    return j;
  }

  at::Tensor hidden(const PassageInput& p, int64_t seqlen, int64_t hidden_size, c10::Device device) override {
    KVLAB_CHECK(seqlen >= 1, "synthetic host: seqlen must be >= 1, got {}", seqlen);
    KVLAB_CHECK(hidden_size >= 1, "synthetic host: hidden size must be >= 1, got {}", hidden_size);
    KVLAB_CHECK(seqlen * hidden_size <= (int64_t{1} << 34), "synthetic host: {} x {} is too large", seqlen,
                hidden_size);
    const uint64_t key = mix64(seed_ ^ mix64(p.seed ^ mix64(hash_text(p.text) + 0x51ull)));
    at::Tensor out =
        at::empty({1, seqlen, hidden_size}, at::TensorOptions().dtype(bf16_ ? at::kBFloat16 : at::kFloat));
    if (!realistic_) {
      Rng r(key);
      if (bf16_) {
        auto* x = out.data_ptr<at::BFloat16>();
        for (int64_t i = 0; i < seqlen * hidden_size; ++i) x[i] = at::BFloat16(static_cast<float>(r.normal()));
      } else {
        float* x = out.data_ptr<float>();
        for (int64_t i = 0; i < seqlen * hidden_size; ++i) x[i] = static_cast<float>(r.normal());
      }
    } else {
      const Geometry& g = geometry(hidden_size);
      const std::vector<int64_t> ids = tokens(p, seqlen, key);
      const std::size_t row_bytes = static_cast<std::size_t>(hidden_size) * (bf16_ ? 2 : 4);
      fill_rows(g, ids);
      auto* base = static_cast<char*>(out.data_ptr());
      for (int64_t t = 0; t < seqlen; ++t)
        std::memcpy(base + static_cast<std::size_t>(t) * row_bytes, row(g, ids[static_cast<std::size_t>(t)]).data(),
                    row_bytes);
    }
    return out.to(device);
  }

 private:
  struct Geometry {
    int64_t hidden = 0;
    std::vector<double> mean, gain;  // per channel: mu_j, s_j * g_j
    std::vector<double> u;           // [hidden, kRank]
    double norm = 1.0;
  };

  const Geometry& geometry(int64_t hidden) {
    if (geo_.hidden == hidden) return geo_;
    rows_.clear();  // rows of another hidden size
    Geometry g;
    g.hidden = hidden;
    Rng r(mix64(seed_) ^ 0x67656f6dull);
    g.mean.resize(static_cast<std::size_t>(hidden));
    g.gain.resize(static_cast<std::size_t>(hidden));
    g.u.resize(static_cast<std::size_t>(hidden * kRank));
    for (int64_t j = 0; j < hidden; ++j) {
      g.mean[static_cast<std::size_t>(j)] = kMeanSd * r.normal();
      g.gain[static_cast<std::size_t>(j)] = std::exp(kLogScaleSd * r.normal());
    }
    for (int k = 0; k < kOutliers && k < hidden; ++k)
      g.gain[static_cast<std::size_t>(r.next() % static_cast<uint64_t>(hidden))] *= kOutlierGain;
    for (auto& v : g.u) v = r.normal() / std::sqrt(static_cast<double>(kRank));
    double ms = 0;
    for (int64_t j = 0; j < hidden; ++j) {
      double urow = 0;
      for (int k = 0; k < kRank; ++k) urow += g.u[static_cast<std::size_t>(j * kRank + k)] * g.u[static_cast<std::size_t>(j * kRank + k)];
      const double gj = g.gain[static_cast<std::size_t>(j)];
      ms += g.mean[static_cast<std::size_t>(j)] * g.mean[static_cast<std::size_t>(j)] + gj * gj * (1.0 + urow);
    }
    g.norm = 1.0 / std::sqrt(ms / static_cast<double>(hidden));
    geo_ = std::move(g);
    return geo_;
  }

  // Token t's row in the output dtype (bf16 values rounded to nearest even,
  // as at::Tensor::to), as bytes.
  std::vector<char> make_row(const Geometry& g, int64_t token) const {
    const std::vector<float> e = embed(g, token);
    std::vector<char> r(e.size() * (bf16_ ? 2 : 4));
    if (bf16_) {
      auto* o = reinterpret_cast<at::BFloat16*>(r.data());
      for (std::size_t j = 0; j < e.size(); ++j) o[j] = at::BFloat16(e[j]);
    } else {
      std::memcpy(r.data(), e.data(), r.size());
    }
    return r;
  }

  // Makes sure rows_ holds every token of `ids`. Rows are cached across
  // passages (a token's embedding depends on the host seed and the token
  // only); the cache is emptied when it would pass kRowCacheBytes. New rows
  // are computed on two threads (each token has its own generator, so the
  // values do not depend on the split).
  void fill_rows(const Geometry& g, const std::vector<int64_t>& ids) {
    const std::size_t bytes = static_cast<std::size_t>(g.hidden) * (bf16_ ? 2 : 4);
    std::vector<int64_t> missing;
    auto collect = [&] {
      missing.clear();
      std::unordered_map<int64_t, bool> seen;
      for (int64_t id : ids)
        if (!rows_.count(id) && seen.emplace(id, true).second) missing.push_back(id);
    };
    collect();
    if ((rows_.size() + missing.size()) * bytes > kRowCacheBytes) {
      rows_.clear();
      collect();
    }
    std::vector<std::vector<char>> made(missing.size());
    auto work = [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) made[i] = make_row(g, missing[i]);
    };
    const std::size_t half = missing.size() / 2;
    if (missing.size() >= 16) {
      std::exception_ptr err;
      std::thread other([&] {
        try {
          work(half, missing.size());
        } catch (...) {
          err = std::current_exception();
        }
      });
      work(0, half);
      other.join();
      if (err) std::rethrow_exception(err);
    } else {
      work(0, missing.size());
    }
    for (std::size_t i = 0; i < missing.size(); ++i) rows_.emplace(missing[i], std::move(made[i]));
  }

  const std::vector<char>& row(const Geometry&, int64_t token) const { return rows_.at(token); }

  std::vector<float> embed(const Geometry& g, int64_t token) const {
    Rng r(mix64(seed_ ^ 0x746f6bull) ^ mix64(static_cast<uint64_t>(token)));
    double z[kRank];
    for (double& v : z) v = r.normal();
    std::vector<float> e(static_cast<std::size_t>(g.hidden));
    for (int64_t j = 0; j < g.hidden; ++j) {
      double low = 0;
      for (int k = 0; k < kRank; ++k) low += g.u[static_cast<std::size_t>(j * kRank + k)] * z[k];
      const double v = g.mean[static_cast<std::size_t>(j)] + g.gain[static_cast<std::size_t>(j)] * (r.t4_unit() + low);
      e[static_cast<std::size_t>(j)] = static_cast<float>(g.norm * v);
    }
    return e;
  }

  std::vector<int64_t> tokens(const PassageInput& p, int64_t seqlen, uint64_t key) {
    std::vector<int64_t> words;
    std::string cur;
    for (char c : p.text) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!cur.empty()) words.push_back(static_cast<int64_t>(fnv1a(cur) % static_cast<uint64_t>(vocab_)));
        cur.clear();
      } else {
        cur.push_back(c);
      }
    }
    if (!cur.empty()) words.push_back(static_cast<int64_t>(fnv1a(cur) % static_cast<uint64_t>(vocab_)));
    std::vector<int64_t> ids(static_cast<std::size_t>(seqlen));
    if (!words.empty()) {
      for (int64_t t = 0; t < seqlen; ++t) ids[static_cast<std::size_t>(t)] = words[static_cast<std::size_t>(t) % words.size()];
      return ids;
    }
    if (zipf_cdf_.empty()) {
      zipf_cdf_.resize(static_cast<std::size_t>(vocab_));
      double acc = 0;
      for (int64_t v = 0; v < vocab_; ++v) zipf_cdf_[static_cast<std::size_t>(v)] = (acc += std::pow(static_cast<double>(v + 1), -kZipf));
      for (auto& c : zipf_cdf_) c /= acc;
    }
    Rng r(key ^ 0x7a697066ull);
    for (int64_t t = 0; t < seqlen; ++t) {
      const double u = r.uniform();
      auto it = std::lower_bound(zipf_cdf_.begin(), zipf_cdf_.end(), u);
      ids[static_cast<std::size_t>(t)] = std::min<int64_t>(it - zipf_cdf_.begin(), vocab_ - 1);
    }
    return ids;
  }

  uint64_t seed_;
  bool realistic_, bf16_;
  int64_t vocab_;
  std::string spec_;
  Geometry geo_;
  std::unordered_map<int64_t, std::vector<char>> rows_;  // see row()
  std::vector<double> zipf_cdf_;
};

}  // namespace

std::unique_ptr<HiddenSource> make_synthetic_host(const std::string& spec) {
  std::string opts;
  if (spec == "synthetic") {
  } else if (spec.rfind("synthetic:", 0) == 0) {
    opts = spec.substr(10);
  } else {
    throw Error(fmt::format("synthetic host: spec '{}' must start with 'synthetic'", spec));
  }
  uint64_t seed = 0;
  // bf16 by default: the published host cast its hidden states to bf16
  // (SPEC section 2), which also lets the projection run on the bf16 GEMM.
  bool realistic = true, bf16 = true;
  int64_t vocab = 32000;
  std::size_t pos = 0;
  while (pos < opts.size()) {
    std::size_t end = opts.find(',', pos);
    if (end == std::string::npos) end = opts.size();
    const std::string kv = opts.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t eq = kv.find('=');
    KVLAB_CHECK(eq != std::string::npos && eq > 0, "synthetic host spec '{}': option '{}' is not key=value", spec,
                kv);
    const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    auto parse_u64 = [&](const std::string& what) {
      KVLAB_CHECK(!v.empty() && v.find_first_not_of("0123456789") == std::string::npos && v.size() <= 20,
                  "synthetic host spec '{}': {} must be a non-negative integer, got '{}'", spec, what, v);
      try {
        return static_cast<uint64_t>(std::stoull(v));
      } catch (const std::exception&) {
        throw Error(fmt::format("synthetic host spec '{}': {} '{}' is out of range", spec, what, v));
      }
    };
    if (k == "seed") {
      seed = parse_u64("seed");
    } else if (k == "kind") {
      KVLAB_CHECK(v == "iid" || v == "realistic", "synthetic host spec '{}': kind must be iid or realistic, got '{}'",
                  spec, v);
      realistic = v == "realistic";
    } else if (k == "dtype") {
      KVLAB_CHECK(v == "fp32" || v == "bf16", "synthetic host spec '{}': dtype must be fp32 or bf16, got '{}'", spec, v);
      bf16 = v == "bf16";
    } else if (k == "vocab") {
      uint64_t n = parse_u64("vocab");
      KVLAB_CHECK(n >= 2 && n <= (1u << 24), "synthetic host spec '{}': vocab must be in [2, 16777216], got {}", spec, n);
      vocab = static_cast<int64_t>(n);
    } else {
      throw Error(fmt::format("synthetic host spec '{}': unknown option '{}' (known: seed, kind, dtype, vocab)", spec, k));
    }
  }
  return std::make_unique<SyntheticHost>(seed, realistic, bf16, vocab, spec);
}

}  // namespace kvlab::host
