// toNativeYaml: a services file written back as our own YAML (what `dspy-agent services
// import` prints for a compose file). Every field the model holds is written, so
// parseServices() of the text gives the same stack (a unit test compares hashes).
#include "env_manager/services/ServiceSpec.h"

#include <yaml-cpp/yaml.h>

namespace dspy::envmanager {
namespace {

std::string duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

void stringList(YAML::Emitter& out, const std::vector<std::string>& v) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const auto& s : v) out << YAML::DoubleQuoted << s;
  out << YAML::EndSeq;
}

void stringMap(YAML::Emitter& out, const std::map<std::string, std::string>& m) {
  out << YAML::BeginMap;
  for (const auto& [k, v] : m) out << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
  out << YAML::EndMap;
}

std::string restartName(RestartSpec::Policy p) {
  switch (p) {
    case RestartSpec::Policy::No: return "no";
    case RestartSpec::Policy::OnFailure: return "on-failure";
    case RestartSpec::Policy::Always: return "always";
    case RestartSpec::Policy::UnlessStopped: return "unless-stopped";
  }
  return "on-failure";
}

void service(YAML::Emitter& out, const ServiceSpec& s) {
  const ServiceSpec d;  // defaults: only what differs is written
  out << YAML::Key << s.name << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "image" << YAML::Value << s.image;
  if (!s.container_name.empty()) out << YAML::Key << "container_name" << YAML::Value << s.container_name;
  if (!s.entrypoint.empty()) {
    out << YAML::Key << "entrypoint" << YAML::Value;
    stringList(out, s.entrypoint);
  }
  if (!s.command.empty()) {
    out << YAML::Key << "command" << YAML::Value;
    stringList(out, s.command);
  }
  if (!s.environment.empty()) {
    out << YAML::Key << "environment" << YAML::Value;
    stringMap(out, s.environment);
  }
  if (!s.labels.empty()) {
    out << YAML::Key << "labels" << YAML::Value;
    stringMap(out, s.labels);
  }
  if (!s.working_dir.empty()) out << YAML::Key << "working_dir" << YAML::Value << s.working_dir;
  if (!s.user.empty()) out << YAML::Key << "user" << YAML::Value << YAML::DoubleQuoted << s.user;
  if (!s.hostname.empty()) out << YAML::Key << "hostname" << YAML::Value << s.hostname;
  if (!s.ports.empty()) {
    out << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq;
    for (const auto& p : s.ports) {
      if (p.host_ip.empty() && p.published()) {
        out << YAML::Flow << YAML::BeginMap << YAML::Key << "target" << YAML::Value << p.container_port;
        out << YAML::Key << "published" << YAML::Value
            << (p.random_host_port ? std::string("random") : std::to_string(p.host_port));
        out << YAML::Key << "host_ip" << YAML::Value << YAML::DoubleQuoted << "";
        out << YAML::Key << "protocol" << YAML::Value << p.protocol << YAML::EndMap;
        continue;
      }
      std::string text;
      if (p.published()) {
        text = p.host_ip + ":" + (p.random_host_port ? "" : std::to_string(p.host_port)) + ":";
      }
      text += std::to_string(p.container_port) + "/" + p.protocol;
      out << YAML::DoubleQuoted << text;
    }
    out << YAML::EndSeq;
  }
  std::vector<std::string> tmpfs;
  bool any_volume = false;
  for (const auto& v : s.volumes) {
    if (v.tmpfs) {
      tmpfs.push_back(v.target);
      continue;
    }
    if (!any_volume) out << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq;
    any_volume = true;
    if (v.create_host_path) {
      out << YAML::Flow << YAML::BeginMap << YAML::Key << "source" << YAML::Value << v.source << YAML::Key << "target"
          << YAML::Value << v.target << YAML::Key << "read_only" << YAML::Value << v.read_only << YAML::Key
          << "create_host_path" << YAML::Value << true << YAML::EndMap;
    } else {
      out << YAML::DoubleQuoted << (v.source.empty() ? v.target : v.source + ":" + v.target + (v.read_only ? ":ro" : ""));
    }
  }
  if (any_volume) out << YAML::EndSeq;
  if (!tmpfs.empty()) {
    out << YAML::Key << "tmpfs" << YAML::Value;
    stringList(out, tmpfs);
  }
  if (!s.networks.empty()) {
    out << YAML::Key << "networks" << YAML::Value << YAML::BeginMap;
    for (const auto& n : s.networks) {
      out << YAML::Key << n.name << YAML::Value;
      if (n.aliases.empty()) {
        out << YAML::Null;
      } else {
        out << YAML::BeginMap << YAML::Key << "aliases" << YAML::Value;
        stringList(out, n.aliases);
        out << YAML::EndMap;
      }
    }
    out << YAML::EndMap;
  }
  if (!s.depends_on.empty()) {
    out << YAML::Key << "depends_on" << YAML::Value << YAML::BeginMap;
    for (const auto& dep : s.depends_on) {
      out << YAML::Key << dep.service << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "condition"
          << YAML::Value << toString(dep.condition) << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  const auto& h = s.healthcheck;
  out << YAML::Key << "healthcheck" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << toString(h.kind);
  if (h.port != 0) out << YAML::Key << "port" << YAML::Value << h.port;
  if (h.kind == HealthCheckSpec::Kind::Http) out << YAML::Key << "path" << YAML::Value << h.path;
  if (!h.command.empty()) {
    out << YAML::Key << "command" << YAML::Value;
    stringList(out, h.command);
  }
  if (!h.container_test.empty()) {
    out << YAML::Key << "container_test" << YAML::Value;
    stringList(out, h.container_test);
  }
  out << YAML::Key << "interval" << YAML::Value << duration(h.interval);
  out << YAML::Key << "timeout" << YAML::Value << duration(h.timeout);
  out << YAML::Key << "start_period" << YAML::Value << duration(h.start_period);
  out << YAML::Key << "retries" << YAML::Value << h.retries;
  out << YAML::EndMap;
  const auto& r = s.restart;
  out << YAML::Key << "restart" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "policy" << YAML::Value << YAML::DoubleQuoted << restartName(r.policy);
  out << YAML::Key << "backoff_initial" << YAML::Value << duration(r.backoff_initial);
  out << YAML::Key << "backoff_max" << YAML::Value << duration(r.backoff_max);
  out << YAML::Key << "reset_after" << YAML::Value << duration(r.reset_after);
  out << YAML::Key << "max_restarts" << YAML::Value << r.max_restarts;
  out << YAML::Key << "on_unhealthy" << YAML::Value << r.on_unhealthy;
  out << YAML::EndMap;
  out << YAML::Key << "required" << YAML::Value << s.required;
  if (s.cpus != d.cpus) out << YAML::Key << "cpus" << YAML::Value << s.cpus;
  if (s.memory_bytes != 0) out << YAML::Key << "memory" << YAML::Value << std::to_string(s.memory_bytes);
  if (s.gpus) {
    out << YAML::Key << "gpus" << YAML::Value << true;
    if (s.gpu_count != -1) out << YAML::Key << "gpu_count" << YAML::Value << s.gpu_count;
    if (!s.gpu_device_ids.empty()) {
      out << YAML::Key << "gpu_device_ids" << YAML::Value;
      stringList(out, s.gpu_device_ids);
    }
  }
  if (s.pids_limit != 0) out << YAML::Key << "pids_limit" << YAML::Value << s.pids_limit;
  out << YAML::Key << "stop_grace_period" << YAML::Value << s.stop_grace_period.count();
  out << YAML::EndMap;
}

}  // namespace

std::string toNativeYaml(const ServicesFile& file) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "network" << YAML::Value << file.network;
  out << YAML::Key << "project" << YAML::Value << file.project;
  out << YAML::Key << "services" << YAML::Value << YAML::BeginMap;
  for (const auto& s : file.services) service(out, s);
  out << YAML::EndMap << YAML::EndMap;
  std::string text = out.c_str();
  text += "\n";
  return text;
}

}  // namespace dspy::envmanager
