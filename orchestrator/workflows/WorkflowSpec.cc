#include "orchestrator/workflows/WorkflowSpec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <set>

#include "common/Text.h"

namespace dspy::orchestrator {
namespace {

using json = nlohmann::json;

Error bad(const std::string& where, const std::string& what) {
  return Error{where.empty() ? what : where + ": " + what, ErrorKind::InvalidArgument};
}

// A plain YAML scalar means what YAML 1.2's core schema says; a quoted one is text.
json scalarToJson(const YAML::Node& n) {
  const std::string& v = n.Scalar();
  if (n.Tag() == "!") return v;
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  if (v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL") return nullptr;
  if (auto i = parseInt(v)) return *i;
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end != v.c_str() && *end == '\0' && v.find_first_of("0123456789") != std::string::npos) return d;
  return v;
}

Result<json> yamlToJson(const YAML::Node& n, int depth = 0) {
  if (depth > 64) return bad("", "the document nests deeper than 64 levels");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      return scalarToJson(n);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : n) {
        auto v = yamlToJson(item, depth + 1);
        if (!v) return v;
        out.push_back(std::move(v).value());
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return bad("", "map keys must be plain text");
        auto v = yamlToJson(kv.second, depth + 1);
        if (!v) return v;
        out[kv.first.Scalar()] = std::move(v).value();
      }
      return out;
    }
  }
  return json(nullptr);
}

// Required keys of each type's config ("*" in the contract).
const std::map<std::string, std::vector<std::string>>& requiredKeys() {
  static const std::map<std::string, std::vector<std::string>> keys{
      {"signature", {"prompt"}},
      {"verifier", {"command"}},
      {"reward", {"metric"}},
      {"training", {"method", "skill"}},
      {"deployment", {"tenant", "domain", "channel"}},
      {"custom", {}},
      {"task", {"class"}},
      {"services", {"services"}},
  };
  return keys;
}

bool nonEmptyString(const json& j) { return j.is_string() && !j.get<std::string>().empty(); }

Result<std::string> optionalString(const json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return std::string();
  if (!obj[key].is_string()) return bad(where, std::string(key) + " must be text");
  return obj[key].get<std::string>();
}

Result<RetryPolicy> parseRetry(const json& j, const std::string& where) {
  if (!j.is_object()) return bad(where, "retry must be an object");
  RetryPolicy p{.max_attempts = 1};
  for (const auto& [k, v] : j.items()) {
    if (k == "max_attempts") {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 100) {
        return bad(where, "retry.max_attempts must be a whole number from 1 to 100");
      }
      p.max_attempts = v.get<int>();
    } else if (k == "initial_interval_ms" || k == "max_interval_ms") {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 86'400'000) {
        return bad(where, "retry." + k + " must be a whole number of milliseconds from 0 to 86400000");
      }
      (k == "initial_interval_ms" ? p.initial_interval : p.max_interval) = std::chrono::milliseconds(v.get<std::int64_t>());
    } else if (k == "multiplier") {
      if (!v.is_number() || v.get<double>() < 1 || v.get<double>() > 100) {
        return bad(where, "retry.multiplier must be a number from 1 to 100");
      }
      p.multiplier = v.get<double>();
    } else {
      return bad(where, "unknown key retry." + k + " (max_attempts, initial_interval_ms, multiplier, max_interval_ms)");
    }
  }
  return p;
}

Result<std::chrono::seconds> parseTimeout(const json& j, const std::string& where) {
  if (!j.is_number_integer() || j.get<std::int64_t>() < 1 || j.get<std::int64_t>() > 7 * 86'400) {
    return bad(where, "timeout_seconds must be a whole number of seconds from 1 to 604800");
  }
  return std::chrono::seconds(j.get<std::int64_t>());
}

Status checkTypeConfig(const NodeSpec& n, const std::string& where) {
  const json& c = n.config;
  for (const auto& key : requiredKeys().at(n.type)) {
    if (!c.contains(key) || c[key].is_null() || (c[key].is_string() && c[key].get<std::string>().empty())) {
      return bad(where, n.type + "." + key + " is required");
    }
  }
  if (n.type == "custom" && c.empty()) return bad(where, "custom must be a non-empty object");
  if (n.type == "verifier" && c.contains("weight") && (!c["weight"].is_number() || c["weight"].get<double>() < 0)) {
    return bad(where, "verifier.weight must be a number >= 0");
  }
  if (n.type == "task") {
    if (!nonEmptyString(c["class"])) return bad(where, "task.class must be text");
    if (c.contains("payload") && !c["payload"].is_object()) return bad(where, "task.payload must be an object");
  }
  if ((n.type == "reward" || n.type == "deployment") && c.contains("task")) {
    const json& t = c["task"];
    if (!t.is_object() || !nonEmptyString(t.value("class", json()))) {
      return bad(where, n.type + ".task must be an object with a class");
    }
    if (t.contains("payload") && !t["payload"].is_object()) return bad(where, n.type + ".task.payload must be an object");
  }
  if (n.type == "services") {
    const json& s = c["services"];
    if (!s.is_array() || s.empty() || !std::all_of(s.begin(), s.end(), nonEmptyString)) {
      return bad(where, "services.services must be a non-empty list of service names");
    }
  }
  return Status::Ok();
}

// The first cycle found, as "a -> b -> c -> a"; empty when the graph has none.
std::string findCycle(const WorkflowSpec& spec) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& e : spec.edges) out[e.source].push_back(e.target);
  std::map<std::string, int> color;  // 0 new, 1 on the path, 2 done
  std::vector<std::string> path;
  std::string cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& n) {
    color[n] = 1;
    path.push_back(n);
    for (const auto& next : out[n]) {
      if (color[next] == 1) {
        auto from = std::find(path.begin(), path.end(), next);
        for (auto it = from; it != path.end(); ++it) cycle += *it + " -> ";
        cycle += next;
        return true;
      }
      if (color[next] == 0 && visit(next)) return true;
    }
    path.pop_back();
    color[n] = 2;
    return false;
  };
  for (const auto& n : spec.nodes) {
    if (color[n.id] == 0 && visit(n.id)) return cycle;
  }
  return "";
}

}  // namespace

const std::vector<std::string>& nodeTypes() {
  static const std::vector<std::string> types{"signature", "verifier", "reward",   "training",
                                              "deployment", "custom",  "task",     "services"};
  return types;
}

const NodeSpec* WorkflowSpec::node(const std::string& node_id) const {
  for (const auto& n : nodes) {
    if (n.id == node_id) return &n;
  }
  return nullptr;
}

std::vector<std::string> WorkflowSpec::dependencies(const std::string& node_id) const {
  std::vector<std::string> out;
  for (const auto& e : edges) {
    if (e.target == node_id && std::find(out.begin(), out.end(), e.source) == out.end()) out.push_back(e.source);
  }
  return out;
}

Result<WorkflowSpec> parseWorkflowSpec(std::string_view text, const SpecLimits& limits) {
  if (static_cast<std::int64_t>(text.size()) > limits.max_bytes) {
    return bad("", "the spec is " + std::to_string(text.size()) + " bytes, over the limit of " +
                       std::to_string(limits.max_bytes) + " (workflows.max_spec_bytes)");
  }
  if (nestedDeeperThan(text)) return bad("", tooDeepMessage("the spec"));
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    try {
      auto y = yamlToJson(YAML::Load(std::string(text)));
      if (!y) return y.fullError();
      doc = std::move(y).value();
    } catch (const YAML::Exception& e) {
      return bad("", std::string("the spec is neither JSON nor YAML: ") + e.what());
    }
  }
  return workflowSpecFromJson(doc, limits);
}

Result<WorkflowSpec> workflowSpecFromJson(const json& doc, const SpecLimits& limits) {
  if (!doc.is_object()) return bad("", "the spec must be an object with nodes and edges");
  WorkflowSpec spec;
  spec.document = doc;
  auto text = [&](const char* key, std::string* out) -> Status {
    auto v = optionalString(doc, key, "");
    if (!v) return v.fullError();
    *out = std::move(v).value();
    return Status::Ok();
  };
  for (auto [key, out] : std::initializer_list<std::pair<const char*, std::string*>>{
           {"id", &spec.id}, {"name", &spec.name}, {"description", &spec.description}, {"tenant", &spec.tenant}}) {
    if (Status s = text(key, out); !s.ok()) return s.fullError();
  }
  if (!spec.id.empty()) {
    if (Status s = validateTaskId(spec.id); !s.ok()) return bad("", "bad workflow id '" + spec.id + "': " + s.error());
  }
  if (spec.name.empty()) return bad("", "name is required");
  if (doc.contains("tags") && !doc["tags"].is_null()) {
    if (!doc["tags"].is_array() || !std::all_of(doc["tags"].begin(), doc["tags"].end(), nonEmptyString)) {
      return bad("", "tags must be a list of text");
    }
    for (const auto& t : doc["tags"]) spec.tags.push_back(t.get<std::string>());
  }
  if (doc.contains("failure_policy")) {
    const json& p = doc["failure_policy"];
    if (p == "stop") spec.failure_policy = FailurePolicy::Stop;
    else if (p == "continue") spec.failure_policy = FailurePolicy::Continue;
    else return bad("", "failure_policy must be stop or continue");
  }
  if (doc.contains("defaults")) {
    const json& d = doc["defaults"];
    if (!d.is_object()) return bad("", "defaults must be an object");
    for (const auto& [k, v] : d.items()) {
      if (k == "retry") {
        auto r = parseRetry(v, "defaults");
        if (!r) return r.fullError();
        spec.default_retry = r.value();
      } else if (k == "timeout_seconds") {
        auto t = parseTimeout(v, "defaults");
        if (!t) return t.fullError();
        spec.default_timeout = t.value();
      } else {
        return bad("", "unknown key defaults." + k + " (retry, timeout_seconds)");
      }
    }
  }

  if (!doc.contains("nodes") || !doc["nodes"].is_array() || doc["nodes"].empty()) {
    return bad("", "nodes must be a non-empty list");
  }
  if (static_cast<int>(doc["nodes"].size()) > limits.max_nodes) {
    return bad("", std::to_string(doc["nodes"].size()) + " nodes, over the limit of " +
                       std::to_string(limits.max_nodes) + " (workflows.max_nodes)");
  }
  std::set<std::string> ids;
  for (std::size_t i = 0; i < doc["nodes"].size(); ++i) {
    const json& j = doc["nodes"][i];
    std::string where = "node " + std::to_string(i + 1);
    if (!j.is_object()) return bad(where, "must be an object");
    if (!nonEmptyString(j.value("id", json()))) return bad(where, "id is required");
    NodeSpec n;
    n.id = j["id"].get<std::string>();
    where = "node '" + n.id + "'";
    if (Status s = validateTaskId(n.id); !s.ok()) return bad(where, "bad id: " + s.error());
    if (!ids.insert(n.id).second) return bad(where, "duplicate node id");
    if (!nonEmptyString(j.value("type", json()))) return bad(where, "type is required");
    n.type = j["type"].get<std::string>();
    const auto& types = nodeTypes();
    if (std::find(types.begin(), types.end(), n.type) == types.end()) {
      std::string known;
      for (const auto& t : types) known += (known.empty() ? "" : ", ") + t;
      return bad(where, "unknown type '" + n.type + "' (" + known + ")");
    }
    auto name = optionalString(j, "name", where);
    if (!name) return name.fullError();
    n.name = name.value().empty() ? n.id : name.value();
    if (!j.contains(n.type) || !j[n.type].is_object()) return bad(where, "needs a '" + n.type + "' object");
    n.config = j[n.type];
    if (Status s = checkTypeConfig(n, where); !s.ok()) return s.fullError();
    if (j.contains("retry")) {
      auto r = parseRetry(j["retry"], where);
      if (!r) return r.fullError();
      n.retry = r.value();
    }
    if (j.contains("timeout_seconds")) {
      auto t = parseTimeout(j["timeout_seconds"], where);
      if (!t) return t.fullError();
      n.timeout = t.value();
    }
    spec.nodes.push_back(std::move(n));
  }

  if (doc.contains("edges") && !doc["edges"].is_null()) {
    if (!doc["edges"].is_array()) return bad("", "edges must be a list");
    std::set<std::string> edge_ids;
    std::set<std::pair<std::string, std::string>> pairs;
    for (std::size_t i = 0; i < doc["edges"].size(); ++i) {
      const json& j = doc["edges"][i];
      std::string where = "edge " + std::to_string(i + 1);
      if (!j.is_object()) return bad(where, "must be an object");
      EdgeSpec e;
      auto id = optionalString(j, "id", where);
      if (!id) return id.fullError();
      e.id = id.value().empty() ? "e" + std::to_string(i + 1) : id.value();
      where = "edge '" + e.id + "'";
      if (!edge_ids.insert(e.id).second) return bad(where, "duplicate edge id");
      for (auto [key, out] : std::initializer_list<std::pair<const char*, std::string*>>{{"source", &e.source},
                                                                                         {"target", &e.target}}) {
        if (!nonEmptyString(j.value(key, json()))) return bad(where, std::string(key) + " is required");
        *out = j[key].get<std::string>();
        if (!ids.count(*out)) return bad(where, "unknown " + std::string(key) + " '" + *out + "'");
      }
      if (e.source == e.target) return bad(where, "connects node '" + e.source + "' to itself");
      if (j.contains("kind")) {
        if (!j["kind"].is_string()) return bad(where, "kind must be data, control or reward");
        e.kind = j["kind"].get<std::string>();
        if (e.kind != "data" && e.kind != "control" && e.kind != "reward") {
          return bad(where, "unknown kind '" + e.kind + "' (data, control, reward)");
        }
      }
      if (!pairs.insert({e.source, e.target}).second) {
        return bad(where, "duplicates the edge " + e.source + " -> " + e.target);
      }
      spec.edges.push_back(std::move(e));
    }
  }
  if (const std::string cycle = findCycle(spec); !cycle.empty()) return bad("", "cycle: " + cycle);
  return spec;
}

}  // namespace dspy::orchestrator
