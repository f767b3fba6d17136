// The services model's values: durations and byte sizes as written, names of kinds and
// conditions, a service's definition hash and host ports, lookups in a services file.
#include "env_manager/services/ServiceSpec.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/Text.h"

namespace dspy::envmanager {

Result<std::chrono::milliseconds> parseDuration(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return Error{"expected a duration like 1s, 250ms, 2m or 1h, got '" + text + "'", ErrorKind::InvalidArgument};
  char* end = nullptr;
  const std::string num = text.substr(0, i);
  const double v = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size()) return Error{"bad number in duration '" + text + "'", ErrorKind::InvalidArgument};
  const std::string unit = text.substr(i);
  double ms = 0;
  if (unit.empty() || unit == "s") ms = v * 1000;
  else if (unit == "ms") ms = v;
  else if (unit == "m") ms = v * 60'000;
  else if (unit == "h") ms = v * 3'600'000;
  else return Error{"unknown unit '" + unit + "' in duration '" + text + "' (use ms, s, m or h)", ErrorKind::InvalidArgument};
  if (ms > 7 * 24 * 3'600'000.0) return Error{"duration '" + text + "' is longer than a week", ErrorKind::InvalidArgument};
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
  for (const auto& p : ports) j["ports"].push_back({p.host_ip, p.host_port, p.container_port, p.protocol});
  for (const auto& v : volumes) j["volumes"].push_back({v.source, v.target, v.read_only});
  return StableHash().add(j.dump()).hex();
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
