// The Slurm submission manifest; see slurm_manifest.h.
#include "experiment/slurm_manifest.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "store/shard.h"

namespace kvlab::experiment {

namespace {

const char* json_type(const nlohmann::json& v) { return v.type_name(); }

// Field `key` of object `obj` (named `where` in messages) as T.
template <class T>
T get_field(const std::string& path, const nlohmann::json& obj, const std::string& where, const char* key) {
  const std::string name = where.empty() ? key : where + "." + key;
  KVLAB_CHECK(obj.is_object() && obj.contains(key), "'{}' lacks the field \"{}\"", path, name);
  const nlohmann::json& v = obj.at(key);
  if constexpr (std::is_same_v<T, std::string>) {
    KVLAB_CHECK(v.is_string(), "'{}': field \"{}\" is {} ({}); expected a string", path, name, json_type(v), v.dump());
    return v.get<std::string>();
  } else {
    static_assert(std::is_same_v<T, int>);
    KVLAB_CHECK(v.is_number_integer() && v.get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                    v.get<std::int64_t>() <= std::numeric_limits<int>::max(),
                "'{}': field \"{}\" is {} ({}); expected an integer", path, name, json_type(v), v.dump());
    return v.get<int>();
  }
}

}  // namespace

std::string manifest_path(const std::string& db_path) { return store::shard_base(db_path) + ".slurm.json"; }

SlurmManifest read_manifest(const std::string& path) {
  std::ifstream in(path);
  KVLAB_CHECK(in.good(), "cannot read '{}'; it is written by `kvlab slurm submit` (was it run with this --db?)", path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", path, e.what()));
  }
  KVLAB_CHECK(j.is_object(), "'{}' is {} ({}); expected a JSON object", path, json_type(j), j.dump());
  SlurmManifest m;
  m.db = get_field<std::string>(path, j, "", "db");
  m.spec = get_field<std::string>(path, j, "", "spec");
  m.experiment = get_field<std::string>(path, j, "", "experiment");
  m.sbatch = get_field<std::string>(path, j, "", "sbatch");
  m.shards = get_field<int>(path, j, "", "shards");
  if (j.contains("throttle") && !j.at("throttle").is_null()) m.throttle = get_field<int>(path, j, "", "throttle");
  KVLAB_CHECK(j.contains("submissions"), "'{}' lacks the field \"submissions\"", path);
  const auto& subs = j.at("submissions");
  KVLAB_CHECK(subs.is_array(), "'{}': field \"submissions\" is {}; expected an array", path, json_type(subs));
  for (std::size_t i = 0; i < subs.size(); ++i) {
    const std::string where = fmt::format("submissions[{}]", i);
    const auto& s = subs[i];
    KVLAB_CHECK(s.is_object(), "'{}': field \"{}\" is {} ({}); expected an object", path, where, json_type(s),
                s.dump());
    m.submissions.push_back(SlurmSubmission{get_field<std::string>(path, s, where, "job_id"),
                                            get_field<std::string>(path, s, where, "array"),
                                            get_field<std::string>(path, s, where, "submitted_at")});
  }
  KVLAB_CHECK(m.shards >= 1, "'{}': shards is {}; expected at least 1", path, m.shards);
  return m;
}

void write_manifest(const std::string& path, const SlurmManifest& m) {
  nlohmann::json j;
  j["db"] = m.db;
  j["spec"] = m.spec;
  j["experiment"] = m.experiment;
  j["sbatch"] = m.sbatch;
  j["shards"] = m.shards;
  j["throttle"] = m.throttle ? nlohmann::json(*m.throttle) : nlohmann::json(nullptr);
  j["submissions"] = nlohmann::json::array();
  for (const auto& s : m.submissions)
    j["submissions"].push_back({{"job_id", s.job_id}, {"array", s.array}, {"submitted_at", s.submitted_at}});
  const std::string tmp = fmt::format("{}.tmp{}", path, ::getpid());
  {
    std::ofstream o(tmp);
    KVLAB_CHECK(o.good(), "cannot write '{}'", tmp);
    o << j.dump(2) << "\n";
    KVLAB_CHECK(o.good(), "writing '{}' failed", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  KVLAB_CHECK(!ec, "cannot move '{}' to '{}': {}", tmp, path, ec.message());
}

}  // namespace kvlab::experiment
