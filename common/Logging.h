// Logging: spdlog to stderr as text or one JSON object a line (for journald/collectors).
#pragma once

#include <string>

#include "common/ServerConfig.h"

namespace dspy {

// Configures the default logger; safe to call again on reload.
void setupLogging(const LogConfig& cfg, const std::string& daemon_name);

}  // namespace dspy
