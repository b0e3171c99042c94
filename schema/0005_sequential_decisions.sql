-- kvlab result store, schema version 5.
-- The threshold decisions of a sequential sweep (`kvlab run
-- --until-resolved`, experiment/sequential.h): per experiment, stream,
-- codec, metric and threshold, the latest evaluation (passages evaluated,
-- paired ratio to the baseline, Holm-adjusted p, verdict) and the number of
-- passages the decision needed (NULL while unresolved). Existing databases
-- carry forward unchanged: they have no rows here.
CREATE TABLE sequential_decisions (
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  stream        TEXT NOT NULL,
  codec         TEXT NOT NULL,
  metric        TEXT NOT NULL,          -- common/metric_table.h name, e.g. 'rel_mse'
  threshold     TEXT NOT NULL,          -- 'A' | 'B' | 'C'
  factor        REAL NOT NULL,          -- 1.00 | 1.05 | 1.20
  alpha         REAL NOT NULL,          -- family-wise level of the Holm correction
  n_evaluated   INTEGER NOT NULL,       -- passages in the latest evaluation
  ratio_mean    REAL,
  ratio_ci95_hw REAL,
  p_holm        REAL,                   -- NULL when n < 2
  verdict       TEXT NOT NULL CHECK (verdict IN ('below', 'above', 'unresolved')),
  n_needed      INTEGER,                -- passages at which the current verdict was first reached
  updated_at    TEXT NOT NULL,          -- ISO-8601 UTC
  PRIMARY KEY (experiment_id, stream, codec, metric, threshold)
);
