// WorkflowSpec: a workflow as its author wrote it (the contract's workflow JSON, or the
// same document in YAML), checked. Validation names the node or edge and the problem,
// and rejects a spec as a whole: a bad spec changes nothing.
//
// Nodes have one of the contract's six types (signature, verifier, reward, training,
// deployment, custom) or one of ours: `task` (config `task`: class*, payload) runs a
// task of any class, `services` (config `services`: services*[]) waits until
// env-manager reports the named services up. `reward` and `deployment` may carry a
// `task` {class*, payload} that runs after their event. Besides its type's config, a node may say
// `retry` {max_attempts, initial_interval_ms, multiplier, max_interval_ms} and
// `timeout_seconds`; the workflow may give `defaults` of both and its
// `failure_policy`: `stop` (the default: a failed step cancels the run's running steps)
// or `continue` (independent branches finish).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/Result.h"
#include "orchestrator/tasks/Task.h"

namespace dspy::orchestrator {

struct SpecLimits {
  int max_nodes = 1000;
  std::int64_t max_bytes = 1 << 20;
};

enum class FailurePolicy { Stop, Continue };

struct NodeSpec {
  std::string id;
  std::string name;
  std::string type;         // signature, verifier, reward, training, deployment, custom, task, services
  nlohmann::json config;    // the object under the key named like the type
  std::optional<RetryPolicy> retry;
  std::optional<std::chrono::seconds> timeout;
};

struct EdgeSpec {
  std::string id;
  std::string source;
  std::string target;
  std::string kind = "data";  // data, control, reward
};

struct WorkflowSpec {
  std::string id;
  std::string name;
  std::string description;
  std::string tenant;
  std::vector<std::string> tags;
  std::vector<NodeSpec> nodes;
  std::vector<EdgeSpec> edges;
  FailurePolicy failure_policy = FailurePolicy::Stop;
  RetryPolicy default_retry{.max_attempts = 1};
  std::chrono::seconds default_timeout{600};
  nlohmann::json document;  // the whole document as given (JSON), for storing and showing

  const NodeSpec* node(const std::string& id) const;
  // Direct upstream nodes of `id` (sources of edges into it), in edge order.
  std::vector<std::string> dependencies(const std::string& id) const;
};

// The node types a spec may use.
const std::vector<std::string>& nodeTypes();

// Parses `text` (JSON; YAML when it is not JSON) and validates it. InvalidArgument
// errors say where: "node 'train': training.skill is required", "edge 'e3': unknown
// target 'nope'", "cycle: a -> b -> c -> a", ...
Result<WorkflowSpec> parseWorkflowSpec(std::string_view text, const SpecLimits& limits = {});
// The same for a document already parsed.
Result<WorkflowSpec> workflowSpecFromJson(const nlohmann::json& doc, const SpecLimits& limits = {});

}  // namespace dspy::orchestrator
