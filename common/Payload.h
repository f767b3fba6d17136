// Payload: the task payload convention of the wire contract. Values are strings; a
// client may put a JSON object (as text) under "payload_json", whose members are
// merged into the payload (non-string values as their JSON text).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/Result.h"

namespace dspy {

using Payload = std::map<std::string, std::string>;

// The payload as a JSON object text: exactly what nlohmann::json(payload).dump() gives
// (keys in map order, compact, the same escapes), without building the JSON value
// first. Text that is not plain ASCII takes nlohmann's path (its UTF-8 checks and
// errors included). The store writes every task's payload and event data this way.
std::string payloadToJson(const Payload& payload);

// Merges "payload_json" into the payload; bad JSON or a non-object is InvalidArgument.
Result<Payload> expandPayload(const Payload& payload);
// A payload value that must be a JSON list of strings ("args"); empty when absent.
Result<std::vector<std::string>> payloadStringList(const Payload& payload, const std::string& key);

}  // namespace dspy
