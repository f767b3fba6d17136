// The Engine API operations: images, containers, logs, stats, exec, networks, volumes,
// events. The HTTP transport under them is DockerTransport.cc.
#include "env_manager/docker/DockerClient.h"
#include "common/Clock.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "env_manager/docker/StreamDecoders.h"

namespace dspy::envmanager::docker {
namespace {

using json = nlohmann::json;

// Percent-encoding of a query value or path segment, by libcurl (RFC 3986 unreserved
// characters stay as they are).
std::string urlEncode(const std::string& s) {
  char* escaped = curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size()));
  if (escaped == nullptr) throw std::bad_alloc();
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

std::string labelFilter(const Labels& labels) {
  json filters = json::object();
  json list = json::array();
  for (const auto& [k, v] : labels) list.push_back(v.empty() ? k : k + "=" + v);
  if (!list.empty()) filters["label"] = list;
  return urlEncode(filters.dump());
}

// Splits "name:tag" (keeping registry ports such as 127.0.0.1:5000/x) and "name@digest".
std::pair<std::string, std::string> splitReference(const std::string& ref) {
  if (auto at = ref.find('@'); at != std::string::npos) return {ref.substr(0, at), ref.substr(at + 1)};
  const auto slash = ref.rfind('/');
  const auto colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {ref.substr(0, colon), ref.substr(colon + 1)};
  }
  return {ref, "latest"};
}

}  // namespace

Result<std::string> DockerClient::ping() { return versionPrefix(); }

Result<ImageInfo> DockerClient::inspectImage(const std::string& ref) {
  auto r = call("image_inspect", "GET", "/images/" + urlEncode(ref) + "/json");
  if (!r) return r.fullError();
  if (r.value().status != 200) return dockerError("image inspect " + ref, r.value().status, r.value().body);
  return parseImageInspect(r.value().body);
}

Status DockerClient::pullImage(const std::string& ref, const std::function<void(const PullProgress&)>& on_progress,
                               std::stop_token stop) {
  auto [name, tag] = splitReference(ref);
  std::string stream_error;
  LineSplitter lines;
  auto on_line = [&](std::string_view line) {
    auto l = parsePullLine(line);
    if (!l) return true;
    if (l->error) {
      stream_error = *l->error;
      return true;
    }
    on_progress(l->progress);
    return true;
  };
  std::string error_body;
  const std::string path = "/images/create?fromImage=" + urlEncode(name) + "&tag=" + urlEncode(tag);
  auto r = stream("image_pull", "POST", path, "", [&](std::string_view d) { return lines.feed(d, on_line); }, stop,
                  &error_body);
  if (!r) return r.fullError();
  lines.finish(on_line);
  if (r.value() >= 400) return dockerError("pull " + ref, r.value(), error_body);
  if (!stream_error.empty()) {
    const bool missing = stream_error.find("not found") != std::string::npos ||
                         stream_error.find("manifest unknown") != std::string::npos;
    return Error{"docker pull " + ref + ": " + stream_error, missing ? ErrorKind::NotFound : ErrorKind::Unavailable};
  }
  return Status::Ok();
}

Result<std::vector<ContainerSummary>> DockerClient::listContainers(const Labels& label_filter, bool all) {
  auto r = call("container_list", "GET",
                std::string("/containers/json?all=") + (all ? "1" : "0") + "&filters=" + labelFilter(label_filter));
  if (!r) return r.fullError();
  if (r.value().status != 200) return dockerError("container list", r.value().status, r.value().body);
  return parseContainerList(r.value().body);
}

std::string createBody(const CreateRequest& q) {
  json body = {{"Image", q.image}, {"Labels", q.labels}, {"Env", q.env}, {"StopTimeout", q.stop_timeout_seconds}};
  if (!q.command.empty()) body["Cmd"] = q.command;
  if (!q.entrypoint.empty()) body["Entrypoint"] = q.entrypoint;
  if (!q.working_dir.empty()) body["WorkingDir"] = q.working_dir;
  if (!q.user.empty()) body["User"] = q.user;
  if (!q.hostname.empty()) body["Hostname"] = q.hostname;
  if (!q.healthcheck.test.empty()) {
    json hc = {{"Test", q.healthcheck.test}};
    auto ns = [](std::chrono::milliseconds d) { return static_cast<std::int64_t>(d.count()) * 1'000'000; };
    if (q.healthcheck.interval.count() > 0) hc["Interval"] = ns(q.healthcheck.interval);
    if (q.healthcheck.timeout.count() > 0) hc["Timeout"] = ns(q.healthcheck.timeout);
    if (q.healthcheck.start_period.count() > 0) hc["StartPeriod"] = ns(q.healthcheck.start_period);
    if (q.healthcheck.retries > 0) hc["Retries"] = q.healthcheck.retries;
    body["Healthcheck"] = hc;
  }
  if (q.network_disabled) body["NetworkDisabled"] = true;
  json host = json::object();
  json exposed = json::object();
  json bindings = json::object();
  for (const auto& p : q.ports) {
    const std::string key = std::to_string(p.container_port) + "/" + p.protocol;
    exposed[key] = json::object();
    if (p.host_port > 0 || p.random_host_port) {
      bindings[key].push_back({{"HostIp", p.host_ip}, {"HostPort", p.host_port > 0 ? std::to_string(p.host_port) : ""}});
    }
  }
  if (!exposed.empty()) body["ExposedPorts"] = exposed;
  if (!bindings.empty()) host["PortBindings"] = bindings;
  json mounts = json::array();
  for (const auto& m : q.mounts) {
    if (m.tmpfs) {
      mounts.push_back({{"Type", "tmpfs"}, {"Target", m.target}, {"ReadOnly", m.read_only}});
      continue;
    }
    json one = {{"Type", m.bind ? "bind" : "volume"}, {"Target", m.target}, {"ReadOnly", m.read_only}};
    if (!m.source.empty()) one["Source"] = m.source;  // none: an anonymous volume
    mounts.push_back(one);
  }
  if (!mounts.empty()) host["Mounts"] = mounts;
  if (q.cpus > 0) host["NanoCpus"] = static_cast<std::int64_t>(q.cpus * 1e9);
  if (q.memory_bytes > 0) host["Memory"] = q.memory_bytes;
  if (q.pids_limit > 0) host["PidsLimit"] = q.pids_limit;
  if (q.gpus) {
    json request = {{"Driver", ""}, {"Capabilities", json::array({json::array({"gpu"})})}};
    if (!q.gpu_device_ids.empty()) request["DeviceIDs"] = q.gpu_device_ids;
    else request["Count"] = q.gpu_count;
    host["DeviceRequests"] = json::array({request});
  }
  if (q.read_only_rootfs) host["ReadonlyRootfs"] = true;
  if (q.drop_all_capabilities) host["CapDrop"] = json::array({"ALL"});
  if (q.no_new_privileges) host["SecurityOpt"] = json::array({"no-new-privileges"});
  if (q.network_disabled) {
    host["NetworkMode"] = "none";
  } else if (!q.network.empty()) {
    host["NetworkMode"] = q.network;
    json endpoint = json::object();
    if (!q.aliases.empty()) endpoint["Aliases"] = q.aliases;
    body["NetworkingConfig"] = {{"EndpointsConfig", {{q.network, endpoint}}}};
  }
  body["HostConfig"] = host;
  return body.dump();
}

Result<std::string> DockerClient::createContainer(const CreateRequest& request) {
  auto r = call("container_create", "POST", "/containers/create?name=" + urlEncode(request.name), createBody(request));
  if (!r) return r.fullError();
  if (r.value().status != 201) return dockerError("create " + request.name, r.value().status, r.value().body);
  const std::string id = parseId(r.value().body);
  if (id.empty()) return Error{"docker create " + request.name + ": answer has no Id"};
  // The create call takes one network; the others are joined before the start.
  for (const auto& n : request.extra_networks) {
    json body = {{"Container", id}, {"EndpointConfig", {{"Aliases", n.aliases}}}};
    auto c = call("network_connect", "POST", "/networks/" + urlEncode(n.name) + "/connect", body.dump());
    Status failed = Status::Ok();
    if (!c) failed = c.fullError();
    else if (c.value().status != 200) failed = dockerError("connect " + request.name + " to " + n.name, c.value().status, c.value().body);
    if (!failed.ok()) {
      (void)removeContainer(id, true);
      return Error{failed.error(), failed.kind()};
    }
  }
  return id;
}

Status DockerClient::startContainer(const std::string& id) {
  auto r = call("container_start", "POST", "/containers/" + id + "/start");
  if (!r) return r.fullError();
  if (r.value().status != 204 && r.value().status != 304) return dockerError("start", r.value().status, r.value().body);
  return Status::Ok();
}

Status DockerClient::stopContainer(const std::string& id, int timeout_seconds) {
  auto r = call("container_stop", "POST", "/containers/" + id + "/stop?t=" + std::to_string(timeout_seconds), "",
                std::chrono::milliseconds((timeout_seconds + 15) * 1000L));
  if (!r) return r.fullError();
  if (r.value().status != 204 && r.value().status != 304) return dockerError("stop", r.value().status, r.value().body);
  return Status::Ok();
}

Status DockerClient::killContainer(const std::string& id, const std::string& signal) {
  auto r = call("container_kill", "POST", "/containers/" + id + "/kill?signal=" + urlEncode(signal));
  if (!r) return r.fullError();
  if (r.value().status != 204) return dockerError("kill", r.value().status, r.value().body);
  return Status::Ok();
}

Status DockerClient::removeContainer(const std::string& id, bool force) {
  auto r = call("container_remove", "DELETE", "/containers/" + id + "?v=0&force=" + (force ? "1" : "0"));
  if (!r) return r.fullError();
  if (r.value().status != 204 && r.value().status != 404) {
    return dockerError("remove", r.value().status, r.value().body);
  }
  return Status::Ok();
}

Result<ContainerInfo> DockerClient::inspectContainer(const std::string& id) {
  auto r = call("container_inspect", "GET", "/containers/" + id + "/json");
  if (!r) return r.fullError();
  if (r.value().status != 200) return dockerError("inspect " + id, r.value().status, r.value().body);
  return parseInspect(r.value().body);
}

Result<int> DockerClient::waitContainer(const std::string& id, std::stop_token stop) {
  std::string body;
  std::string error_body;
  auto r = stream("container_wait", "POST", "/containers/" + id + "/wait?condition=not-running", "",
                  [&](std::string_view d) {
                    body.append(d);
                    return true;
                  },
                  stop, &error_body);
  if (!r) return r.fullError();
  if (r.value() != 200) return dockerError("wait " + id, r.value(), error_body);
  if (!json::parse(body, nullptr, false).is_object()) return Error{"docker wait: answer is not JSON"};
  return parseWaitStatus(body);
}

Status DockerClient::streamLogs(const std::string& id, const LogOptions& o,
                                const std::function<bool(const LogLine&)>& on_line, std::stop_token stop) {
  // The multiplexed framing applies unless the container has a TTY.
  auto info = call("container_inspect", "GET", "/containers/" + id + "/json");
  if (!info) return info.fullError();
  if (info.value().status != 200) return dockerError("logs " + id, info.value().status, info.value().body);
  const bool tty = parseTty(info.value().body);
  LogDecoder decoder(!tty, /*timestamps=*/true);
  std::string path = "/containers/" + id + "/logs?timestamps=1&stdout=" + (o.stdout_stream ? "1" : "0") +
                     "&stderr=" + (o.stderr_stream ? "1" : "0") + "&follow=" + (o.follow ? "1" : "0") +
                     "&tail=" + (o.tail > 0 ? std::to_string(o.tail) : "all");
  if (o.since > 0) path += "&since=" + std::to_string(o.since);
  std::string error_body;
  bool go_on = true;
  auto r = stream("container_logs", "GET", path, "",
                  [&](std::string_view d) { return go_on = decoder.feed(d, on_line); }, stop, &error_body);
  if (!r) return r.fullError();
  if (r.value() >= 400) return dockerError("logs " + id, r.value(), error_body);
  if (go_on) decoder.finish(on_line);
  return Status::Ok();
}

Result<Stats> DockerClient::stats(const std::string& id) {
  // Without one-shot the Engine samples twice, one second apart, so CPU percent is real.
  auto r = call("container_stats", "GET", "/containers/" + id + "/stats?stream=0", "", std::chrono::seconds(10));
  if (!r) return r.fullError();
  if (r.value().status != 200) return dockerError("stats " + id, r.value().status, r.value().body);
  return parseStats(r.value().body);
}

Result<ExecResult> DockerClient::exec(const std::string& id, const std::vector<std::string>& command,
                                      std::chrono::milliseconds timeout) {
  json create = {{"Cmd", command}, {"AttachStdout", true}, {"AttachStderr", true}, {"Tty", false}};
  auto c = call("exec_create", "POST", "/containers/" + id + "/exec", create.dump());
  if (!c) return c.fullError();
  if (c.value().status != 201) return dockerError("exec create", c.value().status, c.value().body);
  const std::string exec_id = parseId(c.value().body);
  if (exec_id.empty()) return Error{"docker exec create: the answer has no exec id"};
  ExecResult out;
  LogDecoder decoder(true, false);
  auto collect = [&](const LogLine& l) {
    out.output += l.message + "\n";
    return true;
  };
  std::stop_source deadline_source;
  std::jthread timer([&, timeout](std::stop_token t) {
    if (Clock::real().sleepFor(timeout, t)) deadline_source.request_stop();  // the deadline passed first
  });
  std::string error_body;
  auto r = stream("exec_start", "POST", "/exec/" + exec_id + "/start", json{{"Detach", false}, {"Tty", false}}.dump(),
                  [&](std::string_view d) { return decoder.feed(d, collect); }, deadline_source.get_token(),
                  &error_body);
  timer.request_stop();
  if (!r) {
    if (r.kind() == ErrorKind::Cancelled) return Error{"exec timed out", ErrorKind::Timeout};
    return r.fullError();
  }
  if (r.value() >= 400) return dockerError("exec start", r.value(), error_body);
  decoder.finish(collect);
  auto inspect = call("exec_inspect", "GET", "/exec/" + exec_id + "/json");
  if (!inspect) return inspect.fullError();
  out.exit_code = parseExecExitCode(inspect.value().body);
  return out;
}

Status DockerClient::ensureNetwork(const std::string& name, const Labels& labels) {
  // Docker allows several networks with one name, and then refuses to use the name.
  // List by name (exact match) and keep the oldest; remove extra copies.
  json filters = {{"name", json::array({name})}};
  auto list = call("network_list", "GET", "/networks?filters=" + urlEncode(filters.dump()));
  if (!list) return list.fullError();
  if (list.value().status != 200) return dockerError("network list", list.value().status, list.value().body);
  auto same = parseNetworksNamed(list.value().body, name);  // (created, id)
  std::sort(same.begin(), same.end());
  for (std::size_t i = 1; i < same.size(); ++i) (void)call("network_remove", "DELETE", "/networks/" + same[i].second);
  if (!same.empty()) return Status::Ok();
  json body = {{"Name", name}, {"Driver", "bridge"}, {"CheckDuplicate", true}, {"Labels", labels}};
  auto c = call("network_create", "POST", "/networks/create", body.dump());
  if (!c) return c.fullError();
  // 409: created meanwhile by someone else, which is what we wanted.
  if (c.value().status != 201 && c.value().status != 409) {
    return dockerError("network create " + name, c.value().status, c.value().body);
  }
  return Status::Ok();
}

Status DockerClient::ensureVolume(const std::string& name, const Labels& labels) {
  json body = {{"Name", name}, {"Labels", labels}};
  auto c = call("volume_create", "POST", "/volumes/create", body.dump());
  if (!c) return c.fullError();
  if (c.value().status != 201 && c.value().status != 200) {
    return dockerError("volume create " + name, c.value().status, c.value().body);
  }
  return Status::Ok();
}

Status DockerClient::streamEvents(const Labels& label_filter, const std::function<void(const Event&)>& on_event,
                                  std::stop_token stop) {
  json filters = {{"type", json::array({"container"})}};
  json labels = json::array();
  for (const auto& [k, v] : label_filter) labels.push_back(v.empty() ? k : k + "=" + v);
  if (!labels.empty()) filters["label"] = labels;
  LineSplitter lines;
  auto on_line = [&](std::string_view line) {
    if (auto e = parseEventLine(line)) on_event(*e);
    return true;
  };
  std::string error_body;
  auto r = stream("events", "GET", "/events?filters=" + urlEncode(filters.dump()), "",
                  [&](std::string_view d) { return lines.feed(d, on_line); }, stop, &error_body);
  if (!r) return r.kind() == ErrorKind::Cancelled ? Status::Ok() : Status(r.fullError());
  if (r.value() >= 400) return dockerError("events", r.value(), error_body);
  return Error{"docker events stream ended", ErrorKind::Unavailable};
}

}  // namespace dspy::envmanager::docker
