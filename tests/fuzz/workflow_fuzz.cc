// libFuzzer target: a workflow spec (JSON or YAML, as POST /workflows and CreateWorkflow
// take it) is read or refused with a message; never a crash, hang or leak. A spec that
// reads must read again from its own stored document.
// Build and run: scripts/fuzz.sh workflow [seconds]   (seeds: tests/fuzz/workflow/).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "orchestrator/workflows/WorkflowSpec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dspy::orchestrator;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = parseWorkflowSpec(text);
  if (spec.ok()) {
    auto again = workflowSpecFromJson(spec.value().document);
    if (!again.ok()) __builtin_trap();  // what was accepted must be accepted as stored
  } else if (spec.error().empty()) {
    __builtin_trap();  // a refusal always says why
  }
  return 0;
}
