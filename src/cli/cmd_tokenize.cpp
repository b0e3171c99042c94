// `kvlab tokenize`: token ids of texts under a tokenizer.json, so that the
// tokenizer can be checked from outside (against `tokenizers`, say).
//
//   kvlab tokenize --tokenizer tokenizer.json [--json] [--no-special] [--tokens] TEXT...
//
// One line of space-separated ids per TEXT, or with --json one JSON array
// of arrays (ids; with --tokens, arrays of token strings instead). TEXT
// "-" reads standard input as one text.
#include <filesystem>
#include <iostream>
#include <iterator>
#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "host/tokenizer.h"

namespace po = boost::program_options;

namespace {

int run_tokenize(const std::vector<std::string>& args) {
  std::string tokenizer_path, config_path;
  std::vector<std::string> texts;
  po::options_description opts("kvlab tokenize options");
  opts.add_options()("help,h", "show this help")(
      "tokenizer", po::value<std::string>(&tokenizer_path), "tokenizer.json of a Hugging Face model (required)")(
      "config", po::value<std::string>(&config_path),
      "tokenizer_config.json (default: beside tokenizer.json if present; only pad/side settings are used)")(
      "json", "print one JSON array of arrays instead of one line per text")(
      "no-special", "do not add the post-processor's special tokens (BOS/EOS)")(
      "tokens", "print token strings instead of ids");
  po::options_description hidden;
  hidden.add_options()("text", po::value<std::vector<std::string>>(&texts), "texts");
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("text", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab tokenize --tokenizer tokenizer.json [--json] [--no-special] [--tokens] TEXT...\n"
              << "Prints the token ids of each TEXT (\"-\" reads standard input).\n\n"
              << opts;
    return 0;
  }
  if (tokenizer_path.empty()) throw kvlab::UsageError("tokenize: --tokenizer PATH is required");
  if (texts.empty()) throw kvlab::UsageError("tokenize: give at least one TEXT (or - for standard input)");
  for (auto& t : texts) {
    if (t == "-") {
      t.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
  }
  if (config_path.empty()) {
    auto beside = std::filesystem::path(tokenizer_path).parent_path() / "tokenizer_config.json";
    std::error_code ec;
    if (std::filesystem::is_regular_file(beside, ec)) config_path = beside.string();
  }
  const auto tok = kvlab::host::Tokenizer::from_files(tokenizer_path, config_path);
  const bool special = !vm.count("no-special");
  const bool as_tokens = vm.count("tokens") > 0;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : texts) {
    auto ids = tok.encode(t, special);
    if (vm.count("json")) {
      out.push_back(as_tokens ? nlohmann::json(tok.id_to_tokens(ids)) : nlohmann::json(ids));
    } else if (as_tokens) {
      auto toks = tok.id_to_tokens(ids);
      std::string line;
      for (std::size_t i = 0; i < toks.size(); ++i) line += (i ? " " : "") + nlohmann::json(toks[i]).dump();
      fmt::print("{}\n", line);
    } else {
      fmt::print("{}\n", fmt::join(ids, " "));
    }
  }
  if (vm.count("json")) fmt::print("{}\n", out.dump());
  return 0;
}

kvlab::cli::CommandRegistrar reg{"tokenize", "token ids of texts under a Hugging Face tokenizer.json", run_tokenize};

}  // namespace
