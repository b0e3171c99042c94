// The executor seam between the run queue and the numerics.
//
// A worker claims all pending runs of one passage (store::Claim), asks the
// Executor to open the passage -- which generates its KV streams ONCE --
// and then asks the session for each (stream, codec) result and each
// stream's audit. Two implementations:
//  - the stub executor (stub_executor.cpp): deterministic fake numbers from
//    a hash of the run's identity, optional sleep and failure injection; no
//    LibTorch work, for the store's reliability tests and benchmarks;
//  - the torch executor (torch_executor.cpp): the V4 KV write path
//    (model/), the host's hidden states (host/), the codecs (codec/) and
//    the metrics (kernels/metrics.h).
//
// Executors are used by one worker thread at a time; a process with several
// worker threads makes one Executor per thread.
// Not here: claiming, committing, retries (worker.h, store/runs.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/db.h"
#include "store/runs.h"

namespace kvlab::experiment {

// What an executor needs to know about one claimed passage.
struct PassageJob {
  std::string experiment;
  nlohmann::json params;  // experiments.params_json, parsed
  int passage_idx = 0;
  std::string passage_name;
  std::string passage_source;  // 'text:...' | 'synthetic:seed=N'
  std::string content_hash;
  std::optional<std::string> text;
  std::uint64_t seed = 0;  // synthetic passages: their seed; text passages: the host seed
  int replicate = 0;
  std::vector<std::string> streams;  // streams with pending runs (generate only these)

  static PassageJob from_claim(const store::Claim& c);
};

// One (stream, codec) measurement; wall_s is filled by the worker.
using RunMeasurement = store::RunResult;
using AuditMeasurement = store::AuditRow;

class PassageSession {
 public:
  virtual ~PassageSession() = default;
  // The codec `codec` (canonical spec) applied to stream `stream`.
  virtual RunMeasurement measure(const std::string& stream, const std::string& codec) = 0;
  // The non-Gaussian audit of one stream (SPEC section 4).
  virtual AuditMeasurement audit(const std::string& stream) = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // e.g. "stub", "torch".
  virtual std::string name() const = 0;
  // Adds what this executor knows to the process provenance (torch
  // version, BLAS, device, host and weights description, stream dtype).
  virtual void fill_provenance(store::Provenance& p, const nlohmann::json& params) const = 0;
  // Generates the passage's streams (once per call). Throws kvlab::Error
  // (or any std::exception) when it cannot; the worker then fails the runs.
  virtual std::unique_ptr<PassageSession> open_passage(const PassageJob& job) = 0;
  // How many times open_passage generated streams (for tests / stats).
  std::int64_t passages_opened() const { return passages_opened_; }

 protected:
  std::int64_t passages_opened_ = 0;
};

// "stub" or "stub:sleep_ms=2,fail=e8:q=1" (see make_stub_executor), or
// "torch" (see make_torch_executor). Throws kvlab::Error naming the spec on
// unknown names or options.
std::unique_ptr<Executor> make_executor(const std::string& spec);

// Deterministic fake numbers; options, comma-separated:
//   sleep_ms=N      sleep N ms in each measure() (simulated work)
//   open_ms=N       sleep N ms in open_passage() (simulated stream generation)
//   fail=CODEC      measure() of this codec throws (repeatable: fail=a;b)
//   fail_passage=P  open_passage() of passage named P throws
// rel_mse / cos_sim / audit values, the rate metrics (entropy below the
// stored bits/dim, the exact Gaussian bound, a water-filling bound below it
// for streams of n >= D vectors) and, with [metrics] attention = on, the
// four attention metrics are a hash of (passage content hash,
// stream, codec): identical on every rerun. bits_per_vector / code_bytes are
// the real codec's (codec::make_codec), n_vectors follows seqlen.
std::unique_ptr<Executor> make_stub_executor(const std::string& options);

// The real computation (every run also stores entropy_bits_per_dim,
// gauss_bound_rel_mse and, for streams of n >= D vectors,
// rwf_bound_rel_mse); options, comma-separated:
//   threads=N       LibTorch intra-op threads for this executor (default: all
//                   cores / number of worker threads, set by the worker)
std::unique_ptr<Executor> make_torch_executor(const std::string& options);

}  // namespace kvlab::experiment
