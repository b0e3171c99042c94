// Helpers shared by the test executables: locating shared/reference files
// and the kvlab binary, temporary directories.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace kvlab::testutil {

// The message of the kvlab::Error that f() throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const kvlab::Error& e) {
    return e.what();
  }
  return "(no error)";
}
// A gtest expectation that msg contains needle (both named on failure).
void expect_contains(const std::string& msg, const std::string& needle);

// Path of a file in ../shared/reference/ (KVLAB_SHARED_DIR at configure time,
// overridable with the KVLAB_SHARED_DIR environment variable).
std::string reference_path(const std::string& file);
// Root of the source tree (for experiments/, schema/, tests/golden/).
std::string source_path(const std::string& rel);
// Path of the built `kvlab` executable (KVLAB_BIN env or build/src/cli/kvlab).
std::string kvlab_binary();
// A fresh empty directory under $TMPDIR, unique per call.
std::string make_temp_dir(const std::string& prefix);

// n x d float32 N(0, scale^2) values from std::mt19937(seed) (row-major),
// the codec tests' common input.
std::vector<float> gauss(int64_t n, int64_t d, unsigned seed, float scale = 1.f);
// Runs a shell command, returns its exit status; stdout+stderr into *output if given.
int run_command(const std::string& cmd, std::string* output = nullptr);

// Reading generated markdown in report tests.
// The lines of `s`.
std::vector<std::string> md_lines(const std::string& s);
// The lines of the "## " section whose heading starts with `heading`.
std::vector<std::string> md_section(const std::string& md, const std::string& heading);
// Trimmed cells of a table row ("| a | b |" -> {"a", "b"}); "\|" is a literal '|'.
std::vector<std::string> md_cells(const std::string& line);
// Non-overlapping-start occurrences of `needle` in `hay`.
int count_occurrences(const std::string& hay, const std::string& needle);

}  // namespace kvlab::testutil
