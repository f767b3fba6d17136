// A run while it is live, as the workflow engine keeps it (internal to workflows/).
// Guarded by WorkflowEngine::mu_.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "orchestrator/workflows/WorkflowEngine.h"

namespace dspy::orchestrator {

struct WorkflowEngine::Live {
  RunRecord rec;  // steps in the spec's node order
  std::shared_ptr<const WorkflowSpec> spec;
  std::map<std::string, std::size_t> index;                       // node -> step
  std::map<std::string, int> waiting;                             // node -> dependencies not succeeded
  std::map<std::string, std::vector<std::string>> dependents;     // node -> direct dependents
  bool halted = false;                                            // no more steps start
  bool cancel_requested = false;
  bool ended = false;                                             // settled; out of live_
  std::string failure;                                            // the first step failure
  std::vector<Event> events;                                      // for the run's next write
};


}  // namespace dspy::orchestrator
