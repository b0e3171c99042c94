-- kvlab result store, schema version 2.
-- Workers look up their claimed runs by claim token (heartbeat, release,
-- commit checks); a partial index keeps that O(log n) without indexing the
-- tokens of finished runs.
CREATE INDEX runs_claim ON runs (claim_token) WHERE status = 'running';
