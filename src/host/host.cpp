// Host registry (make_host / register_host_kind) and the kv-file reader.
// See host.h.
#include "host/host.h"

#include <cmath>
#include <cstring>
#include <mutex>

#include "common/error.h"
#include "io/safetensors.h"

#if __has_include("host/hf_host.h")
#include "host/hf_host.h"
#define KVLAB_HAVE_HF_HOST 1
#endif

namespace kvlab::host {

HiddenSource::~HiddenSource() = default;

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, HostFactory> kinds;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;
    reg->kinds["synthetic"] = make_synthetic_host;
#ifdef KVLAB_HAVE_HF_HOST
    reg->kinds["hf"] = [](const std::string& spec) { return make_hf_host(spec); };
#endif
    return reg;
  }();
  return *r;
}

}  // namespace

void register_host_kind(const std::string& prefix, HostFactory factory) {
  KVLAB_CHECK(!prefix.empty() && prefix.find(':') == std::string::npos,
              "register_host_kind: prefix '{}' must be non-empty and contain no ':'", prefix);
  KVLAB_CHECK(static_cast<bool>(factory), "register_host_kind: empty factory for '{}'", prefix);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.kinds[prefix] = std::move(factory);
}

std::vector<std::string> host_kinds() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> out;
  for (const auto& [k, f] : r.kinds) out.push_back(k);
  return out;
}

std::unique_ptr<HiddenSource> make_host(const std::string& spec) {
  const std::string prefix = spec.substr(0, spec.find(':'));
  HostFactory f;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.kinds.find(prefix);
    if (it != r.kinds.end()) f = it->second;
  }
  if (!f) {
    std::string known;
    for (const auto& k : host_kinds()) known += (known.empty() ? "" : ", ") + k;
    if (prefix == "kv-file")
      throw Error(fmt::format("host spec '{}': kv-file holds KV streams, not hidden states; read it with "
                              "load_kv_file (known host kinds: {})",
                              spec, known));
    throw Error(fmt::format("unknown host spec '{}': expected one of {} (as '<kind>:<options>')", spec, known));
  }
  return f(spec);
}

std::map<std::string, at::Tensor> load_kv_file(const std::string& path) {
  auto f = io::SafetensorsFile::open(path);
  KVLAB_CHECK(!f.names().empty(), "{}: kv-file holds no tensors (expected one per KV stream, [tokens, D])", path);
  std::map<std::string, at::Tensor> out;
  for (const std::string& name : f.names()) {
    const io::TensorInfo& ti = f.info(name);
    KVLAB_CHECK(ti.shape.size() == 2 || ti.shape.size() == 3,
                "{}: tensor '{}' has shape {}; a KV stream must be [tokens, D] or [B, tokens, D]", path, name,
                io::shape_str(ti.shape));
    KVLAB_CHECK(ti.dtype == io::DType::F32 || ti.dtype == io::DType::BF16 || ti.dtype == io::DType::F16 ||
                    ti.dtype == io::DType::F64,
                "{}: tensor '{}' has dtype {}; expected F32, BF16, F16 or F64", path, name,
                io::dtype_name(ti.dtype));
    KVLAB_CHECK(ti.numel() > 0, "{}: tensor '{}' is empty (shape {})", path, name, io::shape_str(ti.shape));
    std::vector<float> v = f.to_f32(name);
    for (std::size_t i = 0; i < v.size(); ++i)
      KVLAB_CHECK(std::isfinite(v[i]), "{}: tensor '{}' has a non-finite value {} at flat index {}", path, name,
                  v[i], i);
    at::Tensor t = at::empty(at::IntArrayRef(ti.shape), at::TensorOptions().dtype(at::kFloat));
    std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
    out[name] = t;
  }
  return out;
}

}  // namespace kvlab::host
