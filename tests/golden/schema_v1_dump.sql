-- Text dump (sqlite3 .dump) of a kvlab database at schema version 1, with a
-- few rows, for tests/store_db_test.cpp (migration from v1). Never edit.
PRAGMA application_id=1263946818;
PRAGMA user_version=1;
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE experiments (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE,
  origin       TEXT NOT NULL,          -- 'sweep' | 'published' | 'csv'
  spec_text    TEXT NOT NULL,          -- the spec file verbatim (or import description)
  spec_hash    TEXT NOT NULL,          -- sha256 of spec_text (or of the imported file)
  params_json  TEXT NOT NULL,          -- parsed spec: seqlen, stream_dtype, weights, host,
                                       -- layer mix {stream: layers}, forecast parameters
  created_at   TEXT NOT NULL           -- ISO-8601 UTC
);
INSERT INTO experiments VALUES(1,'mig_v1','sweep','[experiment]\nname = mig_v1\n','0000000000000000000000000000000000000000000000000000000000000000','{"seqlen":64}','2026-01-01T00:00:00Z');
CREATE TABLE passages (
  id            INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  idx           INTEGER NOT NULL,      -- position in the spec, 0-based
  name          TEXT NOT NULL,         -- e.g. 'topology' or 'p3'
  content_hash  TEXT NOT NULL,         -- sha256 of the text, or of the synthetic description
  source        TEXT NOT NULL,         -- 'text:<path>' | 'synthetic:seed=<n>' | 'published:<file>#<id>'
  text          TEXT,                  -- passage text when there is one
  UNIQUE (experiment_id, idx),
  UNIQUE (experiment_id, name)
);
INSERT INTO passages VALUES(1,1,0,'topology','1111111111111111111111111111111111111111111111111111111111111111','synthetic:seed=1',NULL);
INSERT INTO passages VALUES(2,1,1,'harmony','2222222222222222222222222222222222222222222222222222222222222222','synthetic:seed=2',NULL);
CREATE TABLE provenance (
  id            INTEGER PRIMARY KEY,
  kvlab_version TEXT NOT NULL,
  git_commit    TEXT NOT NULL,
  git_dirty     INTEGER NOT NULL,      -- 0/1, -1 unknown
  torch_version TEXT,
  blas          TEXT,                  -- BLAS library LibTorch ran on
  device        TEXT,                  -- 'cpu' / 'cuda:0 (NVIDIA H100...)'
  hostname      TEXT,
  host_kind     TEXT,                  -- 'synthetic' | 'kv-file' | 'hf' | 'published'
  host_json     TEXT,                  -- host parameters (seed, model name, file hashes)
  weights_json  TEXT,                  -- weights source (random seed or checkpoint + layers + hashes)
  stream_dtype  TEXT,
  slurm_json    TEXT,                  -- Slurm job/array ids and node, NULL outside Slurm
  fingerprint   TEXT NOT NULL UNIQUE   -- sha256 of all other columns (dedupe)
);
INSERT INTO provenance VALUES(1,'0.1.0','abc',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'f1');
CREATE TABLE runs (
  id            INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  passage_id    INTEGER NOT NULL REFERENCES passages(id),
  stream        TEXT NOT NULL,         -- sliding_window_kv | csa_pool_kv_ratio4 | hca_pool_kv_ratio128
  codec         TEXT NOT NULL,         -- canonical codec spec: 'fp8_per64', 'e8:q=38', 'd4:q=10'
  q             INTEGER,               -- lattice Q; NULL for fp8_per64
  replicate     INTEGER NOT NULL DEFAULT 0,
  status        TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed')),
  attempts      INTEGER NOT NULL DEFAULT 0,
  worker        TEXT,                  -- '<hostname>:<pid>' of the current/last claimant
  claim_token   TEXT,                  -- random per claim; a result must present it
  queued_at     REAL NOT NULL,         -- unix seconds
  claimed_at    REAL,
  heartbeat_at  REAL,
  finished_at   REAL,
  error         TEXT,                  -- last error message (kept across retries)
  UNIQUE (experiment_id, passage_id, stream, codec, replicate)
);
INSERT INTO runs VALUES(1,1,1,'sliding_window_kv','fp8_per64',NULL,0,'done',1,NULL,NULL,1.0,NULL,NULL,2.0,NULL);
INSERT INTO runs VALUES(2,1,1,'sliding_window_kv','e8:q=38',38,0,'done',1,NULL,NULL,1.0,NULL,NULL,2.0,NULL);
INSERT INTO runs VALUES(3,1,2,'sliding_window_kv','fp8_per64',NULL,0,'queued',0,NULL,NULL,1.0,NULL,NULL,NULL,NULL);
INSERT INTO runs VALUES(4,1,2,'sliding_window_kv','e8:q=38',38,0,'failed',3,NULL,NULL,1.0,NULL,NULL,NULL,'boom');
CREATE TABLE results (
  run_id          INTEGER PRIMARY KEY REFERENCES runs(id),
  bits_per_vector REAL NOT NULL,
  code_bytes      INTEGER,             -- bytes actually written per vector (NULL for imports)
  rel_mse         REAL NOT NULL,
  cos_sim         REAL NOT NULL,
  n_vectors       INTEGER,
  dim             INTEGER,
  wall_s          REAL,
  provenance_id   INTEGER REFERENCES provenance(id)
);
INSERT INTO results VALUES(1,4224.0,528,0.012300000000000000169,0.99899999999999999911,64,512,0.010000000000000000208,1);
INSERT INTO results VALUES(2,3296.0,412,0.010099999999999999603,0.99909999999999998809,64,512,0.020000000000000000416,1);
CREATE TABLE audits (
  experiment_id  INTEGER NOT NULL REFERENCES experiments(id),
  passage_id     INTEGER NOT NULL REFERENCES passages(id),
  stream         TEXT NOT NULL,
  replicate      INTEGER NOT NULL DEFAULT 0,
  excess_kurtosis_abs                 REAL NOT NULL,
  isotropy_variance_ratio             REAL NOT NULL,
  hadamard_post_variance_ratio        REAL NOT NULL,
  rms_wasserstein2_over_sigma_per_dim REAL NOT NULL,
  n_vectors      INTEGER NOT NULL,
  dim            INTEGER NOT NULL,
  provenance_id  INTEGER REFERENCES provenance(id),
  PRIMARY KEY (experiment_id, passage_id, stream, replicate)
);
INSERT INTO audits VALUES(1,1,'sliding_window_kv',0,0.10000000000000000555,1.1999999999999999555,1.1000000000000000888,0.020000000000000000416,64,512,1);
CREATE INDEX runs_status ON runs (status, experiment_id, passage_id);
CREATE INDEX runs_cell ON runs (experiment_id, stream, codec);
COMMIT;
