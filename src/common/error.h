// kvlab error types shared by every library.
//
// Two kinds of failure (DESIGN.md habit 3):
//  - bad input from a user, file or database: throw kvlab::Error (or a
//    subclass) with a message naming the value and what was expected;
//  - broken internal invariants: KVLAB_ASSERT (aborts with file:line).
// Never validate user input with assert.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace kvlab {

// Process exit codes of the `kvlab` CLI (documented in README.md).
enum class ExitCode : int {
  kOk = 0,
  kError = 1,
  kUsage = 2,
  kNoAdmissibleQ = 3,
  kDatabaseBusy = 4,
  kSchemaTooNew = 5,
};

// Raw input (file headers, JSON keys, INI values, tokenizer text) echoed in a
// message: returns s with every byte that is not printable text written as
// \xNN. Kept: printable ASCII and well-formed UTF-8 sequences of code points
// >= U+00A0 (no surrogates, no overlongs, <= U+10FFFF); escaped: C0/C1
// controls, DEL, stray or truncated UTF-8 bytes. With keep_newlines, '\n' and
// '\t' stay as they are (multi-line messages). The result is valid UTF-8.
std::string escape_nonprintable(std::string_view s, bool keep_newlines = false);

// Every message is passed through escape_nonprintable(msg, keep_newlines=true),
// so no error can carry invalid UTF-8 or control bytes to a terminal or a
// JSON consumer, whatever the call site echoed.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, ExitCode code = ExitCode::kError)
      : std::runtime_error(escape_nonprintable(msg, /*keep_newlines=*/true)), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// Command-line misuse (exit code 2).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& msg) : Error(msg, ExitCode::kUsage) {}
};

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace kvlab

// Throws kvlab::Error with a formatted message when cond is false.
#define KVLAB_CHECK(cond, ...)                                    \
  do {                                                            \
    if (!(cond)) throw ::kvlab::Error(::fmt::format(__VA_ARGS__)); \
  } while (0)

// Internal invariant; always on (also in Release).
#define KVLAB_ASSERT(cond, ...)                                               \
  do {                                                                        \
    if (!(cond)) ::kvlab::assert_fail(#cond, __FILE__, __LINE__, ::fmt::format("" __VA_ARGS__)); \
  } while (0)
