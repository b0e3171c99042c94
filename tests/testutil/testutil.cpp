#include "testutil/testutil.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <sys/wait.h>

#include "kvlab_version.h"

namespace kvlab::testutil {

std::string reference_path(const std::string& file) {
  const char* env = std::getenv("KVLAB_SHARED_DIR");
  std::string dir = env ? env : KVLAB_SHARED_DIR;
  return dir + "/reference/" + file;
}

std::string source_path(const std::string& rel) { return std::string(KVLAB_SOURCE_DIR) + "/" + rel; }

std::string kvlab_binary() {
  if (const char* env = std::getenv("KVLAB_BIN")) return env;
  // Tests run with WORKING_DIRECTORY = build dir.
  auto p = std::filesystem::current_path() / "src/cli/kvlab";
  return p.string();
}

std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  return tmpl;
}

int run_command(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  std::string out;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace kvlab::testutil
