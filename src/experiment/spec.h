// Sweep specs: declarative INI files (experiments/*.ini) read with
// Boost.Program_options' config-file parser, validated completely before
// anything is queued, and turned into a store::ExperimentPlan whose
// params_json follows the contract the query and report layers read.
//
// File format ('#' starts a comment; keys may repeat where noted):
//
//   [experiment]
//   name = stage075_n8            # required; [A-Za-z0-9_.-]+
//   description = free text       # optional
//   seqlen = 2048                 # tokens per passage; multiple of 128, >= 256
//   stream_dtype = bf16           # bf16 | fp32
//   device = cpu                  # cpu | cuda | cuda:N
//   streams = sliding_window_kv csa_pool_kv_ratio4 hca_pool_kv_ratio128
//   [weights]
//   kind = random                 # random | checkpoint
//   seed = 0                      # random
//   path = /ckpt/V4-Flash         # checkpoint (relative paths: to the spec file)
//   layer.sliding_window_kv = 0   # checkpoint: layer id per stream
//   simulate_fp8 = true           # write-path FP8 of the nope dims (SPEC 2); false: pre-storage KV
//   gemm = auto                   # auto | fp32 | bf16: projection GEMM path (model/gemm.h)
//   write_path = published        # published (SPEC 2) | v4 (SPEC-V4-ATTENTION: compressor YaRN
//                                 # at every length, UE8M0 FP8 scales, V4-Flash's real layer mix)
//   [host]
//   kind = synthetic              # synthetic | kv-file | hf
//   seed = 1234                   # synthetic
//   path = ...                    # kv-file / hf
//   [passages]
//   text = passages/topology.txt  # repeatable; name = file stem
//   synthetic = 0-7 9             # ids / ranges of synthetic passages (no text)
//   seed_base = 1000              # synthetic passage id i gets seed seed_base + i
//   [codecs]
//   codec = fp8_per64             # repeatable; any codec::parse_codec_spec spec
//   e8.q = 1 2 3 10 38            # a Q grid for a lattice family (d4.q, e8.q)
//   [layer_mix]                   # layers per stream; default: the write path's V4-Flash mix
//   sliding_window_kv = 3         # (published: SPEC's 3/20/20; v4: compress_ratios, 2/21/20);
//                                 # an explicit [layer_mix] wins in both modes
//   [report]
//   codec = e8:q=38               # the codec the findings are about
//   compare = d4:q=38             # optional second codec
//   baseline = v4_native          # optional: the codec every ratio is against (a baseline
//                                 # format of this experiment; default fp8_per64)
//   [forecast]                    # optional deployment forecast inputs
//   kv_memory_gib_per_node = 640
//   context_tokens = 1048576
//   vectors_per_token.csa_pool_kv_ratio4 = 0.25
//   [metrics]                     # optional; entropy and the two bounds are always measured
//   attention = off               # on: V4 attention fidelity per run (logit_rel_mse, kl_mean,
//                                 # kl_p99, attn_out_rel), reference once per (passage, stream)
//   attention_queries = 256       # query positions sampled per passage (>= 1)
//   attention_seed = 0            # query sample and random query weights; default: weights seed
//
// Errors (kvlab::Error) name file:line, the key and what was expected.
// Not here: the queue (store/runs.h), running (worker.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/runs.h"

namespace kvlab::experiment {

// The three KV streams of the V4 write path, in canonical order.
const std::vector<std::string>& known_streams();

struct PassageSpec {
  std::string name;
  std::string source;                // 'text:<path as written>' | 'synthetic:seed=<n>'
  std::optional<std::string> text;   // file contents for text passages
  std::uint64_t seed = 0;            // synthetic: seed_base + id; text: the host seed
};

struct SweepSpec {
  std::string path;       // the file read
  std::string spec_text;  // verbatim
  std::string name;
  std::string description;
  int seqlen = 2048;
  std::string stream_dtype = "bf16";
  std::string device = "cpu";
  std::vector<std::string> streams;
  nlohmann::json weights;   // {"kind":"random","seed":N} | {"kind":"checkpoint","path":P,"layers":{...}}
  nlohmann::json host;      // {"kind":K,"spec":"K:...", ...parameters}
  std::vector<PassageSpec> passages;
  std::vector<store::PlannedCodec> codecs;  // canonical, in spec order, no duplicates
  std::map<std::string, int> layer_mix;
  nlohmann::json report;    // {"codec":..., "compare":... or null}
  nlohmann::json forecast;  // null or the object
  // null (no [metrics] section: attention off, params unchanged) or
  // {"attention": bool, "attention_queries": N, "attention_seed": N}.
  nlohmann::json metrics;

  // The params_json contract (see the store engineer's issue / README).
  nlohmann::json params() const;
  // spec_hash = sha256(spec_text); passages hashed by content.
  store::ExperimentPlan plan() const;
  std::size_t run_count() const { return passages.size() * streams.size() * codecs.size(); }
};

// Reads and validates a spec file (kvlab::Error with file:line on any problem).
SweepSpec load_spec(const std::string& path);
// Same from text; `path` is used in messages and to resolve relative paths.
SweepSpec parse_spec(const std::string& text, const std::string& path);

// Parses "0-7 9 12-13" into ids (sorted as written, duplicates rejected).
std::vector<int> parse_id_ranges(const std::string& s);

}  // namespace kvlab::experiment
