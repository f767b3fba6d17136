// The Engine's JSON answers, read without exceptions (see DockerJson.h).
#include "env_manager/docker/DockerJson.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "env_manager/docker/StreamDecoders.h"

namespace dspy::envmanager::docker {
namespace {

using json = nlohmann::json;

json parse(std::string_view text) { return json::parse(text, nullptr, /*allow_exceptions=*/false); }

const json* field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string str(const json& j, const char* key) {
  const json* f = field(j, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
}

bool boolean(const json& j, const char* key) {
  const json* f = field(j, key);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}

double number(const json& j, const char* key, double fallback) {
  const json* f = field(j, key);
  if (f == nullptr || !f->is_number()) return fallback;
  const double v = f->get<double>();
  return std::isfinite(v) ? v : fallback;
}

// An integer field; a float out of the type's range, or not finite, is the fallback.
template <typename Int>
Int integer(const json& j, const char* key, Int fallback) {
  const json* f = field(j, key);
  if (f == nullptr || !f->is_number()) return fallback;
  if (f->is_number_integer() && !f->is_number_unsigned()) {
    const auto v = f->get<std::int64_t>();
    if (v < static_cast<std::int64_t>(std::numeric_limits<Int>::min()) ||
        v > static_cast<std::int64_t>(std::numeric_limits<Int>::max())) {
      return fallback;
    }
    return static_cast<Int>(v);
  }
  if (f->is_number_unsigned()) {
    const auto v = f->get<std::uint64_t>();
    return v > static_cast<std::uint64_t>(std::numeric_limits<Int>::max()) ? fallback : static_cast<Int>(v);
  }
  const double v = f->get<double>();
  // Compare in double: the limits of 64-bit types round up, hence the strict '<'.
  if (!std::isfinite(v) || v < static_cast<double>(std::numeric_limits<Int>::min()) ||
      v >= static_cast<double>(std::numeric_limits<Int>::max())) {
    return fallback;
  }
  return static_cast<Int>(v);
}

const json& object(const json& j, const char* key) {
  static const json kEmpty = json::object();
  const json* f = field(j, key);
  return f != nullptr && f->is_object() ? *f : kEmpty;
}

Labels stringMap(const json& j) {
  Labels out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

std::int64_t unixSeconds(const std::string& rfc3339) {
  if (rfc3339.empty() || rfc3339.rfind("0001-", 0) == 0) return 0;
  auto ns = parseRfc3339Nanos(rfc3339);
  return ns ? *ns / 1'000'000'000 : 0;
}

}  // namespace

ContainerInfo parseInspect(const std::string& body) {
  ContainerInfo info;
  const json j = parse(body);
  if (!j.is_object()) return info;
  info.id = str(j, "Id");
  info.name = str(j, "Name");
  if (!info.name.empty() && info.name[0] == '/') info.name.erase(0, 1);
  const json& cfg = object(j, "Config");
  info.image = str(cfg, "Image");
  info.labels = stringMap(object(cfg, "Labels"));
  const json& s = object(j, "State");
  info.state = str(s, "Status");
  info.running = boolean(s, "Running");
  info.exit_code = integer<int>(s, "ExitCode", 0);
  info.oom_killed = boolean(s, "OOMKilled");
  info.error = str(s, "Error");
  info.started_at = unixSeconds(str(s, "StartedAt"));
  info.finished_at = unixSeconds(str(s, "FinishedAt"));
  info.health = str(object(s, "Health"), "Status");
  for (const auto& [net, ep] : object(object(j, "NetworkSettings"), "Networks").items()) {
    if (ep.is_object()) info.network_ips[net] = str(ep, "IPAddress");
  }
  return info;
}

ImageInfo parseImageInspect(const std::string& body) {
  const json j = parse(body);
  return ImageInfo{str(j, "Id"), integer<std::int64_t>(j, "Size", 0)};
}

Result<std::vector<ContainerSummary>> parseContainerList(const std::string& body) {
  const json j = parse(body);
  if (!j.is_array()) return Error{"docker container list: answer is not a list"};
  std::vector<ContainerSummary> out;
  for (const auto& c : j) {
    if (!c.is_object()) continue;
    ContainerSummary s;
    s.id = str(c, "Id");
    if (const json* names = field(c, "Names"); names != nullptr && names->is_array() && !names->empty() &&
                                                 names->front().is_string()) {
      s.name = names->front().get<std::string>();
      if (!s.name.empty() && s.name[0] == '/') s.name.erase(0, 1);
    }
    s.image = str(c, "Image");
    s.state = str(c, "State");
    s.labels = stringMap(object(c, "Labels"));
    out.push_back(std::move(s));
  }
  return out;
}

Stats parseStats(const std::string& body) {
  Stats s;
  const json j = parse(body);
  if (!j.is_object()) return s;
  // A stopped container has no CPU samples: the fields are missing and CPU stays 0.
  const json& cpu = object(j, "cpu_stats");
  const json& pre = object(j, "precpu_stats");
  const double cpu_delta =
      number(object(cpu, "cpu_usage"), "total_usage", 0.0) - number(object(pre, "cpu_usage"), "total_usage", 0.0);
  const double sys_delta = number(cpu, "system_cpu_usage", 0.0) - number(pre, "system_cpu_usage", 0.0);
  const double cpus = number(cpu, "online_cpus", 1.0);
  if (cpu_delta > 0 && sys_delta > 0 && std::isfinite(cpu_delta / sys_delta * cpus)) {
    s.cpu_percent = cpu_delta / sys_delta * cpus * 100.0;
  }
  const json& m = object(j, "memory_stats");
  const std::int64_t usage = integer<std::int64_t>(m, "usage", 0);
  const std::int64_t inactive = integer<std::int64_t>(object(m, "stats"), "inactive_file", 0);
  s.memory_bytes = inactive > 0 && usage > 0 ? std::max<std::int64_t>(0, usage - inactive) : std::max<std::int64_t>(0, usage);
  for (const auto& [name, n] : object(j, "networks").items()) {
    const auto rx = integer<std::int64_t>(n, "rx_bytes", 0), tx = integer<std::int64_t>(n, "tx_bytes", 0);
    if (rx > 0 && s.network_rx_bytes <= std::numeric_limits<std::int64_t>::max() - rx) s.network_rx_bytes += rx;
    if (tx > 0 && s.network_tx_bytes <= std::numeric_limits<std::int64_t>::max() - tx) s.network_tx_bytes += tx;
  }
  return s;
}

std::optional<PullLine> parsePullLine(std::string_view line) {
  const json j = parse(line);
  if (!j.is_object()) return std::nullopt;
  PullLine out;
  if (const json* e = field(j, "error"); e != nullptr) {
    out.error = e->is_string() ? e->get<std::string>() : e->dump(-1, ' ', false, json::error_handler_t::replace);
    return out;
  }
  out.progress.layer = str(j, "id");
  out.progress.status = str(j, "status");
  const json& detail = object(j, "progressDetail");
  out.progress.current = integer<std::int64_t>(detail, "current", 0);
  out.progress.total = integer<std::int64_t>(detail, "total", 0);
  return out;
}

std::optional<Event> parseEventLine(std::string_view line) {
  const json j = parse(line);
  if (!j.is_object()) return std::nullopt;
  Event e;
  e.type = str(j, "Type");
  e.action = str(j, "Action");
  e.time_ns = integer<std::int64_t>(j, "timeNano", 0);
  const json& actor = object(j, "Actor");
  e.id = str(actor, "ID");
  e.attributes = stringMap(object(actor, "Attributes"));
  return e;
}

int parseWaitStatus(const std::string& body) { return integer<int>(parse(body), "StatusCode", -1); }

bool parseTty(const std::string& body) { return boolean(object(parse(body), "Config"), "Tty"); }

std::string parseId(const std::string& body) { return str(parse(body), "Id"); }

int parseExecExitCode(const std::string& body) { return integer<int>(parse(body), "ExitCode", -1); }

std::vector<std::pair<std::string, std::string>> parseNetworksNamed(const std::string& body, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> same;
  const json nets = parse(body);
  if (!nets.is_array()) return same;
  for (const auto& n : nets) {
    if (str(n, "Name") == name) same.emplace_back(str(n, "Created"), str(n, "Id"));
  }
  return same;
}

}  // namespace dspy::envmanager::docker
