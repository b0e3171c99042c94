// What every ingest parser shares: the import options (experiment name,
// the model's layer mix, the codec canonicalizer), the stream names imports
// accept, and the helpers that turn a parsed file into the params_json of
// its store::ImportBundle.
//
// Not here: the file formats (published.h, csv.h), writing (store/import.h).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/import.h"

namespace kvlab::ingest {

// (stream, layers) pairs written into params_json "layer_mix".
using LayerMix = std::vector<std::pair<std::string, double>>;

// Turns a family name and optional Q into the canonical codec spec, or
// throws kvlab::Error naming the value. The CLI passes one backed by the
// codec registry; when empty, a structural check is used ('fp8_per64' with
// no Q, or '<family>' + Q >= 1 -> '<family>:q=<Q>').
using CodecCanonicalizer = std::function<std::string(const std::string& family, std::optional<int> q)>;

struct ImportOptions {
  std::string experiment;  // experiment name; empty = the file name without directory and extension
  LayerMix layer_mix;      // required: the model's layer counts per stream
  CodecCanonicalizer canonicalize;
};

// The stream names imports accept.
const std::vector<std::string>& published_stream_names();

// Throws kvlab::Error unless the mix is non-empty with finite counts >= 0.
void check_layer_mix(const LayerMix& lm);
// {stream: layers}.
nlohmann::json layer_mix_json(const LayerMix& lm);
// Throws kvlab::Error "<where>: unknown stream ..." unless s is a published stream.
void check_stream(const std::string& where, const std::string& s);
// The whole file; throws kvlab::Error naming the path when it cannot be opened.
std::string read_text_file(const std::string& path);
// options.experiment, or the file name without directory and extension.
std::string experiment_name(const std::string& path, const ImportOptions& options);
// Sets b.params_json to params plus, when the runs have an e8 codec with a
// Q, "report": {"codec": the largest-Q e8, "compare": d4 at that Q if present}.
void set_params(store::ImportBundle& b, nlohmann::json params);

}  // namespace kvlab::ingest
