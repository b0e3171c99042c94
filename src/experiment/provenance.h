// The process-level provenance of what this kvlab build runs: kvlab
// version, git commit and dirty flag of KVLAB_SOURCE_DIR at run time (`git
// -C`; falls back to the commit baked in at build time with git_dirty = -1),
// host name, and the Slurm job variables (SLURM_JOB_ID, SLURM_ARRAY_JOB_ID,
// SLURM_ARRAY_TASK_ID, SLURM_JOB_NODELIST, SLURMD_NODENAME,
// SLURM_JOB_PARTITION, SLURM_CLUSTER_NAME) as a JSON object, NULL outside
// Slurm. git is queried once per process. The store only receives the row
// (store::upsert_provenance); the executor adds torch version, BLAS and
// device.
#pragma once

#include "store/db.h"

namespace kvlab::experiment {

store::Provenance current_provenance();

}  // namespace kvlab::experiment
