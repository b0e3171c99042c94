// The options every read command shares (--db, --experiment, --json,
// --help) and the one Boost.Program_options parse step of the CLI.
//
// Not here: the commands' own options (each cmd_*.cpp).
#pragma once

#include <string>
#include <vector>

#include <boost/program_options.hpp>

namespace kvlab::cli {

namespace po = boost::program_options;

// $KVLAB_DB when set and non-empty, else "results/kvlab.db".
std::string default_db();

struct CommonOptions {
  std::string db;
  std::string experiment;
  bool json = false;
};

// --db FILE (default default_db()).
void add_db(po::options_description& d, CommonOptions& c);
// --experiment/-e NAME|ID (default: the only experiment in the database).
void add_experiment(po::options_description& d, CommonOptions& c);
// --json: machine-readable JSON on stdout.
void add_json(po::options_description& d, CommonOptions& c);

// Adds --help, parses args (positional arguments per `pos`) into `vm` (or a
// local map) and notifies. On --help prints "usage: USAGE", the options
// and the exit codes to stdout and returns false. Bad options throw
// Boost.Program_options errors (main() maps them to exit code 2).
bool parse(const std::vector<std::string>& args, po::options_description& desc, const std::string& usage,
           const po::positional_options_description* pos = nullptr, po::variables_map* vm = nullptr);

}  // namespace kvlab::cli
