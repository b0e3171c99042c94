// The published JSON files, parsed into a store::ImportBundle of origin
// 'published', in each of their three shapes:
//   per-passage (stage075_n8.json: per passage and stream, the audit and
//   per-codec rel_mse / cos_sim / bits_per_vector; codec names
//   v14_d4_Q<q>, v15_e8_Q<q>, fp8_per64_baseline),
//   single-passage (stage075_trained.json: results_by_stream, imported as
//   passage p0),
//   aggregate-only (stage075_qsweep*_n8.json: per stream {mean, std,
//   ci95_hw, n} of FP8 and of E8 per Q; no per-passage values exist, so the
//   bundle has no runs: the checked summaries go into params_json
//   "published_aggregate").
// The experiment records the file's sha256 as spec_hash; imported bits are
// the recorded bits_per_vector (published accounting).
//
// Not here: writing (store/import.h), CSV (csv.h).
#pragma once

#include <string>

#include <SQLiteCpp/Database.h>

#include "ingest/bundle.h"
#include "store/import.h"

namespace kvlab::ingest {

// "v14_d4_Q10" -> "d4:q=10", "v15_e8_Q38" -> "e8:q=38",
// "fp8_per64_baseline" -> "fp8_per64". Throws kvlab::Error otherwise.
std::string published_codec_spec(const std::string& published_name);

// The file at path. Throws kvlab::Error naming the file and the JSON path of
// a missing or mistyped field.
store::ImportBundle parse_published(const std::string& path, const ImportOptions& options);
// The same for the file's text (path names it in messages and params).
store::ImportBundle parse_published_text(const std::string& text, const std::string& path,
                                         const ImportOptions& options);

// parse_published, then store::write_import (nothing is written on error).
store::ImportOutcome import_published(SQLite::Database& db, const std::string& path, const ImportOptions& options);

}  // namespace kvlab::ingest
