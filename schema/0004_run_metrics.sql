-- kvlab result store, schema version 4.
-- Every per-run metric beyond the two historical results columns (rel_mse,
-- cos_sim) lives here, one row per (run, metric); the names are
-- common/metric_table.h's. Adding a metric needs no migration. Existing
-- databases carry forward unchanged: their runs simply have no rows here.
CREATE TABLE run_metrics (
  run_id  INTEGER NOT NULL REFERENCES runs(id),
  metric  TEXT NOT NULL,
  value   REAL NOT NULL,
  PRIMARY KEY (run_id, metric)
) WITHOUT ROWID;
