// Subcommand registry of the `kvlab` executable (git-style: `kvlab NAME ...`).
//
// Each cmd_*.cpp file defines its handlers and registers them with a static
// CommandRegistrar. A handler receives the arguments after the subcommand
// name and returns the process exit code; it reports bad input by throwing
// kvlab::Error / kvlab::UsageError (main() maps them to exit codes 1 / 2).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kvlab::cli {

using Handler = std::function<int(const std::vector<std::string>& args)>;

struct Command {
  std::string name;
  std::string summary;  // one line for `kvlab --help`
  Handler handler;
};

std::map<std::string, Command>& command_table();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string summary, Handler h);
};

}  // namespace kvlab::cli
