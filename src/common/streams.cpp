// The stream table; see streams.h.
#include "common/streams.h"

namespace kvlab {

const std::vector<StreamInfo>& stream_table() {
  static const std::vector<StreamInfo> t = {
      {"sliding_window_kv", "SWA", "window-only", 1},
      {"csa_pool_kv_ratio4", "CSA", "CSA", 4},
      {"hca_pool_kv_ratio128", "HCA", "HCA", 128},
  };
  return t;
}

const StreamInfo* find_stream(const std::string& name) {
  for (const auto& s : stream_table())
    if (name == s.name) return &s;
  return nullptr;
}

int stream_rank(const std::string& name) {
  const auto& t = stream_table();
  for (std::size_t i = 0; i < t.size(); ++i)
    if (name == t[i].name) return int(i);
  return int(t.size());
}

bool stream_less(const std::string& a, const std::string& b) {
  const int ra = stream_rank(a), rb = stream_rank(b);
  return ra != rb ? ra < rb : a < b;
}

std::string stream_label(const std::string& name) {
  const StreamInfo* s = find_stream(name);
  return s ? s->label : name;
}

std::string known_streams_text() {
  std::string out;
  for (const auto& s : stream_table()) out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

}  // namespace kvlab
