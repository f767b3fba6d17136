// The default config files (deploy/config/), built into the CLI for `config init`.
#pragma once

#include <string>
#include <vector>

namespace dspy::cli {

struct DefaultConfig {
  std::string name;  // the file name to write
  bool local;        // the local-images twin (the demo's stack) rather than the default
  std::string text;
};

const std::vector<DefaultConfig>& defaultConfigs();

}  // namespace dspy::cli
