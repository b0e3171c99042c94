// The submission manifest `<base>.slurm.json` of a Slurm scale-out (a JSON
// file next to the main database, not SQL): what `kvlab slurm submit`
// wrote (database, spec, experiment, sbatch script, number of shards,
// throttle) and which Slurm array jobs ran it, extended by
// `kvlab slurm resubmit`; read by `kvlab slurm status/resubmit` and
// `kvlab ingest`.
//
// Not here: the shard databases (store/shard.h), talking to Slurm
// (cli/cmd_slurm.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kvlab::experiment {

struct SlurmSubmission {
  std::string job_id;       // Slurm array job id ("" for --dry-run)
  std::string array;        // e.g. "0-19%2" or "3,7"
  std::string submitted_at; // ISO-8601 UTC
};

struct SlurmManifest {
  std::string db;           // absolute path of the main database
  std::string spec;         // spec file as given
  std::string experiment;
  std::string sbatch;       // path of the sbatch script
  int shards = 0;
  std::optional<int> throttle;  // %K
  std::vector<SlurmSubmission> submissions;
};

// "<db_path without a trailing .db>.slurm.json" (store::shard_base).
std::string manifest_path(const std::string& db_path);
// Throws kvlab::Error when the file is missing, is not JSON, or a field is
// missing or of the wrong type (naming the file and the field, e.g.
// "submissions[1].job_id"), or shards < 1.
SlurmManifest read_manifest(const std::string& path);
// Atomic (temporary file + rename).
void write_manifest(const std::string& path, const SlurmManifest& m);

}  // namespace kvlab::experiment
