// make_executor: the executor dispatch by name (kept apart from the stub so
// that a stub-only worker links without the torch executor).
#include <fmt/format.h>

#include "common/error.h"
#include "experiment/executor.h"

namespace kvlab::experiment {

std::unique_ptr<Executor> make_executor(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const std::string opts = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (name == "stub") return make_stub_executor(opts);
  if (name == "torch") return make_torch_executor(opts);
  throw Error(fmt::format("unknown executor '{}'; expected torch or stub[:options]", spec));
}

}  // namespace kvlab::experiment
