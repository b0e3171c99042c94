// Provenance collection (git, host name, Slurm variables); see provenance.h.
#include "experiment/provenance.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kvlab_version.h"

namespace kvlab::experiment {

namespace {

// Runs a command; returns its stdout when it exits 0.
std::optional<std::string> capture(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int st = pclose(p);
  if (st != 0) return std::nullopt;
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''"; else q += c;
  }
  return q + "'";
}

}  // namespace

store::Provenance current_provenance() {
  static std::once_flag once;
  static store::Provenance base;
  std::call_once(once, [] {
    base.kvlab_version = KVLAB_VERSION;
    base.git_commit = KVLAB_BUILD_GIT_COMMIT;
    base.git_dirty = -1;
    const std::string git = "git -C " + shell_quote(KVLAB_SOURCE_DIR);
    if (auto head = capture(git + " rev-parse HEAD 2>/dev/null")) {
      std::string h = *head;
      while (!h.empty() && (h.back() == '\n' || h.back() == '\r')) h.pop_back();
      if (h.size() == 40) {
        base.git_commit = h;
        if (auto st = capture(git + " status --porcelain --untracked-files=no 2>/dev/null"))
          base.git_dirty = st->empty() ? 0 : 1;
      }
    }
    std::array<char, 256> hn{};
    if (gethostname(hn.data(), hn.size() - 1) == 0) base.hostname = std::string(hn.data());
    nlohmann::json slurm = nlohmann::json::object();
    for (const char* k : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST",
                          "SLURMD_NODENAME", "SLURM_JOB_PARTITION", "SLURM_CLUSTER_NAME"}) {
      if (const char* v = std::getenv(k)) slurm[k] = v;
    }
    if (!slurm.empty()) base.slurm_json = slurm.dump();
  });
  return base;
}

}  // namespace kvlab::experiment
