// Declarative YAML config loading with precise errors.
#include "common/ConfigSchema.h"

#include "common/Text.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace dspy::config {
namespace {

// A JSON string literal of `t`.
std::string jsonString(const std::string& t) {
  std::string out = "\"";
  for (const unsigned char c : t) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string kindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "no value";
    case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
    default: return "nothing";
  }
}

std::optional<std::string> parseInt(const std::string& text, std::int64_t min, std::int64_t max,
                                    std::int64_t* out) {
  auto parsed = dspy::parseInt(text);
  if (!parsed) return "expected an integer, got '" + text + "'";
  const std::int64_t v = *parsed;
  if (v < min || v > max) {
    return "value " + text + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  }
  *out = v;
  return std::nullopt;
}

std::optional<std::string> parseBool(const std::string& text, bool* out) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "true" || t == "yes" || t == "on" || t == "1") { *out = true; return std::nullopt; }
  if (t == "false" || t == "no" || t == "off" || t == "0") { *out = false; return std::nullopt; }
  return "expected true or false, got '" + text + "'";
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Every scalar field reads YAML by way of its text form, so the file and the
// environment accept exactly the same spellings.
std::function<std::optional<std::string>(const YAML::Node&)> viaText(
    std::string type, std::function<std::optional<std::string>(const std::string&)> parse) {
  return [type = std::move(type), parse = std::move(parse)](const YAML::Node& n) -> std::optional<std::string> {
    if (!n.IsScalar()) return "expected " + type + ", got " + kindOf(n);
    return parse(n.Scalar());
  };
}

}  // namespace

EnvLookup processEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

EnvLookup mapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string locate(const std::string& file, const YAML::Node& node, const std::string& message) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0) return file + ": " + message;
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " + message;
}

Result<Endpoint> parseEndpoint(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error{"expected [ipv6]:port, got '" + text + "'"};
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return Error{"expected host:port, got '" + text + "'"};
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) return Error{"missing host in '" + text + "'"};
  std::int64_t p = 0;
  if (auto err = parseInt(port, 0, 65535, &p)) return Error{"bad port in '" + text + "': " + *err};
  return Endpoint{host, static_cast<int>(p)};
}

void Schema::add(std::string path, Field field) { fields_[std::move(path)] = std::move(field); }


void Schema::string(std::string path, std::string* out, std::string env) {
  Field f;
  f.type = "a string";
  f.from_text = [out](const std::string& t) -> std::optional<std::string> {
    *out = t;
    return std::nullopt;
  };
  f.from_yaml = viaText("a string", f.from_text);
  f.show = [out] { return jsonString(*out); };
  f.env = std::move(env);
  add(std::move(path), std::move(f));
}

void Schema::choice(std::string path, std::string* out, std::vector<std::string> allowed, std::string env) {
  Field f;
  f.type = "one of a set";
  f.from_text = [out, allowed](const std::string& t) -> std::optional<std::string> {
    if (std::find(allowed.begin(), allowed.end(), t) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return "expected one of " + list + ", got '" + t + "'";
    }
    *out = t;
    return std::nullopt;
  };
  f.from_yaml = viaText("a string", f.from_text);
  f.show = [out] { return jsonString(*out); };
  f.env = std::move(env);
  add(std::move(path), std::move(f));
}

void Schema::integer(std::string path, std::int64_t* out, std::int64_t min, std::int64_t max, std::string env) {
  Field f;
  f.type = "an integer";
  f.from_text = [out, min, max](const std::string& t) { return parseInt(trim(t), min, max, out); };
  f.from_yaml = viaText("an integer", f.from_text);
  f.show = [out] { return std::to_string(*out); };
  f.env = std::move(env);
  add(std::move(path), std::move(f));
}

void Schema::integer(std::string path, int* out, int min, int max, std::string env) {
  Field f;
  f.type = "an integer";
  f.from_text = [out, min, max](const std::string& t) -> std::optional<std::string> {
    std::int64_t v = 0;
    if (auto err = parseInt(trim(t), min, max, &v)) return err;
    *out = static_cast<int>(v);
    return std::nullopt;
  };
  f.from_yaml = viaText("an integer", f.from_text);
  f.show = [out] { return std::to_string(*out); };
  f.env = std::move(env);
  add(std::move(path), std::move(f));
}

void Schema::number(std::string path, double* out, double min, double max, std::string env) {
  Field f;
  f.type = "a number";
  f.from_text = [out, min, max](const std::string& raw) -> std::optional<std::string> {
    const std::string t = trim(raw);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size() || errno != 0 || v != v) {
      return "expected a number, got '" + raw + "'";
    }
    if (v < min || v > max) {
      std::ostringstream os;
      os << "value " << t << " is out of range [" << min << ", " << max << "]";
      return os.str();
    }
    *out = v;
    return std::nullopt;
  };
  f.from_yaml = viaText("a number", f.from_text);
  f.show = [out] {
    std::ostringstream os;
    os.precision(17);
    os << *out;
    return os.str();
  };
  f.env = std::move(env);
  add(std::move(path), std::move(f));
}

void Schema::boolean(std::string path, bool* out, std::string env) {
  Field f;
  f.type = "a boolean";
  f.from_text = [out](const std::string& t) { return parseBool(trim(t), out); };
  f.from_yaml = viaText("a boolean", f.from_text);
  f.show = [out] { return std::string(*out ? "true" : "false"); };
  f.env = std::move(env);
  add(std::move(path), std::move(f));
}

void Schema::address(std::string path, std::string* out, std::string env) {
  Field f;
  f.type = "an address";
  f.from_text = [out](const std::string& raw) -> std::optional<std::string> {
    const std::string t = trim(raw);
    auto ep = parseEndpoint(t);
    if (!ep) return ep.error();
    *out = t;
    return std::nullopt;
  };
  f.from_yaml = viaText("host:port", f.from_text);
  f.show = [out] { return jsonString(*out); };
  f.env = std::move(env);
  add(std::move(path), std::move(f));
}

void Schema::stringList(std::string path, std::vector<std::string>* out, std::string env) {
  Field f;
  f.type = "a list of strings";
  f.from_text = [out](const std::string& t) -> std::optional<std::string> {
    std::vector<std::string> items;
    std::stringstream ss(t);
    std::string item;
    while (std::getline(ss, item, ',')) {
      item = trim(item);
      if (!item.empty()) items.push_back(item);
    }
    *out = std::move(items);
    return std::nullopt;
  };
  f.from_yaml = [out](const YAML::Node& n) -> std::optional<std::string> {
    if (!n.IsSequence()) return "expected a list of strings, got " + kindOf(n);
    std::vector<std::string> items;
    for (const auto& item : n) {
      if (!item.IsScalar()) return "expected a list of strings, but an item is " + kindOf(item);
      items.push_back(item.Scalar());
    }
    *out = std::move(items);
    return std::nullopt;
  };
  f.show = [out] {
    std::string j = "[";
    for (const auto& item : *out) j += (j.size() > 1 ? "," : "") + jsonString(item);
    return j + "]";
  };
  f.env = std::move(env);
  add(std::move(path), std::move(f));
}

void Schema::custom(std::string path, CustomParser parse) { custom_[std::move(path)] = std::move(parse); }

std::vector<std::pair<std::string, std::string>> Schema::values() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [path, f] : fields_) out.emplace_back(path, f.show ? f.show() : "null");
  return out;
}

std::vector<std::string> Schema::customKeys() const {
  std::vector<std::string> out;
  for (const auto& kv : custom_) out.push_back(kv.first);
  return out;
}

std::string Schema::envOf(const std::string& path) const {
  auto f = fields_.find(path);
  return f == fields_.end() ? "" : f->second.env;
}

void Schema::env(std::string var, std::function<Status(const std::string&)> apply) {
  env_hooks_.emplace_back(std::move(var), std::move(apply));
}

void Schema::check(Check fn) { checks_.push_back(std::move(fn)); }

bool Schema::isSection(const std::string& path) const {
  const std::string prefix = path + ".";
  auto starts = [&](const auto& kv) { return kv.first.rfind(prefix, 0) == 0; };
  return std::any_of(fields_.begin(), fields_.end(), starts) ||
         std::any_of(custom_.begin(), custom_.end(), starts);
}

std::string Schema::knownUnder(const std::string& prefix) const {
  std::set<std::string> names;
  const std::string p = prefix.empty() ? "" : prefix + ".";
  auto collect = [&](const std::string& key) {
    if (key.rfind(p, 0) != 0) return;
    const std::string rest = key.substr(p.size());
    names.insert(rest.substr(0, rest.find('.')));
  };
  for (const auto& kv : fields_) collect(kv.first);
  for (const auto& kv : custom_) collect(kv.first);
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void Schema::walk(const YAML::Node& map, const std::string& file, const std::string& prefix,
                  std::vector<std::string>& errors) const {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    // Nodes are cheap handles; copies avoid references into the iterator's proxy.
    const YAML::Node key_node = entry.first;
    const YAML::Node value = entry.second;
    if (!key_node.IsScalar()) {
      errors.push_back(locate(file, key_node, "keys must be plain names"));
      continue;
    }
    const std::string key = key_node.Scalar();
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    if (!seen.insert(key).second) {
      errors.push_back(locate(file, key_node, "duplicate key '" + path + "'"));
      continue;
    }
    if (auto f = fields_.find(path); f != fields_.end()) {
      if (auto err = f->second.from_yaml(value)) {
        const std::string message = "key '" + path + "': " + *err;
        errors.push_back(value.IsNull() ? locate(file, key_node, message) : locate(file, value, message));
      }
    } else if (auto c = custom_.find(path); c != custom_.end()) {
      if (Status s = c->second(value, file, path); !s.ok()) errors.push_back(s.error());
    } else if (isSection(path)) {
      if (value.IsNull()) continue;  // an empty section keeps its defaults
      if (!value.IsMap()) {
        errors.push_back(locate(file, value, "key '" + path + "': expected a mapping, got " + kindOf(value)));
        continue;
      }
      walk(value, file, path, errors);
    } else {
      errors.push_back(locate(file, key_node, "unknown key '" + path + "' (known keys" +
                                                  (prefix.empty() ? "" : " under '" + prefix + "'") +
                                                  ": " + knownUnder(prefix) + ")"));
    }
  }
}

Status Schema::apply(const YAML::Node& node, const std::string& file, const std::string& prefix) const {
  if (node.IsNull()) return Status::Ok();
  if (!node.IsMap()) {
    return Error{locate(file, node, (prefix.empty() ? std::string("the file") : "key '" + prefix + "'") +
                                        " must be a mapping, got " + kindOf(node))};
  }
  std::vector<std::string> errors;
  walk(node, file, prefix, errors);
  if (errors.empty()) return Status::Ok();
  std::string joined;
  for (const auto& e : errors) joined += (joined.empty() ? "" : "\n") + e;
  return Error{joined};
}

Status Schema::applyEnvAndChecks(const EnvLookup& env) const {
  std::vector<std::string> errors;
  for (const auto& [path, field] : fields_) {
    if (field.env.empty()) continue;
    if (auto value = env(field.env)) {
      if (auto err = field.from_text(*value)) {
        errors.push_back("environment variable " + field.env + " (key '" + path + "'): " + *err);
      }
    }
  }
  for (const auto& [var, hook] : env_hooks_) {
    if (auto value = env(var)) {
      if (Status s = hook(*value); !s.ok()) errors.push_back("environment variable " + var + ": " + s.error());
    }
  }
  if (errors.empty()) {
    for (const auto& c : checks_) {
      if (Status s = c(); !s.ok()) errors.push_back(s.error());
    }
  }
  if (errors.empty()) return Status::Ok();
  std::string joined;
  for (const auto& e : errors) joined += (joined.empty() ? "" : "\n") + e;
  return Error{joined};
}

Status Schema::loadText(const std::string& text, const std::string& label, const EnvLookup& env) const {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Error{label + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                 ": YAML syntax error: " + e.msg};
  }
  if (Status s = apply(root, label, ""); !s.ok()) return s;
  return applyEnvAndChecks(env);
}

Status Schema::load(const std::string& file, const EnvLookup& env) const {
  if (file.empty()) return applyEnvAndChecks(env);
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{file + ": cannot open config file: " + std::strerror(errno)};
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return Error{file + ": cannot read config file"};
  return loadText(buf.str(), file, env);
}

std::vector<std::string> Schema::keys() const {
  std::vector<std::string> out;
  for (const auto& kv : fields_) out.push_back(kv.first);
  for (const auto& kv : custom_) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace dspy::config
