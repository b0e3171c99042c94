// Read-only queries of the passages table that the frontier report needs
// beyond store::load_experiment (query.h): each passage's text (to count its
// words against seqlen: was it repeated to fill the sequence?) and every
// experiment's passage set (names, content hashes, write path and baseline),
// so a report can say which other experiments ran on other passages.
//
// Not here: the rows stats::summarize reads (query.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

namespace kvlab::store {

struct PassageText {
  std::int64_t id = 0;
  int idx = 0;
  std::string name;
  std::string content_hash;
  std::string source;               // 'text:<path>' | 'synthetic:seed=<n>' | 'published:...'
  std::optional<std::string> text;  // NULL when the passage has no text
};

// The passages of one experiment, by idx.
std::vector<PassageText> load_passage_texts(SQLite::Database& db, std::int64_t experiment_id);

struct ExperimentPassageSet {
  std::int64_t id = 0;
  std::string name;
  std::string origin;
  std::string write_path;  // params_json "write_path" ('' when absent)
  std::string baseline;    // params_json "baseline" ('' when absent)
  std::vector<std::string> passage_names;   // by idx
  std::vector<std::string> passage_hashes;  // content_hash, by idx
};

// Every experiment of the database with its passage set, by id.
std::vector<ExperimentPassageSet> load_passage_sets(SQLite::Database& db);

}  // namespace kvlab::store
