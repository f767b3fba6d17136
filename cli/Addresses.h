// Where the CLI finds the daemons. Each address comes from, first to last: a command
// flag; the environment (ENV_MANAGER_ADDR, ORCHESTRATOR_ADDR for gRPC; the daemons' own
// ENV_MANAGER_METRICS_ADDR, ORCHESTRATOR_HTTP_ADDR for HTTP); the daemons' config files
// ($ENV_MANAGER_CONFIG / $ORCHESTRATOR_CONFIG, else /etc/dspy-agent/*.yaml when present),
// so a CLI on the daemons' machine follows their configured ports; the defaults.
#pragma once

#include <string>

namespace dspy::cli {

struct Addresses {
  std::string em_grpc, em_http, orch_grpc, orch_http;
  std::string em_config, orch_config;  // the files read ("" = none)
};

// Resolved once per process (flags then override single fields).
const Addresses& defaultAddresses();

}  // namespace dspy::cli
