#include "testutil/testutil.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>

#include <gtest/gtest.h>

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

std::vector<float> gauss(int64_t n, int64_t d, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(static_cast<std::size_t>(n * d));
  for (auto& x : v) x = g(rng) * scale;
  return v;
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

std::vector<std::string> md_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

std::vector<std::string> md_section(const std::string& md, const std::string& heading) {
  std::vector<std::string> out;
  bool in = false;
  for (const auto& l : md_lines(md)) {
    if (l.rfind("## ", 0) == 0) in = l.rfind("## " + heading, 0) == 0;
    if (in) out.push_back(l);
  }
  return out;
}

std::vector<std::string> md_cells(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool started = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cur += '|';
      ++i;
    } else if (line[i] == '|') {
      if (started) {
        const auto b = cur.find_first_not_of(' ');
        const auto e = cur.find_last_not_of(' ');
        out.push_back(b == std::string::npos ? "" : cur.substr(b, e - b + 1));
      }
      started = true;
      cur.clear();
    } else {
      cur += line[i];
    }
  }
  return out;
}

int count_occurrences(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

void expect_contains(const std::string& msg, const std::string& needle) {
  EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
}

}  // namespace kvlab::testutil
