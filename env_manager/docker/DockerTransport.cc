// The HTTP transport of the Docker client: one libcurl handle setup for every request
// (unix socket or TCP, method, body, connect timeout), whole answers (raw/call) and
// streamed ones that a stop token can end (stream), the Engine API version in use, and
// Docker's error answers turned into errors.
#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "env_manager/docker/DockerClient.h"

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

// One request's libcurl handle and headers, set up the same way for every call; freed
// when it goes out of scope.
class CurlRequest {
 public:
  CurlRequest(const std::string& socket_path, const std::string& method, const std::string& url,
              const std::string& body)
      : curl_(curl_easy_init()), headers_(curl_slist_append(nullptr, "Content-Type: application/json")) {
    if (curl_ == nullptr) return;
    if (!socket_path.empty()) curl_easy_setopt(curl_, CURLOPT_UNIX_SOCKET_PATH, socket_path.c_str());
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    if (method == "POST" || method == "PUT") {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());  // `body` outlives the request
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  }
  ~CurlRequest() {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
    curl_slist_free_all(headers_);
  }
  CurlRequest(const CurlRequest&) = delete;
  CurlRequest& operator=(const CurlRequest&) = delete;
  bool ok() const { return curl_ != nullptr; }
  CURL* handle() const { return curl_; }

 private:
  CURL* curl_;
  curl_slist* headers_;
};

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
  CurlRequest req(socket_path_, method, url, body);
  if (!req.ok()) return Error{"curl_easy_init failed"};
  Response resp;
  CURL* curl = req.handle();
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>((timeout.count() > 0 ? timeout : options_.timeout).count()));
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
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
  CurlRequest req(socket_path_, method, base_url_ + prefix.value() + path, body);
  if (!req.ok()) return Error{"curl_easy_init failed"};
  CURL* curl = req.handle();
  StreamState st;
  st.on_data = &on_data;
  st.stop = stop;
  st.curl = curl;
  st.error_body = error_body;
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, streamBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, streamProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &st);
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

}  // namespace dspy::envmanager::docker
