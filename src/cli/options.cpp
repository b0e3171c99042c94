// The shared CLI options; see options.h.
#include "cli/options.h"

#include <cstdlib>
#include <iostream>

namespace kvlab::cli {

std::string default_db() {
  const char* env = std::getenv("KVLAB_DB");
  return env && *env ? env : "results/kvlab.db";
}

void add_db(po::options_description& d, CommonOptions& c) {
  d.add_options()("db", po::value(&c.db)->default_value(default_db()),
                  "database file (default $KVLAB_DB or results/kvlab.db)");
}

void add_experiment(po::options_description& d, CommonOptions& c) {
  d.add_options()("experiment,e", po::value(&c.experiment),
                  "experiment name or id (default: the only experiment in the database)");
}

void add_json(po::options_description& d, CommonOptions& c) {
  d.add_options()("json", po::bool_switch(&c.json), "machine-readable JSON on stdout");
}

bool parse(const std::vector<std::string>& args, po::options_description& desc, const std::string& usage,
           const po::positional_options_description* pos, po::variables_map* vm) {
  desc.add_options()("help,h", "show this help");
  po::variables_map local;
  po::variables_map& m = vm ? *vm : local;
  auto parser = po::command_line_parser(args).options(desc);
  if (pos) parser.positional(*pos);
  po::store(parser.run(), m);
  if (m.count("help")) {
    std::cout << (usage.rfind("usage:", 0) == 0 ? "" : "usage: ") << usage << "\n\n" << desc << "\n"
              << "exit codes: 0 ok, 1 error, 2 usage, 3 no admissible Q, 4 database busy, 5 schema too new\n";
    return false;
  }
  po::notify(m);
  return true;
}

}  // namespace kvlab::cli
