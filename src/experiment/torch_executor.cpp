// The real executor (V4 KV write path + host hidden states + codecs +
// metrics). Placeholder until src/host/host.h lands: refuses with a clear
// error so that nothing silently measures garbage.
#include <fmt/format.h>

#include "common/error.h"
#include "experiment/executor.h"

namespace kvlab::experiment {

std::unique_ptr<Executor> make_torch_executor(const std::string& options) {
  throw Error(fmt::format("the torch executor is not available in this build yet (options '{}'); use --executor stub "
                          "for store tests",
                          options));
}

}  // namespace kvlab::experiment
