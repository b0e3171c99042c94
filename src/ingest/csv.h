// A CSV of run results, parsed into a store::ImportBundle of origin 'csv':
// columns passage, stream, codec, q, bits_per_vector, rel_mse, cos_sim;
// optional n_vectors, dim, passage_hash, replicate; the experiment and
// run_id columns that `kvlab export` adds are ignored. codec is a family
// with the q column, or a full spec ('e8:q=38', q empty or equal).
// Passages are numbered in order of first appearance; without
// passage_hash a passage's content hash is sha256("csv-passage:<name>").
// The experiment records the file's sha256 as spec_hash.
//
// Not here: writing (store/import.h), the published JSON (published.h).
#pragma once

#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

#include "ingest/bundle.h"
#include "store/import.h"

namespace kvlab::ingest {

// RFC 4180 fields of one line (quotes, doubled quotes; no embedded
// newlines), each trimmed of surrounding white space. Throws kvlab::Error
// "<where>: unterminated quoted field".
std::vector<std::string> split_csv_line(const std::string& line, const std::string& where);

// The file at path. Throws kvlab::Error naming the file, line and column of
// a bad value.
store::ImportBundle parse_csv(const std::string& path, const ImportOptions& options);
// The same for the file's text (path names it in messages and params).
store::ImportBundle parse_csv_text(const std::string& text, const std::string& path, const ImportOptions& options);

// parse_csv, then store::write_import (nothing is written on error).
store::ImportOutcome import_csv(SQLite::Database& db, const std::string& path, const ImportOptions& options);

}  // namespace kvlab::ingest
