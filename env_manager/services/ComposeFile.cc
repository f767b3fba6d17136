// Reading a Compose Specification file (docker-compose.yml) into the services model:
// interpolation (${VAR}, ${VAR:-default}, ${VAR:?error}, .env), merge keys (<<), and
// each service key compose defines either translated or refused by name. Names follow
// compose: project from `name`, COMPOSE_PROJECT_NAME or the folder; networks and volumes
// become <project>_<key> unless external or named; the default network <project>_default.
#include "env_manager/services/ServiceSpec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/ConfigSchema.h"
#include "common/Text.h"

namespace dspy::envmanager {
namespace {

using config::locate;
using Entries = std::vector<std::pair<YAML::Node, YAML::Node>>;

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string kindName(const YAML::Node& n) {
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "no value";
  return "'" + n.Scalar() + "'";
}

// Every key compose defines for a service (the Compose Specification), so that a key we
// do not translate is named as "not supported" rather than "unknown".
const std::set<std::string>& composeServiceKeys() {
  static const std::set<std::string> keys = {
      "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
      "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
      "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on",
      "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname",
      "driver_opts", "entrypoint", "env_file", "environment", "expose", "extends", "external_links",
      "extra_hosts", "gpus", "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation",
      "labels", "label_file", "links", "logging", "mac_address", "mem_limit", "mem_reservation",
      "mem_swappiness", "memswap_limit", "models", "network_mode", "networks", "oom_kill_disable",
      "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop", "privileged",
      "profiles", "provider", "pull_policy", "read_only", "restart", "runtime", "scale", "secrets",
      "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls",
      "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes", "volumes_from",
      "working_dir"};
  return keys;
}

class Reader {
 public:
  Reader(std::string file, std::string dir, const ServicesLoadOptions& options)
      : file_(std::move(file)), dir_(std::move(dir)), options_(options) {}

  Result<ServicesFile> read(const std::string& text);

 private:
  // --- errors and warnings ---
  Error fail(const YAML::Node& n, const std::string& msg) const { return Error{locate(file_, n, msg), ErrorKind::InvalidArgument}; }
  // A key compose has and we do not: an error, or with the option a warning.
  Status unsupported(const YAML::Node& key, const std::string& path, const std::string& why = "") {
    const std::string msg = "key '" + path + "' is not supported by env-manager" + (why.empty() ? "" : " (" + why + ")");
    if (options_.unsupported_as_warnings) {
      warnings_.push_back(locate(file_, key, msg + "; ignored"));
      return Status::Ok();
    }
    return fail(key, msg + "; remove it, or set services.compose_unsupported: warn to ignore such keys");
  }

  // --- variables ---
  void loadDotEnv();
  std::optional<std::string> variable(const std::string& name) const;
  Result<std::string> interpolate(const std::string& text, const YAML::Node& where, const std::string& path);
  Result<std::string> scalar(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) return fail(n, "key '" + path + "': expected a string, got " + kindName(n));
    return interpolate(n.Scalar(), n, path);
  }
  Result<bool> boolean(const YAML::Node& n, const std::string& path);
  Result<std::int64_t> integer(const YAML::Node& n, const std::string& path, std::int64_t min, std::int64_t max);
  Result<std::chrono::milliseconds> duration(const YAML::Node& n, const std::string& path);
  Result<std::vector<std::string>> strings(const YAML::Node& n, const std::string& path);

  // --- structure ---
  Result<Entries> entries(const YAML::Node& n, const std::string& path);
  std::string absolute(const std::string& p) const;

  Status readService(const std::string& name, const YAML::Node& node, ServiceSpec* svc, std::vector<std::string>* profiles);
  Status readArgv(const YAML::Node& n, const std::string& path, std::vector<std::string>* out);
  Status readEnvironment(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>* out);
  Status readEnvFiles(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>* out);
  Status readLabels(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>* out);
  Status readPorts(const YAML::Node& n, const std::string& path, bool expose, std::vector<PortSpec>* out);
  Status readVolumes(const YAML::Node& n, const std::string& path, std::vector<VolumeSpec>* out);
  Status readServiceNetworks(const YAML::Node& n, const std::string& path, std::vector<NetworkSpec>* out);
  Status readDependsOn(const YAML::Node& n, const std::string& path, const std::string& service);
  Status readHealthcheck(const YAML::Node& n, const std::string& path, HealthCheckSpec* out);
  Status readRestart(const YAML::Node& n, const std::string& path, RestartSpec* out);
  Status readDeploy(const YAML::Node& n, const std::string& path, ServiceSpec* svc);
  Status readExtension(const YAML::Node& n, const std::string& path, ServiceSpec* svc);
  Status readTopLevel(const YAML::Node& n, const std::string& path, bool networks);

  struct Dependency {
    std::string service, dependency;
    bool required = true;
    YAML::Node where;
  };

  std::string file_, dir_;
  const ServicesLoadOptions& options_;
  std::map<std::string, std::string> dotenv_;
  std::vector<std::string> warnings_;
  std::string project_;
  std::map<std::string, std::string> networks_;  // compose key -> Docker name
  std::map<std::string, std::string> volumes_;   // compose key -> Docker name
  std::vector<Dependency> deps_;
  std::map<std::string, std::vector<DependencySpec>> dep_specs_;
};

void Reader::loadDotEnv() {
  if (dir_.empty()) return;
  std::ifstream in(dir_ + "/.env");
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("export ", 0) == 0) line = trim(line.substr(7));
    const auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    dotenv_.emplace(std::move(key), std::move(value));
  }
}

std::optional<std::string> Reader::variable(const std::string& name) const {
  if (options_.env) {
    if (auto v = options_.env(name)) return v;
  } else if (const char* v = std::getenv(name.c_str())) {
    return std::string(v);
  }
  if (auto it = dotenv_.find(name); it != dotenv_.end()) return it->second;
  return std::nullopt;
}

bool nameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool nameChar(char c) { return nameStart(c) || (c >= '0' && c <= '9'); }

Result<std::string> Reader::interpolate(const std::string& text, const YAML::Node& where, const std::string& path) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '$') {
      out += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {  // $$ is a literal $
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 < text.size() && nameStart(text[i + 1])) {  // $VAR
      std::size_t j = i + 1;
      while (j < text.size() && nameChar(text[j])) ++j;
      const std::string name = text.substr(i + 1, j - i - 1);
      if (auto v = variable(name)) out += *v;
      else warnings_.push_back(locate(file_, where, "key '" + path + "': variable " + name + " is not set; using an empty string"));
      i = j - 1;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '{') {
      return fail(where, "key '" + path + "': invalid interpolation in '" + text + "' (write $$ for a literal $)");
    }
    // ${...}: find the matching brace (defaults may hold ${...} themselves).
    std::size_t j = i + 2;
    int depth = 1;
    for (; j < text.size() && depth > 0; ++j) {
      if (text[j] == '{') ++depth;
      else if (text[j] == '}') --depth;
    }
    if (depth != 0) return fail(where, "key '" + path + "': unterminated ${ in '" + text + "'");
    const std::string inner = text.substr(i + 2, j - i - 3);
    std::size_t k = 0;
    while (k < inner.size() && nameChar(inner[k])) ++k;
    const std::string name = inner.substr(0, k);
    if (name.empty() || !nameStart(name[0])) {
      return fail(where, "key '" + path + "': invalid variable name in '${" + inner + "}'");
    }
    const std::string op = inner.substr(k, k + 1 < inner.size() && inner[k] == ':' ? 2 : 1);
    const std::string arg = k + op.size() <= inner.size() ? inner.substr(k + op.size()) : "";
    const auto value = variable(name);
    const bool unset = !value.has_value();
    const bool empty = unset || value->empty();
    if (k == inner.size()) {
      if (value) out += *value;
      else warnings_.push_back(locate(file_, where, "key '" + path + "': variable " + name + " is not set; using an empty string"));
    } else if (op == ":-" || op == "-") {
      if ((op == ":-" && empty) || (op == "-" && unset)) {
        auto d = interpolate(arg, where, path);
        if (!d) return d;
        out += d.value();
      } else {
        out += *value;
      }
    } else if (op == ":?" || op == "?") {
      if ((op == ":?" && empty) || (op == "?" && unset)) {
        auto m = interpolate(arg, where, path);
        return fail(where, "key '" + path + "': required variable " + name + " is " + (unset ? "missing" : "empty") +
                               (m && !m.value().empty() ? ": " + m.value() : ""));
      }
      out += *value;
    } else if (op == ":+" || op == "+") {
      if ((op == ":+" && !empty) || (op == "+" && !unset)) {
        auto a = interpolate(arg, where, path);
        if (!a) return a;
        out += a.value();
      }
    } else {
      return fail(where, "key '" + path + "': invalid interpolation '${" + inner + "}' (use ${VAR}, ${VAR:-default}, "
                         "${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+other})");
    }
    i = j - 1;
  }
  return out;
}

Result<bool> Reader::boolean(const YAML::Node& n, const std::string& path) {
  auto s = scalar(n, path);
  if (!s) return s.fullError();
  std::string v = s.value();
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "true" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "no" || v == "off") return false;
  return fail(n, "key '" + path + "': expected true or false, got '" + s.value() + "'");
}

Result<std::int64_t> Reader::integer(const YAML::Node& n, const std::string& path, std::int64_t min, std::int64_t max) {
  auto s = scalar(n, path);
  if (!s) return s.fullError();
  auto v = parseInt(s.value(), min, max);
  if (!v) {
    return fail(n, "key '" + path + "': expected a whole number from " + std::to_string(min) + " to " +
                       std::to_string(max) + ", got '" + s.value() + "'");
  }
  return *v;
}

Result<std::chrono::milliseconds> Reader::duration(const YAML::Node& n, const std::string& path) {
  auto s = scalar(n, path);
  if (!s) return s.fullError();
  auto d = parseDuration(s.value());
  if (!d) return fail(n, "key '" + path + "': " + d.error());
  return d.value();
}

Result<std::vector<std::string>> Reader::strings(const YAML::Node& n, const std::string& path) {
  std::vector<std::string> out;
  if (n.IsNull()) return out;
  if (n.IsScalar()) {
    auto s = scalar(n, path);
    if (!s) return s.fullError();
    out.push_back(s.value());
    return out;
  }
  if (!n.IsSequence()) return fail(n, "key '" + path + "': expected a list of strings, got " + kindName(n));
  for (const auto& item : n) {
    auto s = scalar(item, path);
    if (!s) return s.fullError();
    out.push_back(s.value());
  }
  return out;
}

// A mapping's entries with YAML merge keys (<<: *anchor, or a list of them) applied:
// keys written in the mapping win over merged ones, earlier merged maps over later ones.
Result<Entries> Reader::entries(const YAML::Node& n, const std::string& path) {
  Entries out;
  if (n.IsNull()) return out;
  if (!n.IsMap()) return fail(n, "key '" + (path.empty() ? std::string("(top level)") : path) + "': expected a mapping, got " + kindName(n));
  std::set<std::string> seen;
  std::vector<YAML::Node> merges;
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (key == "<<") {
      if (kv.second.IsSequence()) {
        for (const auto& m : kv.second) merges.push_back(m);
      } else {
        merges.push_back(kv.second);
      }
      continue;
    }
    if (!seen.insert(key).second) return fail(kv.first, "duplicate key '" + (path.empty() ? "" : path + ".") + key + "'");
    out.emplace_back(kv.first, kv.second);
  }
  for (const auto& m : merges) {
    auto merged = entries(m, path + ".<<");
    if (!merged) return merged;
    for (auto& [k, v] : merged.value()) {
      if (seen.insert(k.Scalar()).second) out.emplace_back(k, v);
    }
  }
  return out;
}

std::string Reader::absolute(const std::string& p) const {
  std::filesystem::path path(p);
  if (!p.empty() && p[0] == '~') {
    const char* home = std::getenv("HOME");
    path = std::filesystem::path(home ? home : "/root") / p.substr(p.size() > 1 && p[1] == '/' ? 2 : 1);
  } else if (path.is_relative()) {
    path = std::filesystem::path(dir_.empty() ? "." : dir_) / path;
  }
  return std::filesystem::absolute(path).lexically_normal().string();
}

// A shell-like split (compose splits string commands the way a POSIX shell would, without
// running one): quotes group, backslash escapes.
Result<std::vector<std::string>> shellSplit(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\'') {
      const auto end = s.find('\'', i + 1);
      if (end == std::string::npos) return Error{"unterminated single quote in '" + s + "'"};
      cur += s.substr(i + 1, end - i - 1);
      in_word = true;
      i = end;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (; j < s.size() && s[j] != '"'; ++j) {
        if (s[j] == '\\' && j + 1 < s.size() && (s[j + 1] == '"' || s[j + 1] == '\\' || s[j + 1] == '$')) ++j;
        cur += s[j];
      }
      if (j >= s.size()) return Error{"unterminated double quote in '" + s + "'"};
      in_word = true;
      i = j;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

Status Reader::readArgv(const YAML::Node& n, const std::string& path, std::vector<std::string>* out) {
  out->clear();
  if (n.IsNull()) return Status::Ok();
  if (n.IsScalar()) {
    auto s = scalar(n, path);
    if (!s) return s.fullError();
    auto words = shellSplit(s.value());
    if (!words) return fail(n, "key '" + path + "': " + words.error());
    *out = std::move(words).value();
    return Status::Ok();
  }
  auto list = strings(n, path);
  if (!list) return list.fullError();
  *out = std::move(list).value();
  return Status::Ok();
}

Status Reader::readEnvironment(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>* out) {
  if (n.IsNull()) return Status::Ok();
  if (n.IsMap()) {
    auto es = entries(n, path);
    if (!es) return es.fullError();
    for (const auto& [k, v] : es.value()) {
      const std::string key = k.Scalar();
      if (v.IsNull()) {  // KEY: with no value: taken from the environment, or not set
        if (auto value = variable(key)) (*out)[key] = *value;
        else out->erase(key);
        continue;
      }
      auto value = scalar(v, path + "." + key);
      if (!value) return value.fullError();
      (*out)[key] = value.value();
    }
    return Status::Ok();
  }
  if (!n.IsSequence()) return fail(n, "key '" + path + "': expected a mapping or a list of KEY=VALUE, got " + kindName(n));
  for (const auto& item : n) {
    auto s = scalar(item, path);
    if (!s) return s.fullError();
    const auto eq = s.value().find('=');
    if (eq == 0) return fail(item, "key '" + path + "': expected KEY=VALUE, got '" + s.value() + "'");
    if (eq == std::string::npos) {  // KEY alone: from the environment, or not set
      if (auto value = variable(s.value())) (*out)[s.value()] = *value;
      else out->erase(s.value());
      continue;
    }
    (*out)[s.value().substr(0, eq)] = s.value().substr(eq + 1);
  }
  return Status::Ok();
}

Status Reader::readEnvFiles(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>* out) {
  std::vector<std::pair<std::string, bool>> files;  // path, required
  auto one = [&](const YAML::Node& item) -> Status {
    if (item.IsMap()) {
      std::string p;
      bool required = true;
      auto es = entries(item, path);
      if (!es) return es.fullError();
      for (const auto& [k, v] : es.value()) {
        if (k.Scalar() == "path") {
          auto s = scalar(v, path + ".path");
          if (!s) return s.fullError();
          p = s.value();
        } else if (k.Scalar() == "required") {
          auto b = boolean(v, path + ".required");
          if (!b) return b.fullError();
          required = b.value();
        } else if (k.Scalar() == "format") {
          if (Status st = unsupported(k, path + ".format"); !st.ok()) return st;
        } else {
          return fail(k, "unknown key '" + path + "." + k.Scalar() + "' (known keys: path, required, format)");
        }
      }
      if (p.empty()) return fail(item, "key '" + path + "': an env_file entry needs 'path'");
      files.emplace_back(absolute(p), required);
      return Status::Ok();
    }
    auto s = scalar(item, path);
    if (!s) return s.fullError();
    files.emplace_back(absolute(s.value()), true);
    return Status::Ok();
  };
  if (n.IsSequence()) {
    for (const auto& item : n) {
      if (Status st = one(item); !st.ok()) return st;
    }
  } else if (Status st = one(n); !st.ok()) {
    return st;
  }
  for (const auto& [file, required] : files) {
    std::ifstream in(file);
    if (!in) {
      if (required) return fail(n, "key '" + path + "': cannot read env file " + file);
      continue;
    }
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      const std::string t = trim(line);
      if (t.empty() || t[0] == '#') continue;
      const auto eq = t.find('=');
      if (eq == 0) return Error{file + ":" + std::to_string(lineno) + ": expected KEY=VALUE, got '" + t + "'", ErrorKind::InvalidArgument};
      if (eq == std::string::npos) {
        if (auto value = variable(t)) (*out)[t] = *value;
        continue;
      }
      std::string value = t.substr(eq + 1);
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
      }
      (*out)[trim(t.substr(0, eq))] = value;
    }
  }
  return Status::Ok();
}

Status Reader::readLabels(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>* out) {
  if (n.IsSequence()) {
    for (const auto& item : n) {
      auto s = scalar(item, path);
      if (!s) return s.fullError();
      const auto eq = s.value().find('=');
      if (eq == 0) return fail(item, "key '" + path + "': expected KEY=VALUE, got '" + s.value() + "'");
      (*out)[s.value().substr(0, eq)] = eq == std::string::npos ? "" : s.value().substr(eq + 1);
    }
    return Status::Ok();
  }
  auto es = entries(n, path);
  if (!es) return es.fullError();
  for (const auto& [k, v] : es.value()) {
    if (v.IsNull()) {
      (*out)[k.Scalar()] = "";
      continue;
    }
    auto s = scalar(v, path + "." + k.Scalar());
    if (!s) return s.fullError();
    (*out)[k.Scalar()] = s.value();
  }
  return Status::Ok();
}

// "A" or "A-B" -> the ports in it.
std::optional<std::pair<int, int>> portRange(const std::string& s) {
  const auto dash = s.find('-');
  auto lo = parseInt(s.substr(0, dash), 1, 65535);
  auto hi = dash == std::string::npos ? lo : parseInt(s.substr(dash + 1), 1, 65535);
  if (!lo || !hi || *hi < *lo) return std::nullopt;
  return std::make_pair(static_cast<int>(*lo), static_cast<int>(*hi));
}

Status Reader::readPorts(const YAML::Node& n, const std::string& path, bool expose, std::vector<PortSpec>* out) {
  if (n.IsNull()) return Status::Ok();
  if (!n.IsSequence()) return fail(n, "key '" + path + "': expected a list, got " + kindName(n));
  for (const auto& item : n) {
    if (item.IsMap() && !expose) {  // long syntax
      PortSpec p;
      p.host_ip = "";
      std::string published;
      auto es = entries(item, path);
      if (!es) return es.fullError();
      for (const auto& [k, v] : es.value()) {
        const std::string key = k.Scalar();
        const std::string kp = path + "." + key;
        if (key == "target") {
          auto t = integer(v, kp, 1, 65535);
          if (!t) return t.fullError();
          p.container_port = static_cast<int>(t.value());
        } else if (key == "published") {
          auto s = scalar(v, kp);
          if (!s) return s.fullError();
          published = s.value();
        } else if (key == "host_ip") {
          auto s = scalar(v, kp);
          if (!s) return s.fullError();
          p.host_ip = s.value();
        } else if (key == "protocol") {
          auto s = scalar(v, kp);
          if (!s) return s.fullError();
          if (s.value() != "tcp" && s.value() != "udp") return fail(v, "key '" + kp + "': expected tcp or udp, got '" + s.value() + "'");
          p.protocol = s.value();
        } else if (key == "mode") {
          auto s = scalar(v, kp);
          if (!s) return s.fullError();
          if (s.value() != "host" && s.value() != "ingress") return fail(v, "key '" + kp + "': expected host or ingress");
        } else if (key == "name" || key == "app_protocol") {
          // Descriptive only; Docker has no field for them.
        } else {
          return fail(k, "unknown key '" + kp + "' (known keys: target, published, host_ip, protocol, mode, name, app_protocol)");
        }
      }
      if (p.container_port == 0) return fail(item, "key '" + path + "': a port needs 'target'");
      if (published.empty()) {
        p.random_host_port = true;
      } else {
        auto r = portRange(published);
        if (!r || r->first != r->second) {
          if (r) return unsupported(item, path + ".published", "a range of host ports for one target port");
          return fail(item, "key '" + path + ".published': expected a port, got '" + published + "'");
        }
        p.host_port = r->first;
      }
      out->push_back(p);
      continue;
    }
    auto text = scalar(item, path);
    if (!text) return text.fullError();
    std::string s = text.value();
    std::string protocol = "tcp";
    if (auto slash = s.rfind('/'); slash != std::string::npos) {
      protocol = s.substr(slash + 1);
      s.erase(slash);
      if (protocol != "tcp" && protocol != "udp") {
        return fail(item, "key '" + path + "': protocol must be tcp or udp, got '" + protocol + "'");
      }
    }
    std::string host_ip;
    bool has_ip = false;
    if (!s.empty() && s[0] == '[') {  // [v6]:host:container
      const auto close = s.find(']');
      if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
        return fail(item, "key '" + path + "': bad IPv6 address in '" + text.value() + "'");
      }
      host_ip = s.substr(1, close - 1);
      has_ip = true;
      s = s.substr(close + 2);
    }
    std::vector<std::string> parts;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ':')) parts.push_back(part);
    if (!s.empty() && s.back() == ':') parts.push_back("");
    if (!has_ip && parts.size() == 3) {
      host_ip = parts[0];
      parts.erase(parts.begin());
      has_ip = true;
    }
    const std::string bad = "key '" + path + "': expected [[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTOCOL], got '" + text.value() + "'";
    if (parts.empty() || parts.size() > 2 || (expose && parts.size() != 1)) return fail(item, expose ? "key '" + path + "': expected PORT[-PORT][/PROTOCOL], got '" + text.value() + "'" : bad);
    auto container = portRange(parts.back());
    if (!container) return fail(item, bad);
    std::optional<std::pair<int, int>> host;
    if (parts.size() == 2 && !parts[0].empty()) {
      host = portRange(parts[0]);
      if (!host) return fail(item, bad);
    }
    const int count = container->second - container->first + 1;
    if (host && host->second - host->first + 1 != count) {
      if (count == 1) return unsupported(item, path, "a range of host ports for one container port");
      return fail(item, "key '" + path + "': the host and container port ranges differ in length in '" + text.value() + "'");
    }
    for (int i = 0; i < count; ++i) {
      PortSpec p;
      p.protocol = protocol;
      p.container_port = container->first + i;
      p.host_ip = host_ip;
      if (expose) {
        p.host_ip = "127.0.0.1";
      } else if (host) {
        p.host_port = host->first + i;
      } else {
        p.random_host_port = true;
      }
      out->push_back(p);
    }
  }
  return Status::Ok();
}

Status Reader::readVolumes(const YAML::Node& n, const std::string& path, std::vector<VolumeSpec>* out) {
  if (n.IsNull()) return Status::Ok();
  if (!n.IsSequence()) return fail(n, "key '" + path + "': expected a list, got " + kindName(n));
  auto named = [&](const YAML::Node& where, const std::string& source, VolumeSpec* v) -> Status {
    auto it = volumes_.find(source);
    if (it == volumes_.end()) {
      return fail(where, "key '" + path + "': named volume '" + source + "' is not declared in the top-level 'volumes'");
    }
    v->source = it->second;
    return Status::Ok();
  };
  auto isPath = [](const std::string& s) { return !s.empty() && (s[0] == '/' || s[0] == '.' || s[0] == '~'); };
  for (const auto& item : n) {
    VolumeSpec v;
    if (item.IsMap()) {
      std::string type = "volume", source;
      auto es = entries(item, path);
      if (!es) return es.fullError();
      bool create_host_path = true;
      for (const auto& [k, val] : es.value()) {
        const std::string key = k.Scalar();
        const std::string kp = path + "." + key;
        if (key == "type" || key == "source" || key == "target") {
          auto s = scalar(val, kp);
          if (!s) return s.fullError();
          (key == "type" ? type : key == "source" ? source : v.target) = s.value();
        } else if (key == "read_only") {
          auto b = boolean(val, kp);
          if (!b) return b.fullError();
          v.read_only = b.value();
        } else if (key == "bind") {
          auto bes = entries(val, kp);
          if (!bes) return bes.fullError();
          for (const auto& [bk, bv] : bes.value()) {
            if (bk.Scalar() == "create_host_path") {
              auto b = boolean(bv, kp + ".create_host_path");
              if (!b) return b.fullError();
              create_host_path = b.value();
            } else if (Status st = unsupported(bk, kp + "." + bk.Scalar()); !st.ok()) {
              return st;
            }
          }
        } else if (key == "consistency") {
          // Only meaningful on Docker Desktop; Linux ignores it.
        } else if (key == "volume" || key == "tmpfs" || key == "image") {
          if (Status st = unsupported(k, kp); !st.ok()) return st;
        } else {
          return fail(k, "unknown key '" + kp + "' (known keys: type, source, target, read_only, bind, volume, tmpfs, consistency)");
        }
      }
      if (v.target.empty() || v.target[0] != '/') return fail(item, "key '" + path + "': 'target' must be an absolute path");
      if (type == "bind") {
        if (source.empty()) return fail(item, "key '" + path + "': a bind needs 'source'");
        v.source = absolute(source);
        v.create_host_path = create_host_path;
      } else if (type == "volume") {
        if (!source.empty()) {
          if (Status st = named(item, source, &v); !st.ok()) return st;
        }
      } else if (type == "tmpfs") {
        v.tmpfs = true;
      } else {
        if (Status st = unsupported(item, path + ".type", "type " + type); !st.ok()) return st;
        continue;
      }
      out->push_back(v);
      continue;
    }
    auto text = scalar(item, path);
    if (!text) return text.fullError();
    const std::string s = text.value();
    std::vector<std::string> parts;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ':')) parts.push_back(part);
    if (parts.empty()) return fail(item, "key '" + path + "': an empty volume entry");
    if (parts.size() == 1) {
      if (!isPath(parts[0]) || parts[0][0] != '/') return fail(item, "key '" + path + "': expected SOURCE:TARGET[:MODE] or /TARGET, got '" + s + "'");
      v.target = parts[0];
      out->push_back(v);
      continue;
    }
    if (parts.size() > 3) return fail(item, "key '" + path + "': expected SOURCE:TARGET[:MODE], got '" + s + "'");
    v.target = parts[1];
    if (v.target.empty() || v.target[0] != '/') return fail(item, "key '" + path + "': the target must be an absolute path, got '" + v.target + "'");
    if (parts.size() == 3) {
      std::stringstream ms(parts[2]);
      std::string mode;
      while (std::getline(ms, mode, ',')) {
        if (mode == "ro") v.read_only = true;
        else if (mode == "rw") v.read_only = false;
        else if (mode == "z" || mode == "Z" || mode == "nocopy" || mode == "cached" || mode == "delegated" ||
                 mode == "consistent") {
          if (Status st = unsupported(item, path, "volume mode '" + mode + "'"); !st.ok()) return st;
        } else {
          return fail(item, "key '" + path + "': unknown volume mode '" + mode + "' in '" + s + "'");
        }
      }
    }
    if (isPath(parts[0])) {
      v.source = absolute(parts[0]);
      v.create_host_path = true;
    } else if (Status st = named(item, parts[0], &v); !st.ok()) {
      return st;
    }
    out->push_back(v);
  }
  return Status::Ok();
}

Status Reader::readServiceNetworks(const YAML::Node& n, const std::string& path, std::vector<NetworkSpec>* out) {
  auto add = [&](const YAML::Node& where, const std::string& key) -> Status {
    auto it = networks_.find(key);
    if (it == networks_.end()) {
      return fail(where, "key '" + path + "': network '" + key + "' is not declared in the top-level 'networks'");
    }
    out->push_back({it->second, {}});
    return Status::Ok();
  };
  if (n.IsSequence()) {
    for (const auto& item : n) {
      auto s = scalar(item, path);
      if (!s) return s.fullError();
      if (Status st = add(item, s.value()); !st.ok()) return st;
    }
    return Status::Ok();
  }
  auto es = entries(n, path);
  if (!es) return es.fullError();
  for (const auto& [k, v] : es.value()) {
    if (Status st = add(k, k.Scalar()); !st.ok()) return st;
    auto nes = entries(v, path + "." + k.Scalar());
    if (!nes) return nes.fullError();
    for (const auto& [nk, nv] : nes.value()) {
      const std::string kp = path + "." + k.Scalar() + "." + nk.Scalar();
      if (nk.Scalar() == "aliases") {
        auto a = strings(nv, kp);
        if (!a) return a.fullError();
        out->back().aliases = a.value();
      } else if (nk.Scalar() == "priority" || nk.Scalar() == "gw_priority") {
        // Which network is primary: compose orders by it; we keep the file order.
      } else if (Status st = unsupported(nk, kp); !st.ok()) {
        return st;
      }
    }
  }
  return Status::Ok();
}

Status Reader::readDependsOn(const YAML::Node& n, const std::string& path, const std::string& service) {
  auto add = [&](const YAML::Node& where, const std::string& dep, DependencySpec::Condition c, bool required) -> Status {
    for (const auto& d : dep_specs_[service]) {
      if (d.service == dep) return fail(where, "key '" + path + "': '" + dep + "' is listed twice");
    }
    dep_specs_[service].push_back({dep, c});
    deps_.push_back({service, dep, required, where});
    return Status::Ok();
  };
  if (n.IsNull()) return Status::Ok();
  if (n.IsSequence()) {
    for (const auto& item : n) {
      auto s = scalar(item, path);
      if (!s) return s.fullError();
      if (Status st = add(item, s.value(), DependencySpec::Condition::Started, true); !st.ok()) return st;
    }
    return Status::Ok();
  }
  auto es = entries(n, path);
  if (!es) return es.fullError();
  for (const auto& [k, v] : es.value()) {
    auto c = DependencySpec::Condition::Started;
    bool required = true;
    const std::string dp = path + "." + k.Scalar();
    auto des = entries(v, dp);
    if (!des) return des.fullError();
    for (const auto& [ck, cv] : des.value()) {
      const std::string key = ck.Scalar();
      if (key == "condition") {
        auto s = scalar(cv, dp + ".condition");
        if (!s) return s.fullError();
        if (s.value() == "service_started") c = DependencySpec::Condition::Started;
        else if (s.value() == "service_healthy") c = DependencySpec::Condition::Healthy;
        else if (s.value() == "service_completed_successfully") c = DependencySpec::Condition::CompletedSuccessfully;
        else {
          return fail(cv, "key '" + dp + ".condition': expected service_started, service_healthy or "
                          "service_completed_successfully, got '" + s.value() + "'");
        }
      } else if (key == "required") {
        auto b = boolean(cv, dp + ".required");
        if (!b) return b.fullError();
        required = b.value();
      } else if (key == "restart") {
        auto b = boolean(cv, dp + ".restart");
        if (!b) return b.fullError();
        if (b.value()) {
          if (Status st = unsupported(ck, dp + ".restart", "restarting dependents with their dependency"); !st.ok()) return st;
        }
      } else {
        return fail(ck, "unknown key '" + dp + "." + key + "' (known keys: condition, required, restart)");
      }
    }
    if (Status st = add(k, k.Scalar(), c, required); !st.ok()) return st;
  }
  return Status::Ok();
}

Status Reader::readHealthcheck(const YAML::Node& n, const std::string& path, HealthCheckSpec* out) {
  auto es = entries(n, path);
  if (!es) return es.fullError();
  // Docker's defaults for what the file leaves out.
  out->interval = std::chrono::seconds(30);
  out->timeout = std::chrono::seconds(30);
  out->retries = 3;
  bool disabled = false;
  std::vector<std::string> test;
  for (const auto& [k, v] : es.value()) {
    const std::string key = k.Scalar();
    const std::string kp = path + "." + key;
    if (key == "test") {
      if (v.IsScalar()) {
        auto s = scalar(v, kp);
        if (!s) return s.fullError();
        test = {"CMD-SHELL", s.value()};
      } else {
        auto list = strings(v, kp);
        if (!list) return list.fullError();
        test = list.value();
        if (test.empty() || (test[0] != "CMD" && test[0] != "CMD-SHELL" && test[0] != "NONE") ||
            (test[0] != "NONE" && test.size() < 2) || (test[0] == "CMD-SHELL" && test.size() != 2)) {
          return fail(v, "key '" + kp + "': expected [CMD, ARG...], [CMD-SHELL, COMMAND], [NONE] or a string");
        }
      }
    } else if (key == "interval" || key == "timeout" || key == "start_period") {
      auto d = duration(v, kp);
      if (!d) return d.fullError();
      if (d.value().count() <= 0) return fail(v, "key '" + kp + "': must be longer than 0");
      (key == "interval" ? out->interval : key == "timeout" ? out->timeout : out->start_period) = d.value();
    } else if (key == "start_interval") {
      // Docker probes this often during start_period; env-manager probes a starting
      // container faster than that anyway (from 25 ms, growing), so nothing to carry.
      auto d = duration(v, kp);
      if (!d) return d.fullError();
    } else if (key == "retries") {
      auto r = integer(v, kp, 1, 1000);
      if (!r) return r.fullError();
      out->retries = static_cast<int>(r.value());
    } else if (key == "disable") {
      auto b = boolean(v, kp);
      if (!b) return b.fullError();
      disabled = b.value();
    } else {
      return fail(k, "unknown key '" + kp + "' (known keys: test, interval, timeout, start_period, start_interval, retries, disable)");
    }
  }
  if (disabled || (!test.empty() && test[0] == "NONE")) {
    out->kind = HealthCheckSpec::Kind::None;
    out->container_test = {"NONE"};
    return Status::Ok();
  }
  if (test.empty()) return fail(n, "key '" + path + "': needs 'test' (or disable: true)");
  out->kind = HealthCheckSpec::Kind::Exec;
  out->container_test = test;
  if (test[0] == "CMD") out->command.assign(test.begin() + 1, test.end());
  else out->command = {"/bin/sh", "-c", test[1]};
  return Status::Ok();
}

Status Reader::readRestart(const YAML::Node& n, const std::string& path, RestartSpec* out) {
  auto s = scalar(n, path);
  if (!s) return s.fullError();
  const std::string v = s.value();
  if (v == "no") out->policy = RestartSpec::Policy::No;
  else if (v == "always") out->policy = RestartSpec::Policy::Always;
  else if (v == "unless-stopped") out->policy = RestartSpec::Policy::UnlessStopped;
  else if (v == "on-failure") out->policy = RestartSpec::Policy::OnFailure;
  else if (v.rfind("on-failure:", 0) == 0) {
    auto count = parseInt(v.substr(11), 0, 10000);
    if (!count) return fail(n, "key '" + path + "': expected on-failure:N with a whole number N, got '" + v + "'");
    out->policy = RestartSpec::Policy::OnFailure;
    out->max_restarts = static_cast<int>(*count);
  } else {
    return fail(n, "key '" + path + "': expected no, always, on-failure[:N] or unless-stopped, got '" + v + "'");
  }
  return Status::Ok();
}

Status Reader::readDeploy(const YAML::Node& n, const std::string& path, ServiceSpec* svc) {
  auto es = entries(n, path);
  if (!es) return es.fullError();
  for (const auto& [k, v] : es.value()) {
    const std::string key = k.Scalar();
    const std::string kp = path + "." + key;
    if (key == "replicas") {
      auto r = integer(v, kp, 0, 1000000);
      if (!r) return r.fullError();
      if (r.value() != 1) {
        if (Status st = unsupported(k, kp, "env-manager runs one container per service"); !st.ok()) return st;
      }
      continue;
    }
    if (key != "resources") {
      if (Status st = unsupported(k, kp); !st.ok()) return st;
      continue;
    }
    auto res = entries(v, kp);
    if (!res) return res.fullError();
    for (const auto& [rk, rv] : res.value()) {
      const std::string rp = kp + "." + rk.Scalar();
      auto items = entries(rv, rp);
      if (!items) return items.fullError();
      for (const auto& [ik, iv] : items.value()) {
        const std::string ip = rp + "." + ik.Scalar();
        const std::string item = ik.Scalar();
        if (rk.Scalar() == "limits" && item == "cpus") {
          auto s = scalar(iv, ip);
          if (!s) return s.fullError();
          char* end = nullptr;
          const double c = std::strtod(s.value().c_str(), &end);
          if (s.value().empty() || *end != '\0' || c < 0 || c > 1024) return fail(iv, "key '" + ip + "': expected a number of CPUs, got '" + s.value() + "'");
          svc->cpus = c;
        } else if (rk.Scalar() == "limits" && item == "memory") {
          auto s = scalar(iv, ip);
          if (!s) return s.fullError();
          auto b = parseByteSize(s.value());
          if (!b) return fail(iv, "key '" + ip + "': " + b.error());
          svc->memory_bytes = b.value();
        } else if (rk.Scalar() == "limits" && item == "pids") {
          auto p = integer(iv, ip, -1, std::int64_t{1} << 31);
          if (!p) return p.fullError();
          svc->pids_limit = p.value();
        } else if (rk.Scalar() == "reservations" && item == "devices") {
          if (!iv.IsSequence()) return fail(iv, "key '" + ip + "': expected a list of device requests");
          for (const auto& dev : iv) {
            auto des = entries(dev, ip);
            if (!des) return des.fullError();
            bool gpu = false;
            for (const auto& [dk, dv] : des.value()) {
              const std::string dp = ip + "." + dk.Scalar();
              if (dk.Scalar() == "capabilities") {
                auto caps = strings(dv, dp);
                if (!caps) return caps.fullError();
                gpu = std::find(caps.value().begin(), caps.value().end(), "gpu") != caps.value().end();
              } else if (dk.Scalar() == "count") {
                auto s = scalar(dv, dp);
                if (!s) return s.fullError();
                if (s.value() == "all") {
                  svc->gpu_count = -1;
                } else {
                  auto c = parseInt(s.value(), 1, 1024);
                  if (!c) return fail(dv, "key '" + dp + "': expected all or a number, got '" + s.value() + "'");
                  svc->gpu_count = static_cast<int>(*c);
                }
              } else if (dk.Scalar() == "device_ids") {
                auto ids = strings(dv, dp);
                if (!ids) return ids.fullError();
                svc->gpu_device_ids = ids.value();
              } else if (dk.Scalar() == "driver") {
                auto s = scalar(dv, dp);
                if (!s) return s.fullError();  // Docker picks the driver for "gpu" itself
              } else if (Status st = unsupported(dk, dp); !st.ok()) {
                return st;
              }
            }
            if (!gpu) {
              if (Status st = unsupported(dev, ip, "devices other than GPUs"); !st.ok()) return st;
              continue;
            }
            svc->gpus = true;
          }
        } else if (Status st = unsupported(ik, ip); !st.ok()) {
          return st;
        }
      }
    }
  }
  return Status::Ok();
}

// x-dspy: what compose cannot say. required (false: the stack is up without it) and
// probe (our own health check kinds: http, tcp, redis, exec, docker, none).
Status Reader::readExtension(const YAML::Node& n, const std::string& path, ServiceSpec* svc) {
  auto es = entries(n, path);
  if (!es) return es.fullError();
  for (const auto& [k, v] : es.value()) {
    const std::string kp = path + "." + k.Scalar();
    if (k.Scalar() == "required") {
      auto b = boolean(v, kp);
      if (!b) return b.fullError();
      svc->required = b.value();
    } else if (k.Scalar() == "probe") {
      auto pes = entries(v, kp);
      if (!pes) return pes.fullError();
      auto& h = svc->healthcheck;
      for (const auto& [pk, pv] : pes.value()) {
        const std::string pp = kp + "." + pk.Scalar();
        const std::string key = pk.Scalar();
        if (key == "kind") {
          auto s = scalar(pv, pp);
          if (!s) return s.fullError();
          static const std::map<std::string, HealthCheckSpec::Kind> kinds = {
              {"none", HealthCheckSpec::Kind::None}, {"http", HealthCheckSpec::Kind::Http},
              {"tcp", HealthCheckSpec::Kind::Tcp},   {"redis", HealthCheckSpec::Kind::Redis},
              {"exec", HealthCheckSpec::Kind::Exec}, {"docker", HealthCheckSpec::Kind::Docker}};
          auto it = kinds.find(s.value());
          if (it == kinds.end()) return fail(pv, "key '" + pp + "': expected none, http, tcp, redis, exec or docker");
          h.kind = it->second;
        } else if (key == "port") {
          auto p = integer(pv, pp, 1, 65535);
          if (!p) return p.fullError();
          h.port = static_cast<int>(p.value());
        } else if (key == "path") {
          auto s = scalar(pv, pp);
          if (!s) return s.fullError();
          h.path = s.value();
        } else if (key == "command") {
          if (Status st = readArgv(pv, pp, &h.command); !st.ok()) return st;
        } else if (key == "interval" || key == "timeout") {
          auto d = duration(pv, pp);
          if (!d) return d.fullError();
          (key == "interval" ? h.interval : h.timeout) = d.value();
        } else {
          return fail(pk, "unknown key '" + pp + "' (known keys: kind, port, path, command, interval, timeout)");
        }
      }
      using K = HealthCheckSpec::Kind;
      if (h.kind != K::Exec && !pes.value().empty()) {
        bool command_given = false;
        for (const auto& [pk, pv] : pes.value()) command_given = command_given || pk.Scalar() == "command";
        if (!command_given) h.command.clear();  // the compose test's command belongs to Docker's check
      }
      if ((h.kind == K::Http || h.kind == K::Tcp || h.kind == K::Redis) && h.port == 0) {
        return fail(v, "key '" + kp + "': a " + toString(h.kind) + " probe needs 'port'");
      }
      if (h.kind == K::Exec && h.command.empty()) return fail(v, "key '" + kp + "': an exec probe needs 'command'");
    } else {
      return fail(k, "unknown key '" + kp + "' (known keys: required, probe)");
    }
  }
  return Status::Ok();
}

Status Reader::readService(const std::string& name, const YAML::Node& node, ServiceSpec* svc,
                           std::vector<std::string>* profiles) {
  const std::string p = "services." + name;
  svc->name = name;
  svc->restart.policy = RestartSpec::Policy::OnFailure;
  auto es = entries(node, p);
  if (!es) return es.fullError();
  std::map<std::string, std::string> env_from_files, env;
  const YAML::Node* extension = nullptr;
  for (const auto& [k, v] : es.value()) {
    const std::string key = k.Scalar();
    const std::string kp = p + "." + key;
    Status st = Status::Ok();
    if (key == "image") {
      auto s = scalar(v, kp);
      if (!s) return s.fullError();
      svc->image = s.value();
    } else if (key == "command") {
      st = readArgv(v, kp, &svc->command);
    } else if (key == "entrypoint") {
      st = readArgv(v, kp, &svc->entrypoint);
    } else if (key == "environment") {
      st = readEnvironment(v, kp, &env);
    } else if (key == "env_file") {
      st = readEnvFiles(v, kp, &env_from_files);
    } else if (key == "ports") {
      st = readPorts(v, kp, false, &svc->ports);
    } else if (key == "expose") {
      st = readPorts(v, kp, true, &svc->ports);
    } else if (key == "volumes") {
      st = readVolumes(v, kp, &svc->volumes);
    } else if (key == "tmpfs") {
      auto list = strings(v, kp);
      if (!list) return list.fullError();
      for (const auto& t : list.value()) {
        if (t.empty() || t[0] != '/' || t.find(':') != std::string::npos) {
          if (t.find(':') != std::string::npos) {
            if (Status u = unsupported(k, kp, "tmpfs options"); !u.ok()) return u;
            continue;
          }
          return fail(v, "key '" + kp + "': targets must be absolute paths, got '" + t + "'");
        }
        VolumeSpec vol;
        vol.target = t;
        vol.tmpfs = true;
        svc->volumes.push_back(vol);
      }
    } else if (key == "depends_on") {
      st = readDependsOn(v, kp, name);
    } else if (key == "healthcheck") {
      st = readHealthcheck(v, kp, &svc->healthcheck);
    } else if (key == "restart") {
      st = readRestart(v, kp, &svc->restart);
    } else if (key == "labels") {
      st = readLabels(v, kp, &svc->labels);
    } else if (key == "networks") {
      st = readServiceNetworks(v, kp, &svc->networks);
    } else if (key == "working_dir" || key == "user" || key == "hostname" || key == "container_name") {
      auto s = scalar(v, kp);
      if (!s) return s.fullError();
      (key == "working_dir" ? svc->working_dir : key == "user" ? svc->user : key == "hostname" ? svc->hostname
                                                                                               : svc->container_name) = s.value();
      if (key == "container_name" && !std::regex_match(s.value(), std::regex("[a-zA-Z0-9][a-zA-Z0-9_.-]*"))) {
        return fail(v, "key '" + kp + "': invalid container name '" + s.value() + "'");
      }
    } else if (key == "deploy") {
      st = readDeploy(v, kp, svc);
    } else if (key == "cpus") {
      auto s = scalar(v, kp);
      if (!s) return s.fullError();
      char* end = nullptr;
      const double c = std::strtod(s.value().c_str(), &end);
      if (s.value().empty() || *end != '\0' || c < 0 || c > 1024) return fail(v, "key '" + kp + "': expected a number of CPUs");
      svc->cpus = c;
    } else if (key == "mem_limit") {
      auto s = scalar(v, kp);
      if (!s) return s.fullError();
      auto b = parseByteSize(s.value());
      if (!b) return fail(v, "key '" + kp + "': " + b.error());
      svc->memory_bytes = b.value();
    } else if (key == "pids_limit") {
      auto n2 = integer(v, kp, -1, std::int64_t{1} << 31);
      if (!n2) return n2.fullError();
      svc->pids_limit = n2.value();
    } else if (key == "gpus") {
      auto s = v.IsScalar() ? scalar(v, kp) : Result<std::string>(std::string());
      if (!s) return s.fullError();
      if (s.value() != "all") {
        st = unsupported(k, kp, "only 'gpus: all' here; use deploy.resources.reservations.devices for a count");
      } else {
        svc->gpus = true;
      }
    } else if (key == "stop_grace_period") {
      auto d = duration(v, kp);
      if (!d) return d.fullError();
      svc->stop_grace_period = std::chrono::duration_cast<std::chrono::seconds>(d.value() + std::chrono::milliseconds(999));
      if (svc->stop_grace_period.count() > 3600) return fail(v, "key '" + kp + "': at most 1h");
    } else if (key == "profiles") {
      auto list = strings(v, kp);
      if (!list) return list.fullError();
      *profiles = list.value();
    } else if (key == "x-dspy") {
      extension = &v;
    } else if (key.rfind("x-", 0) == 0) {
      // Extension fields are for the file's own use (anchors); compose ignores them too.
    } else if (key == "extends") {
      st = unsupported(k, kp, "write the service out in full");
    } else if (key == "build") {
      st = unsupported(k, kp, "env-manager runs images; build it and set 'image'");
    } else if (composeServiceKeys().count(key) != 0) {
      st = unsupported(k, kp);
    } else {
      return fail(k, "unknown key '" + kp + "' (not in the Compose Specification)");
    }
    if (!st.ok()) return st;
  }
  for (auto& [k, v] : env) env_from_files[k] = v;  // environment wins over env_file
  svc->environment = std::move(env_from_files);
  if (extension != nullptr) {
    if (Status st = readExtension(*extension, p + ".x-dspy", svc); !st.ok()) return st;
  }
  if (svc->image.empty()) return fail(node, "service '" + name + "': 'image' is required (env-manager does not build images)");
  return Status::Ok();
}

// Top-level networks / volumes: the Docker name each key stands for.
Status Reader::readTopLevel(const YAML::Node& n, const std::string& path, bool networks) {
  auto es = entries(n, path);
  if (!es) return es.fullError();
  auto& names = networks ? networks_ : volumes_;
  for (const auto& [k, v] : es.value()) {
    const std::string key = k.Scalar();
    const std::string kp = path + "." + key;
    std::string docker_name;
    bool external = false;
    auto items = entries(v, kp);
    if (!items) return items.fullError();
    for (const auto& [ik, iv] : items.value()) {
      const std::string item = ik.Scalar();
      const std::string ip = kp + "." + item;
      if (item == "name") {
        auto s = scalar(iv, ip);
        if (!s) return s.fullError();
        docker_name = s.value();
      } else if (item == "external") {
        if (iv.IsMap()) {
          if (Status st = unsupported(ik, ip, "external: {name: ...}; use name: with external: true"); !st.ok()) return st;
          external = true;
          continue;
        }
        auto b = boolean(iv, ip);
        if (!b) return b.fullError();
        external = b.value();
      } else if (item == "driver") {
        auto s = scalar(iv, ip);
        if (!s) return s.fullError();
        if (s.value() != (networks ? "bridge" : "local")) {
          if (Status st = unsupported(ik, ip, "driver " + s.value() + "; only " + (networks ? "bridge" : "local")); !st.ok()) return st;
        }
      } else if (item.rfind("x-", 0) == 0) {
      } else if (Status st = unsupported(ik, ip); !st.ok()) {
        return st;
      }
    }
    if (docker_name.empty()) docker_name = external ? key : project_ + "_" + key;
    names[key] = docker_name;
  }
  return Status::Ok();
}

std::string normalizeProject(const std::string& s) {
  std::string out;
  for (char c : s) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '_' || l == '-') out += l;
  }
  while (!out.empty() && (out[0] == '_' || out[0] == '-')) out.erase(0, 1);
  return out;
}

Result<ServicesFile> Reader::read(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Error{file_ + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": YAML syntax error: " + e.msg,
                 ErrorKind::InvalidArgument};
  }
  loadDotEnv();
  auto top = entries(root, "");
  if (!top) return top.fullError();
  YAML::Node services, networks, volumes;
  std::string name;
  for (const auto& [k, v] : top.value()) {
    const std::string key = k.Scalar();
    if (key == "services") services = v;
    else if (key == "networks") networks = v;
    else if (key == "volumes") volumes = v;
    else if (key == "version") {
      if (!v.IsScalar()) return fail(v, "key 'version': expected a string");  // informative only, as in compose v2
    } else if (key == "name") {
      auto s = scalar(v, "name");
      if (!s) return s.fullError();
      name = s.value();
    } else if (key.rfind("x-", 0) == 0) {
    } else if (key == "configs" || key == "secrets" || key == "include" || key == "models") {
      if (Status st = unsupported(k, key); !st.ok()) return st.fullError();
    } else {
      return fail(k, "unknown top-level key '" + key + "' (known: version, name, services, networks, volumes, "
                     "configs, secrets, include, x-*)");
    }
  }
  // The project: options, then the file's name, then COMPOSE_PROJECT_NAME, then the folder.
  project_ = options_.project;
  if (project_.empty()) project_ = name;
  if (project_.empty()) project_ = variable("COMPOSE_PROJECT_NAME").value_or("");
  if (project_.empty()) {
    project_ = std::filesystem::absolute(dir_.empty() ? "." : dir_).lexically_normal().filename().string();
  }
  project_ = normalizeProject(project_);
  if (project_.empty()) return Error{file_ + ": cannot make a project name; set 'name' in the file", ErrorKind::InvalidArgument};
  networks_["default"] = project_ + "_default";
  if (networks) {
    if (Status st = readTopLevel(networks, "networks", true); !st.ok()) return st.fullError();
  }
  if (volumes) {
    if (Status st = readTopLevel(volumes, "volumes", false); !st.ok()) return st.fullError();
  }
  if (!services) return Error{file_ + ": no 'services' defined", ErrorKind::InvalidArgument};
  auto list = entries(services, "services");
  if (!list) return list.fullError();

  std::set<std::string> active_profiles(options_.profiles.begin(), options_.profiles.end());
  if (auto env = variable("COMPOSE_PROFILES")) {
    std::stringstream ss(*env);
    std::string one;
    while (std::getline(ss, one, ',')) {
      if (!trim(one).empty()) active_profiles.insert(trim(one));
    }
  }
  ServicesFile out;
  out.format = "compose";
  out.project = project_;
  out.network = networks_["default"];
  std::vector<std::string> errors;
  std::set<std::string> inactive;
  static const std::regex kName("[a-z0-9][a-z0-9_.-]{0,62}");
  for (const auto& [k, v] : list.value()) {
    const std::string svc_name = k.Scalar();
    if (!std::regex_match(svc_name, kName)) {
      errors.push_back(locate(file_, k, "service name '" + svc_name +
                                            "' must match [a-z0-9][a-z0-9_.-]* (at most 63 characters; env-manager "
                                            "uses it in container and label values)"));
      continue;
    }
    ServiceSpec svc;
    std::vector<std::string> profiles;
    if (Status st = readService(svc_name, v, &svc, &profiles); !st.ok()) {
      errors.push_back(st.error());
      continue;
    }
    const bool active = profiles.empty() || std::any_of(profiles.begin(), profiles.end(), [&](const std::string& p) {
                          return active_profiles.count(p) != 0 || active_profiles.count("*") != 0;
                        });
    if (!active) {
      inactive.insert(svc_name);
      continue;
    }
    out.services.push_back(std::move(svc));
  }
  if (errors.empty()) {
    for (const auto& d : deps_) {
      if (out.find(d.service) == nullptr) continue;  // the dependent itself is not active
      if (d.dependency == d.service) {
        errors.push_back(locate(file_, d.where, "service '" + d.service + "' depends on itself"));
      } else if (out.find(d.dependency) == nullptr && d.required) {
        errors.push_back(locate(file_, d.where, "service '" + d.service + "' depends on " +
                                                    (inactive.count(d.dependency) ? "service '" + d.dependency +
                                                                                        "', which is in a profile not enabled"
                                                                                  : "unknown service '" + d.dependency + "'")));
      }
    }
  }
  if (errors.empty()) {
    for (auto& s : out.services) {
      for (const auto& d : dep_specs_[s.name]) {
        if (out.find(d.service) != nullptr) s.depends_on.push_back(d);
      }
      if (s.networks.empty()) s.networks.push_back({out.network, {}});
    }
    auto more = stackErrors(out, file_);
    errors.insert(errors.end(), more.begin(), more.end());
  }
  if (!errors.empty()) {
    std::string joined;
    for (const auto& e : errors) joined += (joined.empty() ? "" : "\n") + e;
    return Error{joined, ErrorKind::InvalidArgument};
  }
  out.warnings = std::move(warnings_);
  return out;
}

bool composeName(const std::string& path) {
  const std::string base = std::filesystem::path(path).filename().string();
  static const std::regex kCompose(R"((docker-)?compose([.-][A-Za-z0-9_.-]+)?\.ya?ml|.*\.compose\.ya?ml)");
  return std::regex_match(base, kCompose);
}

// A document is compose's when it has a top-level key only compose has, or a service
// key only compose has; our own format has `project`/`network` and `kind:` health checks.
bool composeContent(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return false;
  }
  if (!root.IsMap()) return false;
  if (root["project"] || root["network"]) return false;
  for (const char* key : {"version", "name", "volumes", "networks", "configs", "secrets", "include"}) {
    if (root[key]) return true;
  }
  for (const auto& kv : root) {
    if (kv.first.Scalar().rfind("x-", 0) == 0) return true;
  }
  const YAML::Node services = root["services"];
  if (!services || !services.IsMap()) return false;
  for (const auto& kv : services) {
    const YAML::Node s = kv.second;
    if (!s.IsMap()) continue;
    const YAML::Node health = s["healthcheck"];
    if (health && health.IsMap() && health["test"]) return true;
    const YAML::Node restart = s["restart"];
    if (restart && restart.IsScalar()) return true;
    for (const char* key : {"deploy", "env_file", "expose", "container_name", "profiles", "mem_limit", "build", "<<"}) {
      if (s[key]) return true;
    }
  }
  return false;
}

}  // namespace

Result<ServicesFile> parseCompose(const std::string& text, const std::string& label, const std::string& dir,
                                  const ServicesLoadOptions& options) {
  Reader reader(label, dir, options);
  return reader.read(text);
}

Result<ServicesFile> loadServicesFile(const std::string& path, const ServicesLoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open services file", ErrorKind::NotFound};
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  using F = ServicesLoadOptions::Format;
  const bool compose = options.format == F::Compose ||
                       (options.format == F::Auto && (composeName(path) || composeContent(text)));
  if (!compose) return parseServices(text, path);
  const auto slash = path.rfind('/');
  return parseCompose(text, path, slash == std::string::npos ? "." : path.substr(0, slash), options);
}

}  // namespace dspy::envmanager
