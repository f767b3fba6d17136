// The payload_json convention, shared by env-manager's ExecuteTask and the orchestrator.
#include "common/Payload.h"

#include <nlohmann/json.hpp>

#include "common/Text.h"

namespace dspy {

namespace {

// Appends s as a JSON string; false (out partly written) when s has a byte >= 0x80.
bool appendAsciiJsonString(std::string& out, const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) return false;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s, run, s.size() - run);
  out.push_back('"');
  return true;
}

}  // namespace

std::string payloadToJson(const Payload& payload) {
  std::size_t size = 2;
  for (const auto& [k, v] : payload) size += k.size() + v.size() + 6;
  std::string out;
  out.reserve(size);
  out.push_back('{');
  for (const auto& [k, v] : payload) {
    if (out.size() > 1) out.push_back(',');
    if (!appendAsciiJsonString(out, k)) return nlohmann::json(payload).dump();
    out.push_back(':');
    if (!appendAsciiJsonString(out, v)) return nlohmann::json(payload).dump();
  }
  out.push_back('}');
  return out;
}

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
