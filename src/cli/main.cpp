// `kvlab` entry point: dispatches to the registered subcommands and maps
// errors to the documented exit codes (README.md, "Exit codes").
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <SQLiteCpp/Exception.h>
#include <boost/program_options/errors.hpp>
#include <fmt/format.h>

#include "cli/command.h"
#include "common/error.h"
#include "kvlab_version.h"

namespace kvlab::cli {

std::map<std::string, Command>& command_table() {
  static std::map<std::string, Command> table;
  return table;
}

CommandRegistrar::CommandRegistrar(std::string name, std::string summary, Handler h) {
  auto& t = command_table();
  t[name] = Command{name, std::move(summary), std::move(h)};
}

namespace {
void print_help() {
  fmt::print("kvlab {} — KV-cache codec study: codecs, V4 KV write path, sweeps, statistics, reports\n\n",
             KVLAB_VERSION);
  fmt::print("usage: kvlab <command> [options]   (kvlab <command> --help for its options)\n\ncommands:\n");
  for (const auto& [name, cmd] : command_table()) fmt::print("  {:<22} {}\n", name, cmd.summary);
  fmt::print("\nexit codes: 0 ok, 1 error, 2 usage, 3 no admissible Q, 4 database busy, 5 schema too new\n");
}
}  // namespace

}  // namespace kvlab::cli

int main(int argc, char** argv) {
  using namespace kvlab;
  // Tensors of a few to ~30 MB are allocated and freed once per passage.
  // glibc would map each from the kernel (mmap threshold) and give freed heap
  // tops back (trim threshold), so every passage paid page faults on fresh
  // zero pages again (~0.15 s of system time on the n = 8 sweep): keep them
  // in the heap. 32 MiB is the largest mmap threshold glibc accepts.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    cli::print_help();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    fmt::print("kvlab {} ({})\n", KVLAB_VERSION, KVLAB_BUILD_GIT_COMMIT);
    return 0;
  }
  auto& table = cli::command_table();
  // Two-word commands ("bench codecs", "report findings", "import csv") take
  // precedence over one-word ones.
  std::size_t words = 1;
  auto it = table.end();
  if (args.size() >= 2) it = table.find(args[0] + " " + args[1]);
  if (it != table.end()) {
    words = 2;
  } else {
    it = table.find(args[0]);
  }
  if (it == table.end()) {
    std::string known;
    for (const auto& [name, cmd] : table) known += (known.empty() ? "" : ", ") + name;
    fmt::print(stderr, "kvlab: unknown command '{}'; expected one of: {}\n", args[0], known);
    return 2;
  }
  std::vector<std::string> rest(args.begin() + static_cast<long>(words), args.end());
  const std::string cmd_name = it->first;
  try {
    const int rc = it->second.handler(rest);
    // Leave without running the static destructors of LibTorch and its ~290
    // shared libraries (~0.07 s): the handler has closed its databases and
    // files; flush what is buffered.
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    std::_Exit(rc);
  } catch (const boost::program_options::error& e) {
    fmt::print(stderr, "kvlab {}: usage error: {}\n", cmd_name, e.what());
    return 2;
  } catch (const Error& e) {
    fmt::print(stderr, "kvlab {}: error: {}\n", cmd_name, e.what());
    return static_cast<int>(e.code());
  } catch (const SQLite::Exception& e) {
    const int rc = e.getErrorCode();
    if (rc == 5 /*SQLITE_BUSY*/ || rc == 6 /*SQLITE_LOCKED*/) {
      fmt::print(stderr, "kvlab {}: database busy: {}\n", cmd_name, e.what());
      return 4;
    }
    fmt::print(stderr, "kvlab {}: database error: {}\n", cmd_name, e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kvlab {}: error: {}\n", cmd_name, e.what());
    return 1;
  }
}
