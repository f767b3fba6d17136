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

// Merges "payload_json" into the payload; bad JSON or a non-object is InvalidArgument.
Result<Payload> expandPayload(const Payload& payload);
// A payload value that must be a JSON list of strings ("args"); empty when absent.
Result<std::vector<std::string>> payloadStringList(const Payload& payload, const std::string& key);

}  // namespace dspy
