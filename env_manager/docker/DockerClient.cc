// Docker Engine API over libcurl.
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

// The newest Engine API this client was written against; older engines are spoken to
// in their own version as long as they are at least kMinApi.
constexpr double kMaxApi = 1.41;
constexpr double kMinApi = 1.25;

void curlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

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

std::int64_t unixSeconds(const std::string& rfc3339) {
  if (rfc3339.empty() || rfc3339.rfind("0001-", 0) == 0) return 0;
  auto ns = parseRfc3339Nanos(rfc3339);
  return ns ? *ns / 1'000'000'000 : 0;
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

struct StreamState {
  const std::function<bool(std::string_view)>* on_data = nullptr;
  std::stop_token stop;
  bool stopped_by_callback = false;
  long status = 0;
  CURL* curl = nullptr;
  std::string* error_body = nullptr;
};

std::size_t collectBody(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::size_t streamBody(char* data, std::size_t size, std::size_t n, void* user) {
  auto* st = static_cast<StreamState*>(user);
  if (st->status == 0) curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &st->status);
  if (st->status >= 300) {  // an error answer: keep its body for the message
    if (st->error_body != nullptr) st->error_body->append(data, size * n);
    return size * n;
  }
  if (!(*st->on_data)(std::string_view(data, size * n))) {
    st->stopped_by_callback = true;
    return 0;  // aborts the transfer
  }
  return size * n;
}

int streamProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* st = static_cast<StreamState*>(user);
  return st->stop.stop_requested() ? 1 : 0;
}

}  // namespace

Error dockerError(std::string_view operation, long http_status, const std::string& body) {
  std::string message;
  auto j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) message = j["message"].get<std::string>();
  if (message.empty()) message = body.empty() ? "no details" : body;
  ErrorKind kind = ErrorKind::Internal;
  switch (http_status) {
    case 400: kind = ErrorKind::InvalidArgument; break;
    case 404: kind = ErrorKind::NotFound; break;
    case 409: kind = ErrorKind::AlreadyExists; break;
    case 500: case 503: kind = ErrorKind::Internal; break;
    default: break;
  }
  return Error{"docker " + std::string(operation) + ": HTTP " + std::to_string(http_status) + ": " + message, kind};
}

Result<std::unique_ptr<DockerClient>> DockerClient::create(Options options) {
  curlGlobalInit();
  const std::string& host = options.host;
  std::string socket_path;
  std::string base_url;
  if (host.rfind("unix://", 0) == 0) {
    socket_path = host.substr(7);
    if (socket_path.empty() || socket_path[0] != '/') {
      return Error{"DOCKER_HOST '" + host + "': a unix socket needs an absolute path", ErrorKind::InvalidArgument};
    }
    base_url = "http://localhost";
  } else if (host.rfind("tcp://", 0) == 0 && host.size() > 6) {
    base_url = "http://" + host.substr(6);
  } else {
    return Error{"DOCKER_HOST '" + host + "': expected unix:///path or tcp://host:port", ErrorKind::InvalidArgument};
  }
  return std::unique_ptr<DockerClient>(new DockerClient(std::move(options), std::move(socket_path), std::move(base_url)));
}

DockerClient::DockerClient(Options options, std::string socket_path, std::string base_url)
    : options_(std::move(options)), socket_path_(std::move(socket_path)), base_url_(std::move(base_url)) {}

Result<DockerClient::Response> DockerClient::raw(const std::string& method, const std::string& url,
                                                 const std::string& body, std::chrono::milliseconds timeout) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Error{"curl_easy_init failed"};
  Response resp;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!socket_path_.empty()) curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (method == "POST" || method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>((timeout.count() > 0 ? timeout : options_.timeout).count()));
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Error{"docker at " + options_.host + " did not answer in time", ErrorKind::Timeout};
  }
  if (rc != CURLE_OK) {
    return Error{"docker at " + options_.host + " is not reachable: " + curl_easy_strerror(rc), ErrorKind::Unavailable};
  }
  return resp;
}

Result<std::string> DockerClient::versionPrefix() {
  std::lock_guard lock(version_mu_);
  if (!version_prefix_.empty()) return version_prefix_;
  auto r = raw("GET", base_url_ + "/version", "", std::chrono::milliseconds(5000));
  if (!r) return r.fullError();
  if (r.value().status != 200) return dockerError("version", r.value().status, r.value().body);
  auto j = json::parse(r.value().body, nullptr, false);
  if (!j.is_object() || !j.contains("ApiVersion")) return Error{"docker version: answer has no ApiVersion"};
  const std::string server = j["ApiVersion"].get<std::string>();
  const double v = std::strtod(server.c_str(), nullptr);
  if (v < kMinApi) {
    return Error{"docker Engine API " + server + " is older than the 1.25 this daemon needs",
                 ErrorKind::FailedPrecondition};
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "/v%.2f", std::min(v, kMaxApi));
  version_prefix_ = buf;
  return version_prefix_;
}

Result<DockerClient::Response> DockerClient::call(std::string_view operation, const std::string& method,
                                                  const std::string& path, const std::string& body,
                                                  std::chrono::milliseconds timeout) {
  const auto t0 = std::chrono::steady_clock::now();
  auto prefix = versionPrefix();
  Result<Response> r = prefix ? raw(method, base_url_ + prefix.value() + path, body, timeout)
                              : Result<Response>(prefix.fullError());
  if (!r && r.kind() == ErrorKind::Unavailable) {
    std::lock_guard lock(version_mu_);
    version_prefix_.clear();  // the engine may come back in another version
  }
  if (options_.observer) {
    options_.observer(operation, r.ok() && r.value().status < 400,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return r;
}

Result<long> DockerClient::stream(std::string_view operation, const std::string& method, const std::string& path,
                                  const std::string& body, const std::function<bool(std::string_view)>& on_data,
                                  std::stop_token stop, std::string* error_body) {
  const auto t0 = std::chrono::steady_clock::now();
  auto prefix = versionPrefix();
  if (!prefix) return prefix.fullError();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Error{"curl_easy_init failed"};
  StreamState st;
  st.on_data = &on_data;
  st.stop = stop;
  st.curl = curl;
  st.error_body = error_body;
  const std::string url = base_url_ + prefix.value() + path;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!socket_path_.empty()) curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, streamBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, streamProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &st);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 64L * 1024);
  // The multi interface lets the wait for data wake every 100 ms to check `stop`, so a
  // client that leaves (or a daemon that stops) ends the stream promptly.
  CURLM* multi = curl_multi_init();
  curl_multi_add_handle(multi, curl);
  CURLcode rc = CURLE_OK;
  int running = 1;
  bool cancelled = false;
  while (running > 0) {
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      rc = CURLE_RECV_ERROR;
      break;
    }
    if (stop.stop_requested() && !st.stopped_by_callback) {
      cancelled = true;
      break;
    }
    if (running > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
  }
  if (cancelled) rc = CURLE_ABORTED_BY_CALLBACK;
  if (st.status == 0) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &st.status);
  curl_multi_remove_handle(multi, curl);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  const bool ok = rc == CURLE_OK || st.stopped_by_callback;
  if (options_.observer) {
    options_.observer(operation, ok && st.status < 400,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (st.stopped_by_callback) return st.status;
  if (rc == CURLE_ABORTED_BY_CALLBACK) return Error{"cancelled", ErrorKind::Cancelled};
  if (rc == CURLE_WRITE_ERROR && st.stopped_by_callback) return st.status;
  if (rc != CURLE_OK) {
    return Error{"docker at " + options_.host + " stream failed: " + curl_easy_strerror(rc), ErrorKind::Unavailable};
  }
  return st.status;
}

Result<std::string> DockerClient::ping() { return versionPrefix(); }

Result<ImageInfo> DockerClient::inspectImage(const std::string& ref) {
  auto r = call("image_inspect", "GET", "/images/" + urlEncode(ref) + "/json");
  if (!r) return r.fullError();
  if (r.value().status != 200) return dockerError("image inspect " + ref, r.value().status, r.value().body);
  auto j = json::parse(r.value().body, nullptr, false);
  ImageInfo info;
  if (j.is_object()) {
    info.id = j.value("Id", "");
    info.size = j.value("Size", std::int64_t{0});
  }
  return info;
}

Status DockerClient::pullImage(const std::string& ref, const std::function<void(const PullProgress&)>& on_progress,
                               std::stop_token stop) {
  auto [name, tag] = splitReference(ref);
  std::string stream_error;
  LineSplitter lines;
  auto on_line = [&](std::string_view line) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) return true;
    if (j.contains("error")) {
      stream_error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
      return true;
    }
    PullProgress p;
    p.layer = j.value("id", "");
    p.status = j.value("status", "");
    if (j.contains("progressDetail") && j["progressDetail"].is_object()) {
      p.current = j["progressDetail"].value("current", std::int64_t{0});
      p.total = j["progressDetail"].value("total", std::int64_t{0});
    }
    on_progress(p);
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
  auto j = json::parse(r.value().body, nullptr, false);
  if (!j.is_array()) return Error{"docker container list: answer is not a list"};
  std::vector<ContainerSummary> out;
  for (const auto& c : j) {
    ContainerSummary s;
    s.id = c.value("Id", "");
    if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty()) {
      s.name = c["Names"][0].get<std::string>();
      if (!s.name.empty() && s.name[0] == '/') s.name.erase(0, 1);
    }
    s.image = c.value("Image", "");
    s.state = c.value("State", "");
    if (c.contains("Labels") && c["Labels"].is_object()) {
      for (const auto& [k, v] : c["Labels"].items()) s.labels[k] = v.get<std::string>();
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string createBody(const CreateRequest& q) {
  json body = {{"Image", q.image}, {"Labels", q.labels}, {"Env", q.env}, {"StopTimeout", q.stop_timeout_seconds}};
  if (!q.command.empty()) body["Cmd"] = q.command;
  if (!q.entrypoint.empty()) body["Entrypoint"] = q.entrypoint;
  if (!q.working_dir.empty()) body["WorkingDir"] = q.working_dir;
  if (!q.user.empty()) body["User"] = q.user;
  if (q.network_disabled) body["NetworkDisabled"] = true;
  json host = json::object();
  json exposed = json::object();
  json bindings = json::object();
  for (const auto& p : q.ports) {
    const std::string key = std::to_string(p.container_port) + "/" + p.protocol;
    exposed[key] = json::object();
    if (p.host_port > 0) {
      bindings[key].push_back({{"HostIp", p.host_ip}, {"HostPort", std::to_string(p.host_port)}});
    }
  }
  if (!exposed.empty()) body["ExposedPorts"] = exposed;
  if (!bindings.empty()) host["PortBindings"] = bindings;
  json mounts = json::array();
  for (const auto& m : q.mounts) {
    mounts.push_back({{"Type", m.bind ? "bind" : "volume"}, {"Source", m.source}, {"Target", m.target},
                      {"ReadOnly", m.read_only}});
  }
  if (!mounts.empty()) host["Mounts"] = mounts;
  if (q.cpus > 0) host["NanoCpus"] = static_cast<std::int64_t>(q.cpus * 1e9);
  if (q.memory_bytes > 0) host["Memory"] = q.memory_bytes;
  if (q.pids_limit > 0) host["PidsLimit"] = q.pids_limit;
  if (q.gpus) {
    host["DeviceRequests"] = json::array({{{"Driver", ""}, {"Count", -1}, {"Capabilities", json::array({json::array({"gpu"})})}}});
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
  auto j = json::parse(r.value().body, nullptr, false);
  if (!j.is_object() || !j.contains("Id")) return Error{"docker create " + request.name + ": answer has no Id"};
  return j["Id"].get<std::string>();
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

ContainerInfo parseInspect(const std::string& body) {
  ContainerInfo info;
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object()) return info;
  info.id = j.value("Id", "");
  info.name = j.value("Name", "");
  if (!info.name.empty() && info.name[0] == '/') info.name.erase(0, 1);
  if (j.contains("Config") && j["Config"].is_object()) {
    const auto& cfg = j["Config"];
    info.image = cfg.value("Image", "");
    if (cfg.contains("Labels") && cfg["Labels"].is_object()) {
      for (const auto& [k, v] : cfg["Labels"].items()) info.labels[k] = v.get<std::string>();
    }
  }
  if (j.contains("State") && j["State"].is_object()) {
    const auto& s = j["State"];
    info.state = s.value("Status", "");
    info.running = s.value("Running", false);
    info.exit_code = s.value("ExitCode", 0);
    info.oom_killed = s.value("OOMKilled", false);
    info.error = s.value("Error", "");
    info.started_at = unixSeconds(s.value("StartedAt", ""));
    info.finished_at = unixSeconds(s.value("FinishedAt", ""));
    if (s.contains("Health") && s["Health"].is_object()) info.health = s["Health"].value("Status", "");
  }
  if (j.contains("NetworkSettings") && j["NetworkSettings"].is_object() &&
      j["NetworkSettings"].contains("Networks") && j["NetworkSettings"]["Networks"].is_object()) {
    for (const auto& [net, ep] : j["NetworkSettings"]["Networks"].items()) {
      if (ep.is_object()) info.network_ips[net] = ep.value("IPAddress", "");
    }
  }
  return info;
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
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object()) return Error{"docker wait: answer is not JSON"};
  return j.value("StatusCode", -1);
}

Status DockerClient::streamLogs(const std::string& id, const LogOptions& o,
                                const std::function<bool(const LogLine&)>& on_line, std::stop_token stop) {
  // The multiplexed framing applies unless the container has a TTY.
  auto info = call("container_inspect", "GET", "/containers/" + id + "/json");
  if (!info) return info.fullError();
  if (info.value().status != 200) return dockerError("logs " + id, info.value().status, info.value().body);
  auto j = json::parse(info.value().body, nullptr, false);
  const bool tty = j.is_object() && j.contains("Config") && j["Config"].value("Tty", false);
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
  auto j = json::parse(r.value().body, nullptr, false);
  Stats s;
  if (!j.is_object()) return s;
  try {
    const auto& cpu = j.at("cpu_stats");
    const auto& pre = j.at("precpu_stats");
    const double cpu_delta = cpu.at("cpu_usage").value("total_usage", 0.0) - pre.at("cpu_usage").value("total_usage", 0.0);
    const double sys_delta = cpu.value("system_cpu_usage", 0.0) - pre.value("system_cpu_usage", 0.0);
    const double cpus = cpu.value("online_cpus", 1.0);
    if (cpu_delta > 0 && sys_delta > 0) s.cpu_percent = cpu_delta / sys_delta * cpus * 100.0;
  } catch (const json::exception&) {
    // A stopped container has no CPU samples; leave zero.
  }
  if (j.contains("memory_stats") && j["memory_stats"].is_object()) {
    const auto& m = j["memory_stats"];
    std::int64_t usage = m.value("usage", std::int64_t{0});
    if (m.contains("stats") && m["stats"].is_object()) usage -= m["stats"].value("inactive_file", std::int64_t{0});
    s.memory_bytes = std::max<std::int64_t>(0, usage);
  }
  if (j.contains("networks") && j["networks"].is_object()) {
    for (const auto& [name, n] : j["networks"].items()) {
      s.network_rx_bytes += n.value("rx_bytes", std::int64_t{0});
      s.network_tx_bytes += n.value("tx_bytes", std::int64_t{0});
    }
  }
  return s;
}

Result<ExecResult> DockerClient::exec(const std::string& id, const std::vector<std::string>& command,
                                      std::chrono::milliseconds timeout) {
  json create = {{"Cmd", command}, {"AttachStdout", true}, {"AttachStderr", true}, {"Tty", false}};
  auto c = call("exec_create", "POST", "/containers/" + id + "/exec", create.dump());
  if (!c) return c.fullError();
  if (c.value().status != 201) return dockerError("exec create", c.value().status, c.value().body);
  const std::string exec_id = json::parse(c.value().body, nullptr, false).value("Id", "");
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
  auto j = json::parse(inspect.value().body, nullptr, false);
  if (j.is_object() && j["ExitCode"].is_number()) out.exit_code = j["ExitCode"].get<int>();
  return out;
}

Status DockerClient::ensureNetwork(const std::string& name, const Labels& labels) {
  // Docker allows several networks with one name, and then refuses to use the name.
  // List by name (exact match) and keep the oldest; remove extra copies.
  json filters = {{"name", json::array({name})}};
  auto list = call("network_list", "GET", "/networks?filters=" + urlEncode(filters.dump()));
  if (!list) return list.fullError();
  if (list.value().status != 200) return dockerError("network list", list.value().status, list.value().body);
  auto nets = json::parse(list.value().body, nullptr, false);
  std::vector<std::pair<std::string, std::string>> same;  // (created, id)
  if (nets.is_array()) {
    for (const auto& n : nets) {
      if (n.value("Name", "") == name) same.emplace_back(n.value("Created", ""), n.value("Id", ""));
    }
  }
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
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) return true;
    Event e;
    e.type = j.value("Type", "");
    e.action = j.value("Action", "");
    e.time_ns = j.value("timeNano", std::int64_t{0});
    if (j.contains("Actor") && j["Actor"].is_object()) {
      e.id = j["Actor"].value("ID", "");
      if (j["Actor"].contains("Attributes") && j["Actor"]["Attributes"].is_object()) {
        for (const auto& [k, v] : j["Actor"]["Attributes"].items()) {
          if (v.is_string()) e.attributes[k] = v.get<std::string>();
        }
      }
    }
    on_event(e);
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
