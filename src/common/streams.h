// The one table of V4 KV stream types: canonical name, short label, the
// kind of layer that stores it and its compression ratio. Every layer that
// names a stream (specs, imports, stats ordering, reports) uses this table.
//
// Not here: how a stream is computed (model/v4_kv.h).
#pragma once

#include <string>
#include <vector>

namespace kvlab {

struct StreamInfo {
  const char* name;        // "csa_pool_kv_ratio4"
  const char* label;       // "CSA"
  const char* layer_kind;  // "window-only" | "CSA" | "HCA": the layers that store it
  int ratio;               // tokens per stored entry (1 for the window stream)
};

// In canonical display order: SWA, CSA, HCA.
const std::vector<StreamInfo>& stream_table();
const StreamInfo* find_stream(const std::string& name);
// Position in stream_table(); streams not in the table sort after it.
int stream_rank(const std::string& name);
bool stream_less(const std::string& a, const std::string& b);
// "SWA" / "CSA" / "HCA" for the table's streams, the name itself otherwise.
std::string stream_label(const std::string& name);
// "sliding_window_kv, csa_pool_kv_ratio4, hca_pool_kv_ratio128": for messages.
std::string known_streams_text();

}  // namespace kvlab
