// The services model's values: durations and byte sizes as written, names of kinds and
// conditions, a service's definition hash and host ports, lookups in a services file.
#include "env_manager/services/ServiceSpec.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/Text.h"

namespace dspy::envmanager {

Result<std::chrono::milliseconds> parseDuration(const std::string& text) {
  // A plain number is seconds; otherwise one or more NUMBER UNIT parts ("1m30s", "1.5s").
  auto bad = [&](const std::string& why) {
    return Error{why.empty() ? "expected a duration like 1s, 250ms, 1m30s or 1h, got '" + text + "'" : why,
                 ErrorKind::InvalidArgument};
  };
  if (text.empty()) return bad("");
  double ms = 0;
  std::size_t i = 0;
  bool first = true;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) ++j;
    if (j == i) return bad("");
    char* end = nullptr;
    const std::string num = text.substr(i, j - i);
    const double v = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size()) return bad("bad number in duration '" + text + "'");
    std::size_t k = j;
    while (k < text.size() && ((text[k] >= 'a' && text[k] <= 'z') || (text[k] >= 'A' && text[k] <= 'Z'))) ++k;
    const std::string unit = text.substr(j, k - j);
    if (unit.empty()) {
      if (!first || k != text.size()) return bad("");
      ms = v * 1000;
    } else if (unit == "s") ms += v * 1000;
    else if (unit == "ms") ms += v;
    else if (unit == "us") ms += v / 1000;
    else if (unit == "m") ms += v * 60'000;
    else if (unit == "h") ms += v * 3'600'000;
    else return bad("unknown unit '" + unit + "' in duration '" + text + "' (use us, ms, s, m or h)");
    first = false;
    i = k;
  }
  if (ms > 7 * 24 * 3'600'000.0) return bad("duration '" + text + "' is longer than a week");
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

Result<std::int64_t> parseByteSize(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return Error{"expected a size like 512m or 1g, got '" + text + "'", ErrorKind::InvalidArgument};
  const auto number = parseInt(std::string_view(text).substr(0, i), 0);
  if (!number) return Error{"size '" + text + "' is too large", ErrorKind::InvalidArgument};
  const std::int64_t v = *number;
  std::string unit = text.substr(i);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  std::int64_t mult = 1;
  if (unit.empty()) mult = 1;
  else if (unit == "k") mult = 1024;
  else if (unit == "m") mult = 1024 * 1024;
  else if (unit == "g") mult = 1024LL * 1024 * 1024;
  else return Error{"unknown unit in size '" + text + "' (use k, m or g)", ErrorKind::InvalidArgument};
  if (v > (std::int64_t{1} << 50) / mult) return Error{"size '" + text + "' is too large", ErrorKind::InvalidArgument};
  return v * mult;
}

std::string toString(HealthCheckSpec::Kind kind) {
  switch (kind) {
    case HealthCheckSpec::Kind::None: return "none";
    case HealthCheckSpec::Kind::Http: return "http";
    case HealthCheckSpec::Kind::Tcp: return "tcp";
    case HealthCheckSpec::Kind::Redis: return "redis";
    case HealthCheckSpec::Kind::Exec: return "exec";
    case HealthCheckSpec::Kind::Docker: return "docker";
  }
  return "none";
}

std::string toString(DependencySpec::Condition c) {
  switch (c) {
    case DependencySpec::Condition::Started: return "service_started";
    case DependencySpec::Condition::Healthy: return "service_healthy";
    case DependencySpec::Condition::CompletedSuccessfully: return "service_completed_successfully";
  }
  return "service_started";
}

std::string ServiceSpec::definitionHash(const std::string& network) const {
  nlohmann::json j = {{"image", image}, {"command", command}, {"entrypoint", entrypoint}, {"env", environment},
                      {"labels", labels}, {"cpus", cpus}, {"memory", memory_bytes}, {"gpus", gpus},
                      {"grace", stop_grace_period.count()}, {"network", network}};
  for (const auto& p : ports) {
    j["ports"].push_back({p.host_ip, p.host_port, p.container_port, p.protocol});
    if (p.random_host_port) j["ports"].back().push_back("random");
  }
  for (const auto& v : volumes) {
    j["volumes"].push_back({v.source, v.target, v.read_only});
    if (v.tmpfs) j["volumes"].back().push_back("tmpfs");
  }
  // Fields added later join the hash only when set, so existing containers keep theirs.
  if (gpus && (gpu_count != -1 || !gpu_device_ids.empty())) j["gpu_select"] = {gpu_count, gpu_device_ids};
  if (pids_limit != 0) j["pids"] = pids_limit;
  if (!working_dir.empty()) j["workdir"] = working_dir;
  if (!user.empty()) j["user"] = user;
  if (!hostname.empty()) j["hostname"] = hostname;
  if (!container_name.empty()) j["container_name"] = container_name;
  if (!healthcheck.container_test.empty()) {
    j["docker_health"] = {healthcheck.container_test, healthcheck.interval.count(), healthcheck.timeout.count(),
                          healthcheck.retries, healthcheck.start_period.count()};
  }
  for (const auto& n : networks) j["networks"].push_back({n.name, n.aliases});
  return StableHash().add(j.dump()).hex();
}

std::vector<NetworkSpec> ServiceSpec::joinedNetworks(const std::string& stack_network) const {
  if (!networks.empty()) return networks;
  return {NetworkSpec{stack_network, {}}};
}

int ServiceSpec::hostPortFor(int container_port) const {
  for (const auto& p : ports) {
    if (p.container_port == container_port && p.host_port > 0) return p.host_port;
  }
  return 0;
}

const ServiceSpec* ServicesFile::find(const std::string& name) const {
  for (const auto& s : services) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::vector<std::string> ServicesFile::names() const {
  std::vector<std::string> out;
  for (const auto& s : services) out.push_back(s.name);
  return out;
}
}  // namespace dspy::envmanager
