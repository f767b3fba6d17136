// Reading a services file: YAML to ServiceSpecs, validated (names, images, ports,
// volumes, health checks, restart policies, dependencies without cycles).
#include "env_manager/services/ServiceSpec.h"

#include "common/Text.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "common/ConfigSchema.h"

namespace dspy::envmanager {
namespace {

using config::locate;

std::string kindName(const YAML::Node& n) {
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "no value";
  return "'" + n.Scalar() + "'";
}

Status err(const std::string& file, const YAML::Node& n, const std::string& msg) { return Error{locate(file, n, msg)}; }

// command / entrypoint: a list of strings, or one string split on white space.
Status parseArgv(const YAML::Node& n, const std::string& file, const std::string& path, std::vector<std::string>* out) {
  out->clear();
  if (n.IsScalar()) {
    std::istringstream ss(n.Scalar());
    std::string word;
    while (ss >> word) out->push_back(word);
    return Status::Ok();
  }
  if (!n.IsSequence()) return err(file, n, "key '" + path + "': expected a string or a list, got " + kindName(n));
  for (const auto& item : n) {
    if (!item.IsScalar()) return err(file, item, "key '" + path + "': every item must be a string");
    out->push_back(item.Scalar());
  }
  return Status::Ok();
}

// environment / labels: a mapping, or a list of KEY=VALUE.
Status parseStringMap(const YAML::Node& n, const std::string& file, const std::string& path,
                      std::map<std::string, std::string>* out) {
  out->clear();
  if (n.IsNull()) return Status::Ok();
  if (n.IsMap()) {
    for (const auto& kv : n) {
      const YAML::Node key = kv.first;
      const YAML::Node value = kv.second;
      if (!value.IsScalar() && !value.IsNull()) {
        return err(file, value, "key '" + path + "." + key.Scalar() + "': expected a string, got " + kindName(value));
      }
      if (!out->emplace(key.Scalar(), value.IsNull() ? "" : value.Scalar()).second) {
        return err(file, key, "duplicate key '" + path + "." + key.Scalar() + "'");
      }
    }
    return Status::Ok();
  }
  if (n.IsSequence()) {
    for (const auto& item : n) {
      if (!item.IsScalar()) return err(file, item, "key '" + path + "': items must be KEY=VALUE strings");
      const std::string s = item.Scalar();
      const auto eq = s.find('=');
      if (eq == 0 || eq == std::string::npos) return err(file, item, "key '" + path + "': expected KEY=VALUE, got '" + s + "'");
      (*out)[s.substr(0, eq)] = s.substr(eq + 1);
    }
    return Status::Ok();
  }
  return err(file, n, "key '" + path + "': expected a mapping or a list, got " + kindName(n));
}

bool parsePort(const std::string& s, int* out) {
  auto v = parseInt(s, 1, 65535);
  if (!v) return false;
  *out = static_cast<int>(*v);
  return true;
}

// "[HOST_IP:]HOST:CONTAINER[/proto]" or "CONTAINER[/proto]" (not published); an empty
// HOST ("127.0.0.1::5000") publishes on a port Docker picks. An item may also be a
// mapping {target, published, host_ip, protocol} (host_ip "" = every interface).
Status parsePorts(const YAML::Node& n, const std::string& file, const std::string& path, std::vector<PortSpec>* out) {
  out->clear();
  if (n.IsNull()) return Status::Ok();
  if (!n.IsSequence()) return err(file, n, "key '" + path + "': expected a list like [\"127.0.0.1:6379:6379\"]");
  for (const auto& item : n) {
    PortSpec p;
    if (item.IsMap()) {
      config::Schema m;
      const std::string pp = path + "[]";
      int target = 0;
      std::string published;
      m.integer(pp + ".target", &target, 1, 65535);
      m.string(pp + ".published", &published);
      m.custom(pp + ".host_ip", [&](const YAML::Node& v, const std::string&, const std::string&) {
        p.host_ip = v.IsNull() ? "" : v.Scalar();
        return Status::Ok();
      });
      m.choice(pp + ".protocol", &p.protocol, {"tcp", "udp"});
      if (Status st = m.apply(item, file, pp); !st.ok()) return st;
      if (target == 0) return err(file, item, "key '" + path + "': a port mapping needs 'target'");
      p.container_port = target;
      if (published == "random") p.random_host_port = true;
      else if (!published.empty() && !parsePort(published, &p.host_port)) {
        return err(file, item, "key '" + path + "': 'published' must be a port or random, got '" + published + "'");
      }
      out->push_back(p);
      continue;
    }
    if (!item.IsScalar()) return err(file, item, "key '" + path + "': every item must be a string or a mapping");
    std::string s = item.Scalar();
    if (auto slash = s.find('/'); slash != std::string::npos) {
      p.protocol = s.substr(slash + 1);
      s.erase(slash);
      if (p.protocol != "tcp" && p.protocol != "udp") {
        return err(file, item, "key '" + path + "': protocol must be tcp or udp, got '" + p.protocol + "'");
      }
    }
    std::vector<std::string> parts;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ':')) parts.push_back(part);
    bool ok = false;
    if (parts.size() == 1) {
      ok = parsePort(parts[0], &p.container_port);
    } else if (parts.size() == 2) {
      ok = parsePort(parts[0], &p.host_port) && parsePort(parts[1], &p.container_port);
    } else if (parts.size() == 3) {
      p.host_ip = parts[0];
      p.random_host_port = parts[1].empty();
      ok = !p.host_ip.empty() && (p.random_host_port || parsePort(parts[1], &p.host_port)) &&
           parsePort(parts[2], &p.container_port);
    }
    if (!ok) {
      return err(file, item, "key '" + path + "': expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp], got '" +
                                 item.Scalar() + "'");
    }
    out->push_back(p);
  }
  return Status::Ok();
}

// "volume:/target[:ro]" or "/host/path:/target[:ro]" (binds need absolute paths).
Status parseVolumes(const YAML::Node& n, const std::string& file, const std::string& path, std::vector<VolumeSpec>* out) {
  out->clear();
  if (n.IsNull()) return Status::Ok();
  if (!n.IsSequence()) return err(file, n, "key '" + path + "': expected a list like [\"redis_data:/data\"]");
  static const std::regex kVolumeName("[A-Za-z0-9][A-Za-z0-9_.-]*");
  for (const auto& item : n) {
    if (item.IsMap()) {  // {source, target, read_only, create_host_path}
      VolumeSpec v;
      config::Schema m;
      const std::string pp = path + "[]";
      m.string(pp + ".source", &v.source);
      m.string(pp + ".target", &v.target);
      m.boolean(pp + ".read_only", &v.read_only);
      m.boolean(pp + ".create_host_path", &v.create_host_path);
      if (Status st = m.apply(item, file, pp); !st.ok()) return st;
      if (v.target.empty() || v.target[0] != '/') {
        return err(file, item, "key '" + path + "': the target must be an absolute path, got '" + v.target + "'");
      }
      if (!v.source.empty() && v.source[0] != '/' && !std::regex_match(v.source, kVolumeName)) {
        return err(file, item, "key '" + path + "': the source must be a volume name or an absolute host path, got '" +
                                   v.source + "'");
      }
      if (v.create_host_path && !v.bind()) {
        return err(file, item, "key '" + path + "': create_host_path is for binds (an absolute source path)");
      }
      out->push_back(v);
      continue;
    }
    if (!item.IsScalar()) return err(file, item, "key '" + path + "': every item must be a string or a mapping");
    const std::string s = item.Scalar();
    std::vector<std::string> parts;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ':')) parts.push_back(part);
    VolumeSpec v;
    if (parts.size() == 1 && !parts[0].empty() && parts[0][0] == '/') {  // an anonymous volume
      v.target = parts[0];
      out->push_back(v);
      continue;
    }
    if (parts.size() < 2 || parts.size() > 3 || (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw")) {
      return err(file, item, "key '" + path + "': expected SOURCE:TARGET[:ro] or /TARGET, got '" + s + "'");
    }
    v.source = parts[0];
    v.target = parts[1];
    v.read_only = parts.size() == 3 && parts[2] == "ro";
    if (v.target.empty() || v.target[0] != '/') {
      return err(file, item, "key '" + path + "': the target must be an absolute path, got '" + v.target + "'");
    }
    if (v.source.empty() || (v.source[0] != '/' && !std::regex_match(v.source, kVolumeName))) {
      return err(file, item, "key '" + path + "': the source must be a volume name or an absolute host path (relative paths are refused), got '" +
                                 v.source + "'");
    }
    out->push_back(v);
  }
  return Status::Ok();
}

Status durationField(const YAML::Node& n, const std::string& file, const std::string& path,
                     std::chrono::milliseconds* out) {
  if (!n.IsScalar()) return err(file, n, "key '" + path + "': expected a duration like 1s or 250ms, got " + kindName(n));
  auto d = dspy::envmanager::parseDuration(n.Scalar());
  if (!d) return err(file, n, "key '" + path + "': " + d.error());
  *out = d.value();
  return Status::Ok();
}

// networks: a list of Docker network names, or a mapping name -> {aliases: [...]} / null.
Status parseNetworks(const YAML::Node& n, const std::string& file, const std::string& path, std::vector<NetworkSpec>* out) {
  out->clear();
  if (n.IsNull()) return Status::Ok();
  static const std::regex kNetName("[A-Za-z0-9][A-Za-z0-9_.-]*");
  auto add = [&](const YAML::Node& where, const std::string& name) -> Status {
    if (!std::regex_match(name, kNetName)) return err(file, where, "key '" + path + "': bad network name '" + name + "'");
    for (const auto& e : *out) {
      if (e.name == name) return err(file, where, "key '" + path + "': network '" + name + "' is listed twice");
    }
    out->push_back({name, {}});
    return Status::Ok();
  };
  if (n.IsSequence()) {
    for (const auto& item : n) {
      if (!item.IsScalar()) return err(file, item, "key '" + path + "': every item must be a network name");
      if (Status s = add(item, item.Scalar()); !s.ok()) return s;
    }
    return Status::Ok();
  }
  if (!n.IsMap()) return err(file, n, "key '" + path + "': expected a list or a mapping, got " + kindName(n));
  for (const auto& kv : n) {
    const YAML::Node key = kv.first;
    const YAML::Node value = kv.second;
    if (Status s = add(key, key.Scalar()); !s.ok()) return s;
    if (value.IsNull()) continue;
    config::Schema m;
    const std::string pp = path + "." + key.Scalar();
    m.stringList(pp + ".aliases", &out->back().aliases);
    if (Status s = m.apply(value, file, pp); !s.ok()) return s;
  }
  return Status::Ok();
}

struct DependencyMark {
  std::string service;
  std::string dependency;
  std::string where;  // file:line:col of the entry
};

Status parseDependsOn(const YAML::Node& n, const std::string& file, const std::string& path,
                      std::vector<DependencySpec>* out, std::vector<DependencyMark>* marks, const std::string& service) {
  out->clear();
  if (n.IsNull()) return Status::Ok();
  auto add = [&](const YAML::Node& where, const std::string& dep, DependencySpec::Condition c) -> Status {
    for (const auto& d : *out) {
      if (d.service == dep) return err(file, where, "key '" + path + "': '" + dep + "' is listed twice");
    }
    out->push_back({dep, c});
    marks->push_back({service, dep, locate(file, where, "")});
    return Status::Ok();
  };
  if (n.IsSequence()) {
    for (const auto& item : n) {
      if (!item.IsScalar()) return err(file, item, "key '" + path + "': every item must be a service name");
      if (Status s = add(item, item.Scalar(), DependencySpec::Condition::Started); !s.ok()) return s;
    }
    return Status::Ok();
  }
  if (!n.IsMap()) return err(file, n, "key '" + path + "': expected a list or a mapping, got " + kindName(n));
  for (const auto& kv : n) {
    const YAML::Node key = kv.first;
    const YAML::Node value = kv.second;
    auto c = DependencySpec::Condition::Started;
    if (!value.IsNull()) {
      if (!value.IsMap()) return err(file, value, "key '" + path + "." + key.Scalar() + "': expected {condition: ...}");
      for (const auto& ckv : value) {
        const YAML::Node ck = ckv.first;
        const YAML::Node cv = ckv.second;
        if (ck.Scalar() != "condition") {
          return err(file, ck, "unknown key '" + path + "." + key.Scalar() + "." + ck.Scalar() + "' (known keys: condition)");
        }
        const std::string cond = cv.IsScalar() ? cv.Scalar() : "";
        if (cond == "service_started") c = DependencySpec::Condition::Started;
        else if (cond == "service_healthy") c = DependencySpec::Condition::Healthy;
        else if (cond == "service_completed_successfully") c = DependencySpec::Condition::CompletedSuccessfully;
        else {
          return err(file, cv, "key '" + path + "." + key.Scalar() +
                                   ".condition': expected service_started, service_healthy or "
                                   "service_completed_successfully, got " + kindName(cv));
        }
      }
    }
    if (Status s = add(key, key.Scalar(), c); !s.ok()) return s;
  }
  return Status::Ok();
}

Status parseService(const YAML::Node& node, const std::string& file, const std::string& name, ServiceSpec* svc,
                    std::vector<DependencyMark>* marks) {
  const std::string p = "services." + name;
  svc->name = name;
  std::string health_kind = "none";
  std::string restart_policy = "on-failure";
  std::string memory;
  int grace_s = 10;
  config::Schema s;
  s.string(p + ".image", &svc->image);
  s.custom(p + ".command", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parseArgv(n, f, path, &svc->command);
  });
  s.custom(p + ".entrypoint", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parseArgv(n, f, path, &svc->entrypoint);
  });
  s.custom(p + ".environment", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parseStringMap(n, f, path, &svc->environment);
  });
  s.custom(p + ".labels", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parseStringMap(n, f, path, &svc->labels);
  });
  s.custom(p + ".ports", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parsePorts(n, f, path, &svc->ports);
  });
  s.custom(p + ".volumes", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parseVolumes(n, f, path, &svc->volumes);
  });
  s.custom(p + ".depends_on", [svc, marks, name](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parseDependsOn(n, f, path, &svc->depends_on, marks, name);
  });
  s.choice(p + ".healthcheck.kind", &health_kind, {"none", "http", "tcp", "redis", "exec", "docker"});
  s.integer(p + ".healthcheck.port", &svc->healthcheck.port, 1, 65535);
  s.string(p + ".healthcheck.path", &svc->healthcheck.path);
  s.custom(p + ".healthcheck.command", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parseArgv(n, f, path, &svc->healthcheck.command);
  });
  for (const auto& entry : {std::pair<const char*, std::chrono::milliseconds*>{"interval", &svc->healthcheck.interval},
                          {"timeout", &svc->healthcheck.timeout},
                          {"start_period", &svc->healthcheck.start_period}}) {
    std::chrono::milliseconds* dst = entry.second;
    s.custom(p + ".healthcheck." + entry.first, [dst](const YAML::Node& n, const std::string& f, const std::string& path) {
      return durationField(n, f, path, dst);
    });
  }
  s.integer(p + ".healthcheck.retries", &svc->healthcheck.retries, 1, 1000);
  s.choice(p + ".restart.policy", &restart_policy, {"no", "on-failure", "always", "unless-stopped"});
  for (const auto& entry : {std::pair<const char*, std::chrono::milliseconds*>{"backoff_initial", &svc->restart.backoff_initial},
                          {"backoff_max", &svc->restart.backoff_max},
                          {"reset_after", &svc->restart.reset_after}}) {
    std::chrono::milliseconds* dst = entry.second;
    s.custom(p + ".restart." + entry.first, [dst](const YAML::Node& n, const std::string& f, const std::string& path) {
      return durationField(n, f, path, dst);
    });
  }
  s.integer(p + ".restart.max_restarts", &svc->restart.max_restarts, 0, 10000);
  s.boolean(p + ".restart.on_unhealthy", &svc->restart.on_unhealthy);
  s.boolean(p + ".required", &svc->required);
  s.number(p + ".cpus", &svc->cpus, 0, 1024);
  s.string(p + ".memory", &memory);
  s.boolean(p + ".gpus", &svc->gpus);
  s.integer(p + ".gpu_count", &svc->gpu_count, -1, 1024);
  s.stringList(p + ".gpu_device_ids", &svc->gpu_device_ids);
  s.integer(p + ".pids_limit", &svc->pids_limit, -1, std::int64_t{1} << 31);
  s.integer(p + ".stop_grace_period", &grace_s, 0, 3600);
  s.string(p + ".working_dir", &svc->working_dir);
  s.string(p + ".user", &svc->user);
  s.string(p + ".hostname", &svc->hostname);
  s.string(p + ".container_name", &svc->container_name);
  s.custom(p + ".networks", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    return parseNetworks(n, f, path, &svc->networks);
  });
  std::vector<std::string> tmpfs;
  s.stringList(p + ".tmpfs", &tmpfs);
  s.custom(p + ".healthcheck.container_test", [svc](const YAML::Node& n, const std::string& f, const std::string& path) {
    if (!n.IsSequence()) return err(f, n, "key '" + path + "': expected a list like [CMD, redis-cli, ping]");
    if (Status st = parseArgv(n, f, path, &svc->healthcheck.container_test); !st.ok()) return st;
    const auto& t = svc->healthcheck.container_test;
    if (t.empty() || (t[0] != "CMD" && t[0] != "CMD-SHELL" && t[0] != "NONE") || (t[0] != "NONE" && t.size() < 2)) {
      return err(f, n, "key '" + path + "': expected [CMD, ARG...], [CMD-SHELL, COMMAND] or [NONE]");
    }
    return Status::Ok();
  });
  if (Status st = s.apply(node, file, p); !st.ok()) return st;
  for (const auto& t : tmpfs) {
    if (t.empty() || t[0] != '/') return err(file, node["tmpfs"], "key '" + p + ".tmpfs': targets must be absolute paths");
    VolumeSpec v;
    v.target = t;
    v.tmpfs = true;
    svc->volumes.push_back(v);
  }

  if (svc->image.empty()) return err(file, node, "service '" + name + "': 'image' is required");
  if (!memory.empty()) {
    auto m = parseByteSize(memory);
    if (!m) return err(file, node["memory"], "key '" + p + ".memory': " + m.error());
    svc->memory_bytes = m.value();
  }
  svc->stop_grace_period = std::chrono::seconds(grace_s);
  static const std::map<std::string, HealthCheckSpec::Kind> kinds = {
      {"none", HealthCheckSpec::Kind::None}, {"http", HealthCheckSpec::Kind::Http},
      {"tcp", HealthCheckSpec::Kind::Tcp},   {"redis", HealthCheckSpec::Kind::Redis},
      {"exec", HealthCheckSpec::Kind::Exec}, {"docker", HealthCheckSpec::Kind::Docker}};
  svc->healthcheck.kind = kinds.at(health_kind);
  const auto k = svc->healthcheck.kind;
  if ((k == HealthCheckSpec::Kind::Http || k == HealthCheckSpec::Kind::Tcp || k == HealthCheckSpec::Kind::Redis) &&
      svc->healthcheck.port == 0) {
    return err(file, node["healthcheck"], "service '" + name + "': a " + health_kind + " health check needs 'port'");
  }
  if (k == HealthCheckSpec::Kind::Exec && svc->healthcheck.command.empty()) {
    return err(file, node["healthcheck"], "service '" + name + "': an exec health check needs 'command'");
  }
  static const std::map<std::string, RestartSpec::Policy> policies = {
      {"no", RestartSpec::Policy::No}, {"on-failure", RestartSpec::Policy::OnFailure},
      {"always", RestartSpec::Policy::Always}, {"unless-stopped", RestartSpec::Policy::UnlessStopped}};
  svc->restart.policy = policies.at(restart_policy);
  if (svc->restart.backoff_max < svc->restart.backoff_initial) {
    return err(file, node["restart"], "service '" + name + "': restart.backoff_max is smaller than backoff_initial");
  }
  return Status::Ok();
}

// Depth-first search for a cycle; returns it as "a -> b -> a", or "".
std::string findCycle(const ServicesFile& f) {
  std::map<std::string, int> color;  // 0 white, 1 grey, 2 black
  std::vector<std::string> stack;
  std::string cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& n) {
    color[n] = 1;
    stack.push_back(n);
    const ServiceSpec* s = f.find(n);
    for (const auto& d : s->depends_on) {
      if (color[d.service] == 1) {
        auto it = std::find(stack.begin(), stack.end(), d.service);
        for (; it != stack.end(); ++it) cycle += *it + " -> ";
        cycle += d.service;
        return true;
      }
      if (color[d.service] == 0 && visit(d.service)) return true;
    }
    stack.pop_back();
    color[n] = 2;
    return false;
  };
  for (const auto& s : f.services) {
    if (color[s.name] == 0 && visit(s.name)) return cycle;
  }
  return "";
}


}  // namespace

std::vector<std::string> stackErrors(const ServicesFile& out, const std::string& file) {
  std::vector<std::string> errors;
  if (std::string cycle = findCycle(out); !cycle.empty()) {
    errors.push_back(file + ": dependency cycle: " + cycle);
  }
  std::map<std::pair<int, std::string>, std::string> taken;  // (port, proto) -> service
  for (const auto& s : out.services) {
    for (const auto& p : s.ports) {
      if (p.host_port == 0) continue;
      auto [it, fresh] = taken.emplace(std::make_pair(p.host_port, p.protocol), s.name);
      if (!fresh && it->second != s.name) {
        errors.push_back(file + ": services '" + it->second + "' and '" + s.name + "' both publish host port " +
                         std::to_string(p.host_port) + "/" + p.protocol);
      }
    }
  }
  std::set<std::string> container_names;
  for (const auto& s : out.services) {
    if (!s.container_name.empty() && !container_names.insert(s.container_name).second) {
      errors.push_back(file + ": container_name '" + s.container_name + "' is used by two services");
    }
  }
  if (out.services.empty()) errors.push_back(file + ": no services defined");
  return errors;
}

Result<ServicesFile> parseServices(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Error{file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": YAML syntax error: " + e.msg,
                 ErrorKind::InvalidArgument};
  }
  ServicesFile out;
  std::vector<DependencyMark> marks;
  std::vector<std::string> errors;
  static const std::regex kName("[a-z0-9][a-z0-9_.-]{0,62}");
  config::Schema top;
  top.string("network", &out.network);
  top.string("project", &out.project);
  top.custom("services", [&](const YAML::Node& n, const std::string& f, const std::string&) -> Status {
    if (!n.IsMap()) return err(f, n, "key 'services': expected a mapping of service name to definition");
    std::set<std::string> seen;
    for (const auto& kv : n) {
      const YAML::Node key = kv.first;
      const YAML::Node value = kv.second;
      const std::string name = key.Scalar();
      if (!std::regex_match(name, kName)) {
        errors.push_back(locate(f, key, "service name '" + name + "' must match [a-z0-9][a-z0-9_.-]* (at most 63 characters)"));
        continue;
      }
      if (!seen.insert(name).second) {
        errors.push_back(locate(f, key, "service '" + name + "' is defined twice"));
        continue;
      }
      ServiceSpec svc;
      if (!value.IsMap()) {
        errors.push_back(locate(f, value, "service '" + name + "': expected a mapping, got " + kindName(value)));
        continue;
      }
      if (Status s = parseService(value, f, name, &svc, &marks); !s.ok()) {
        errors.push_back(s.error());
        continue;
      }
      out.services.push_back(std::move(svc));
    }
    return Status::Ok();
  });
  if (Status s = top.apply(root, file, ""); !s.ok()) errors.push_back(s.error());
  if (errors.empty()) {
    for (const auto& m : marks) {
      if (out.find(m.dependency) == nullptr) {
        errors.push_back(m.where + "service '" + m.service + "' depends on unknown service '" + m.dependency + "'");
      } else if (m.dependency == m.service) {
        errors.push_back(m.where + "service '" + m.service + "' depends on itself");
      }
    }
  }
  if (errors.empty()) errors = stackErrors(out, file);
  if (!errors.empty()) {
    std::string joined;
    for (const auto& e : errors) joined += (joined.empty() ? "" : "\n") + e;
    return Error{joined, ErrorKind::InvalidArgument};
  }
  return out;
}

}  // namespace dspy::envmanager
