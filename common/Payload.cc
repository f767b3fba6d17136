// The payload_json convention, shared by env-manager's ExecuteTask and the orchestrator.
#include "common/Payload.h"

#include <nlohmann/json.hpp>

#include "common/Text.h"

namespace dspy {

Result<Payload> expandPayload(const Payload& payload) {
  Payload out = payload;
  auto it = out.find("payload_json");
  if (it == out.end()) return out;
  if (nestedDeeperThan(it->second)) return Error{tooDeepMessage("payload_json"), ErrorKind::InvalidArgument};
  auto j = nlohmann::json::parse(it->second, nullptr, false);
  if (!j.is_object()) return Error{"payload_json must be a JSON object", ErrorKind::InvalidArgument};
  for (const auto& [k, v] : j.items()) out[k] = v.is_string() ? v.get<std::string>() : v.dump();
  out.erase("payload_json");
  return out;
}

Result<std::vector<std::string>> payloadStringList(const Payload& payload, const std::string& key) {
  std::vector<std::string> out;
  auto it = payload.find(key);
  if (it == payload.end()) return out;
  // Old Python clients turn a list into its repr text ("['a', 'b']"), which is not JSON:
  // the message says how to send structure instead.
  const std::string how = key + " must be a JSON list of strings, e.g. [\"a\", \"b\"]; got '" +
                          it->second.substr(0, 80) +
                          "' (from Python, send structure as payload_json=json.dumps({...}))";
  if (nestedDeeperThan(it->second)) return Error{how, ErrorKind::InvalidArgument};
  auto j = nlohmann::json::parse(it->second, nullptr, false);
  if (!j.is_array()) return Error{how, ErrorKind::InvalidArgument};
  for (const auto& a : j) {
    if (!a.is_string()) return Error{how, ErrorKind::InvalidArgument};
    out.push_back(a.get<std::string>());
  }
  return out;
}

}  // namespace dspy
