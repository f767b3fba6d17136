// Reading the Engine's JSON answers (inspect, container list, stats, pull progress,
// events, exec) into our structs. None of these throws: a field of an unexpected type
// or out of range reads as its default, so a malformed answer can never take the
// daemon down (they run inside libcurl callbacks, where an exception would terminate).
// Kept apart from the HTTP client so the fuzzer can drive them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/Result.h"
#include "env_manager/docker/DockerApi.h"

namespace dspy::envmanager::docker {

ContainerInfo parseInspect(const std::string& body);
ImageInfo parseImageInspect(const std::string& body);
Result<std::vector<ContainerSummary>> parseContainerList(const std::string& body);
Stats parseStats(const std::string& body);
// One line of a pull's progress stream: progress, or the stream's error message in
// `error`; nullopt when the line is not a JSON object.
struct PullLine {
  PullProgress progress;
  std::optional<std::string> error;
};
std::optional<PullLine> parsePullLine(std::string_view line);
std::optional<Event> parseEventLine(std::string_view line);
// POST /containers/{id}/wait: the exit code, or -1.
int parseWaitStatus(const std::string& body);
// GET /containers/{id}/json: whether the container has a TTY (false when unreadable).
bool parseTty(const std::string& body);
// The "Id" of a create answer (POST /containers/create, /containers/{id}/exec), or "".
std::string parseId(const std::string& body);
// GET /exec/{id}/json: the exec's exit code or -1.
int parseExecExitCode(const std::string& body);
// GET /networks: (created, id) of the networks named exactly `name`.
std::vector<std::pair<std::string, std::string>> parseNetworksNamed(const std::string& body, const std::string& name);

}  // namespace dspy::envmanager::docker
