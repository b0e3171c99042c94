-- kvlab result store, schema version 3.
-- Which projection GEMM the V4 write path ran ('bf16 (oneDNN 2.6.3
-- brg:avx512_core_amx_bf16)', 'fp32 (at::mm)'); NULL for runs that did not
-- run the write path (kv-file hosts, imports) and for rows written before
-- version 3.
ALTER TABLE provenance ADD COLUMN gemm TEXT;
