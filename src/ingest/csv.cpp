// CSV of run results: see csv.h.
#include "ingest/csv.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "common/error.h"
#include "common/hash.h"
#include "kvlab_version.h"

namespace kvlab::ingest {

namespace {

const std::vector<std::string> kRequired = {"passage", "stream", "codec", "q", "bits_per_vector", "rel_mse", "cos_sim"};
// experiment and run_id (written by `kvlab export`) are accepted and ignored.
const std::vector<std::string> kOptional = {"n_vectors", "dim", "passage_hash", "replicate", "experiment", "run_id"};

double parse_double(const std::string& s, const std::string& where) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  KVLAB_CHECK(ec == std::errc() && ptr == s.data() + s.size() && !s.empty(), "{}: '{}' is not a number", where, s);
  KVLAB_CHECK(std::isfinite(v), "{}: '{}' is not finite", where, s);
  return v;
}
std::int64_t parse_int(const std::string& s, const std::string& where) {
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  KVLAB_CHECK(ec == std::errc() && ptr == s.data() + s.size() && !s.empty(), "{}: '{}' is not an integer", where, s);
  return v;
}

std::string default_canonical(const std::string& family, std::optional<int> q) {
  KVLAB_CHECK(!family.empty(), "empty codec name");
  for (char c : family)
    KVLAB_CHECK(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_',
                "codec '{}' must be lower-case letters, digits or '_'", family);
  if (family == "fp8_per64") {
    KVLAB_CHECK(!q, "codec fp8_per64 takes no Q (got q={})", q.value_or(0));
    return family;
  }
  KVLAB_CHECK(q && *q >= 1, "codec '{}' needs a Q >= 1", family);
  return fmt::format("{}:q={}", family, *q);
}

using Columns = std::map<std::string, std::size_t>;

// The header line: every column known, none twice, the required ones present.
Columns read_header(const std::vector<std::string>& fields, const std::string& where) {
  Columns col;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto& h = fields[i];
    const bool known = std::find(kRequired.begin(), kRequired.end(), h) != kRequired.end() ||
                       std::find(kOptional.begin(), kOptional.end(), h) != kOptional.end();
    KVLAB_CHECK(known, "{}: unknown column '{}'; expected passage, stream, codec, q, bits_per_vector, rel_mse, "
                "cos_sim and optionally n_vectors, dim, passage_hash, replicate (experiment, run_id: ignored)", where, h);
    KVLAB_CHECK(!col.count(h), "{}: column '{}' appears twice", where, h);
    col[h] = i;
  }
  for (const auto& r : kRequired) KVLAB_CHECK(col.count(r), "{}: missing column '{}' in the header", where, r);
  return col;
}

// One data line's fields with their names, and "<file>:<line> column <c>" for messages.
struct Row {
  const std::vector<std::string>& fields;
  const Columns& col;
  const std::string& where;
  const std::string& get(const std::string& c) const { return fields[col.at(c)]; }
  bool has(const std::string& c) const { return col.count(c) && !get(c).empty(); }
  std::string at(const std::string& c) const { return fmt::format("{} column {}", where, c); }
};

// The canonical codec of the codec and q columns.
void read_codec(const Row& row, const ImportOptions& opt, store::ImportRun& r) {
  std::string codec = row.get("codec");
  const std::string qs = row.get("q");
  std::optional<int> q;
  if (!qs.empty()) {
    const std::int64_t qv = parse_int(qs, row.at("q"));
    KVLAB_CHECK(qv >= 1 && qv <= 1000000, "{}: Q {} must be >= 1", row.at("q"), qv);
    q = static_cast<int>(qv);
  }
  // Either a family with the q column, or a full spec 'e8:q=38' (q column empty or equal).
  const auto colon = codec.find(":q=");
  if (colon != std::string::npos) {
    const std::int64_t sq = parse_int(codec.substr(colon + 3), row.at("codec"));
    KVLAB_CHECK(!q || *q == sq, "{}: codec '{}' disagrees with q = {}", row.where, codec, *q);
    q = static_cast<int>(sq);
    codec = codec.substr(0, colon);
  }
  try {
    r.codec = opt.canonicalize ? opt.canonicalize(codec, q) : default_canonical(codec, q);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", row.at("codec"), e.what()));
  }
  r.q = q;
}

// The numbers of one run: bits, rel-MSE, cosine, and the optional n_vectors, dim, replicate.
void read_values(const Row& row, store::ImportRun& r) {
  auto& res = r.result;
  res.bits_per_vector = parse_double(row.get("bits_per_vector"), row.at("bits_per_vector"));
  KVLAB_CHECK(res.bits_per_vector > 0, "{}: bits_per_vector {} must be > 0", row.at("bits_per_vector"),
              res.bits_per_vector);
  res.rel_mse = parse_double(row.get("rel_mse"), row.at("rel_mse"));
  KVLAB_CHECK(res.rel_mse >= 0, "{}: rel_mse {} must be >= 0", row.at("rel_mse"), res.rel_mse);
  res.cos_sim = parse_double(row.get("cos_sim"), row.at("cos_sim"));
  KVLAB_CHECK(res.cos_sim >= -1.0000001 && res.cos_sim <= 1.0000001, "{}: cos_sim {} must be in [-1, 1]",
              row.at("cos_sim"), res.cos_sim);
  if (row.has("n_vectors")) res.n_vectors = parse_int(row.get("n_vectors"), row.at("n_vectors"));
  if (row.has("dim")) {
    res.dim = parse_int(row.get("dim"), row.at("dim"));
    KVLAB_CHECK(*res.dim > 0, "{}: dim {} must be > 0", row.at("dim"), *res.dim);
  }
  if (row.has("replicate")) {
    const std::int64_t rep = parse_int(row.get("replicate"), row.at("replicate"));
    KVLAB_CHECK(rep >= 0, "{}: replicate {} must be >= 0", row.at("replicate"), rep);
    r.replicate = static_cast<int>(rep);
  }
}

// What the rows of one file have in common: passages in order of first
// appearance with their hashes, the (passage, stream, codec, replicate) keys.
struct CsvState {
  std::map<std::string, std::string> passage_hash;  // name -> hash
  std::vector<std::string> passage_order;
  std::set<std::string> streams_seen, codecs_seen;
  std::set<std::tuple<std::string, std::string, std::string, int>> keys;
};

store::ImportRun read_row(const Row& row, const ImportOptions& opt, CsvState& s) {
  store::ImportRun r;
  r.passage = row.get("passage");
  KVLAB_CHECK(!r.passage.empty(), "{}: empty passage name", row.at("passage"));
  r.stream = row.get("stream");
  check_stream(row.at("stream"), r.stream);
  read_codec(row, opt, r);
  read_values(row, r);
  std::string hash = row.col.count("passage_hash") ? row.get("passage_hash") : "";
  if (hash.empty()) hash = sha256_hex("csv-passage:" + r.passage);
  const auto pit = s.passage_hash.find(r.passage);
  if (pit == s.passage_hash.end()) {
    s.passage_hash[r.passage] = hash;
    s.passage_order.push_back(r.passage);
  } else {
    KVLAB_CHECK(pit->second == hash, "{}: passage '{}' has two different passage_hash values", row.where, r.passage);
  }
  KVLAB_CHECK(s.keys.insert({r.passage, r.stream, r.codec, r.replicate}).second,
              "{}: duplicate row for passage '{}', stream {}, codec {}, replicate {}", row.where, r.passage, r.stream,
              r.codec, r.replicate);
  s.streams_seen.insert(r.stream);
  s.codecs_seen.insert(r.codec);
  return r;
}

// Passages, params_json, spec text and provenance once every row is read.
void finish_csv(store::ImportBundle& b, const CsvState& s, const std::string& file, const ImportOptions& opt) {
  for (std::size_t i = 0; i < s.passage_order.size(); ++i)
    b.passages.push_back({static_cast<int>(i), s.passage_order[i], s.passage_hash.at(s.passage_order[i]),
                          fmt::format("csv:{}#{}", file, s.passage_order[i]), std::nullopt});
  nlohmann::json params = nlohmann::json::object();
  params["streams"] = std::vector<std::string>(s.streams_seen.begin(), s.streams_seen.end());
  params["codecs"] = std::vector<std::string>(s.codecs_seen.begin(), s.codecs_seen.end());
  params["layer_mix"] = layer_mix_json(opt.layer_mix);
  params["host"] = {{"kind", "csv"}, {"spec", file}};
  params["import"] = {{"file", file}, {"sha256", b.sha256}, {"format", "csv"}};
  set_params(b, std::move(params));
  b.spec_text = fmt::format("imported from CSV {} (sha256 {}); {} rows, {} passages", file, b.sha256, b.runs.size(),
                            b.passages.size());
  b.provenance.kvlab_version = fmt::format("csv import (kvlab {})", KVLAB_VERSION);
  b.provenance.git_commit = "unknown";
  b.provenance.git_dirty = -1;
  b.provenance.host_kind = "csv";
  b.provenance.host_json = nlohmann::json({{"file", file}, {"sha256", b.sha256}}).dump();
}

}  // namespace

std::vector<std::string> split_csv_line(const std::string& line, const std::string& where) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"' && cur.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
      was_quoted = false;
    } else {
      cur += c;
    }
  }
  KVLAB_CHECK(!quoted, "{}: unterminated quoted field", where);
  out.push_back(cur);
  for (auto& f : out) {
    while (!f.empty() && std::isspace(static_cast<unsigned char>(f.back()))) f.pop_back();
    std::size_t s = 0;
    while (s < f.size() && std::isspace(static_cast<unsigned char>(f[s]))) ++s;
    f.erase(0, s);
  }
  return out;
}

store::ImportBundle parse_csv_text(const std::string& text, const std::string& path, const ImportOptions& opt) {
  check_layer_mix(opt.layer_mix);
  const std::string file = std::filesystem::path(path).filename().string();
  store::ImportBundle b;
  b.origin = "csv";
  b.name = experiment_name(path, opt);
  b.sha256 = sha256_hex(text);
  std::optional<Columns> col;
  CsvState state;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", file, lineno);
    const auto fields = split_csv_line(line, where);
    if (!col) {
      col = read_header(fields, where);
      continue;
    }
    KVLAB_CHECK(fields.size() == col->size(), "{}: {} fields, the header has {}", where, fields.size(), col->size());
    b.runs.push_back(read_row(Row{fields, *col, where}, opt, state));
  }
  KVLAB_CHECK(col.has_value(), "'{}' is empty; expected a header line with passage, stream, codec, q, "
              "bits_per_vector, rel_mse, cos_sim", path);
  KVLAB_CHECK(!b.runs.empty(), "'{}' has a header but no rows", path);
  finish_csv(b, state, file, opt);
  return b;
}

store::ImportBundle parse_csv(const std::string& path, const ImportOptions& opt) {
  check_layer_mix(opt.layer_mix);
  return parse_csv_text(read_text_file(path), path, opt);
}

store::ImportOutcome import_csv(SQLite::Database& db, const std::string& path, const ImportOptions& opt) {
  return store::write_import(db, parse_csv(path, opt));
}

}  // namespace kvlab::ingest
