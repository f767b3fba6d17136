// cpp-httplib behind HttpServer; the only translation unit that includes httplib.h.
#include "common/HttpServer.h"
#include "common/Text.h"

#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "common/ConfigSchema.h"
#include "common/Metrics.h"
#include "common/TokenAuth.h"

namespace dspy {

std::optional<std::string> HttpRequest::param(const std::string& name) const {
  auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> HttpRequest::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return v;
    }
  }
  return std::nullopt;
}

HttpResponse HttpResponse::error(int status, const std::string& message) {
  return HttpResponse{status, nlohmann::json{{"error", message}}.dump(), "application/json"};
}

namespace {

constexpr std::size_t kMaxHeaders = 200;
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

// httplib serves each connection on one pool thread for as long as it is kept alive.
// A fixed pool lets a few idle kept-alive clients starve everyone else; this one grows
// a thread whenever every thread is busy, up to `max`, and only then queues.
class GrowingPool final : public httplib::TaskQueue {
 public:
  explicit GrowingPool(std::size_t max) : max_(std::max<std::size_t>(1, max)) {}
  ~GrowingPool() override = default;

  void enqueue(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && threads_.size() < max_) {
      threads_.emplace_back([this] { work(); });
    } else {
      cv_.notify_one();
    }
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();  // no enqueue comes after the accept loop ended
  }

 private:
  void work() {
    std::unique_lock lock(mu_);
    while (true) {
      ++idle_;
      cv_.wait(lock, [this] { return !jobs_.empty() || shutdown_; });
      --idle_;
      if (jobs_.empty()) return;  // shutting down, nothing left
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  const std::size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool shutdown_ = false;
};

}  // namespace

struct HttpServer::Impl {
  Options options;
  std::shared_ptr<TokenAuth> auth;
  std::unique_ptr<httplib::Server> server;
  std::vector<std::regex> public_routes;
  std::vector<std::pair<std::regex, std::string>> routes;  // pattern, method: for 405
  int listen_fd = -1;  // seen in the socket options hook, before bind
  std::thread thread;
  int bound_port = 0;
  prometheus::Family<prometheus::Counter>* requests = nullptr;
  prometheus::Family<prometheus::Histogram>* durations = nullptr;
  std::stop_source streams_stop;  // asked when the server stops: producers end
  std::atomic<int> open_streams{0};

  static void send(httplib::Response& res, const HttpResponse& r) {
    res.status = r.status;
    res.set_content(r.body, r.content_type.c_str());
  }

  static HttpRequest request(const httplib::Request& req) {
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    for (const auto& m : req.matches) r.matches.push_back(m.str());
    r.params.insert(req.params.begin(), req.params.end());
    r.headers.insert(req.headers.begin(), req.headers.end());
    return r;
  }

  static void sendError(httplib::Response& res, int status, const std::string& message) {
    send(res, HttpResponse::error(status, message));
  }
};

HttpServer::HttpServer(Options options, std::shared_ptr<TokenAuth> auth, Metrics& metrics)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->auth = std::move(auth);
  if (impl_->options.tls.enabled()) {
    const auto& tls = impl_->options.tls;
    impl_->server = std::make_unique<httplib::SSLServer>(
        tls.cert_file.c_str(), tls.key_file.c_str(), tls.client_ca_file.empty() ? nullptr : tls.client_ca_file.c_str());
  } else {
    impl_->server = std::make_unique<httplib::Server>();
  }
  impl_->requests = &prometheus::BuildCounter()
                         .Name("http_requests_total")
                         .Help("HTTP requests answered, by route pattern and status code")
                         .Register(metrics.registry());
  impl_->durations = &prometheus::BuildHistogram()
                          .Name("http_request_duration_seconds")
                          .Help("HTTP request handling time by route pattern")
                          .Register(metrics.registry());

  auto& srv = *impl_->server;
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second
  // daemon bind the same port and silently take half of the requests.
  Impl* self = impl_.get();
  srv.set_socket_options([self](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    self->listen_fd = sock;
  });
  srv.set_payload_max_length(static_cast<std::size_t>(impl_->options.max_body_bytes));
  // A client that asks first (Expect: 100-continue, as curl does for large bodies) is
  // told 413 before it sends a body over the limit. Without the question httplib reads
  // and discards such a body (memory stays flat) and answers 413 after it.
  srv.set_expect_100_continue_handler([max = impl_->options.max_body_bytes](const httplib::Request& req,
                                                                           httplib::Response& res) {
    const auto length = parseInt(req.get_header_value("Content-Length"), 0);
    if (length && *length > max) {
      res.status = 413;
      res.set_header("Connection", "close");
      res.set_content(HttpResponse::error(413, "request body larger than the limit (" + std::to_string(max) +
                                                   " bytes, http.max_body_bytes)")
                          .body,
                      "application/json");
      return 413;
    }
    return 100;
  });
  // Without TCP_NODELAY every response on a kept-alive connection waits ~40 ms (Nagle's
  // algorithm against the client's delayed ACK).
  srv.set_tcp_nodelay(true);
  srv.set_keep_alive_max_count(1000);
  srv.set_keep_alive_timeout(impl_->options.keepalive_timeout_seconds);
  const auto max_connections = static_cast<std::size_t>(impl_->options.max_connections);
  srv.new_task_queue = [max_connections] { return new GrowingPool(max_connections); };
  srv.set_read_timeout(10, 0);
  srv.set_write_timeout(10, 0);
  Impl* impl = impl_.get();
  srv.set_pre_routing_handler([impl](const httplib::Request& req, httplib::Response& res) {
    // Header floods: refused before any handler runs. (httplib has read them by now; a
    // header line is at most 8 KiB, their number is not bounded by it.)
    std::size_t header_bytes = 0;
    for (const auto& [k, v] : req.headers) header_bytes += k.size() + v.size() + 4;
    if (req.headers.size() > kMaxHeaders || header_bytes > kMaxHeaderBytes) {
      res.set_header("Connection", "close");
      Impl::sendError(res, 431, "too many or too large request headers (at most " + std::to_string(kMaxHeaders) +
                                    " headers, " + std::to_string(kMaxHeaderBytes / 1024) + " KiB)");
      impl->requests->Add({{"route", "headers"}, {"code", "431"}}).Increment();
      return httplib::Server::HandlerResponse::Handled;
    }
    for (const auto& re : impl->public_routes) {
      if (std::regex_match(req.path, re)) return httplib::Server::HandlerResponse::Unhandled;
    }
    if (!impl->auth->allows(req.get_header_value("Authorization"))) {
      res.set_header("WWW-Authenticate", "Bearer");
      Impl::sendError(res, 401, "missing or wrong bearer token");
      impl->requests->Add({{"route", "auth"}, {"code", "401"}}).Increment();
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  srv.set_error_handler([impl](const httplib::Request& req, httplib::Response& res) {
    // Only fill in a body for errors no handler described (unknown route, 413, ...).
    if (!res.body.empty()) return;
    std::string message = "HTTP error " + std::to_string(res.status);
    if (res.status == 404) {
      // A known path with another method is 405 with the methods it takes.
      std::set<std::string> allowed;
      for (const auto& [re, method] : impl->routes) {
        if (std::regex_match(req.path, re)) allowed.insert(method);
      }
      if (!allowed.empty()) {
        if (allowed.count("GET")) allowed.insert("HEAD");
        std::string allow;
        for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
        res.status = 405;
        res.set_header("Allow", allow);
        Impl::sendError(res, 405, "method " + req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")");
        return;
      }
      message = "no route for " + req.method + " " + req.path;
    }
    if (res.status == 413) message = "request body larger than the limit (http.max_body_bytes)";
    Impl::sendError(res, res.status, message);
  });
  srv.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("HTTP {} {} failed: {}", req.method, req.path, what);
    Impl::sendError(res, 500, "internal error: " + what);
  });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& method, const std::string& pattern, HttpHandler handler, bool is_public) {
  if (is_public) impl_->public_routes.emplace_back(pattern);
  impl_->routes.emplace_back(std::regex(pattern), method);
  Impl* impl = impl_.get();
  auto serve = [impl, pattern, h = std::move(handler)](const httplib::Request& req, httplib::Response& res,
                                                      std::string* body) {
    const auto started = std::chrono::steady_clock::now();
    HttpRequest r = Impl::request(req);
    if (body != nullptr) r.body = std::move(*body);
    HttpResponse out;
    try {
      out = h(r);
    } catch (const std::exception& e) {
      spdlog::error("HTTP {} {} failed: {}", req.method, req.path, e.what());
      out = HttpResponse::error(500, std::string("internal error: ") + e.what());
    }
    Impl::send(res, out);
    impl->requests->Add({{"route", pattern}, {"code", std::to_string(out.status)}}).Increment();
    impl->durations
        ->Add({{"route", pattern}}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1})
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  // Bodies are read here, chunk by chunk, so that the limit holds for every transfer
  // encoding: httplib applies payload_max_length to a Content-Length, not to a chunked
  // body, which it would otherwise read into memory whole.
  auto with_body = [impl, pattern, serve](const httplib::Request& req, httplib::Response& res,
                                          const httplib::ContentReader& reader) {
    std::string body;
    bool too_big = false;
    const auto max = static_cast<std::size_t>(impl->options.max_body_bytes);
    const bool read = reader([&](const char* data, std::size_t len) {
      if (body.size() + len > max) {
        too_big = true;
        return false;
      }
      body.append(data, len);
      return true;
    });
    // httplib refuses an announced length over the limit itself (413, body discarded).
    if (too_big || res.status == 413) {
      res.set_header("Connection", "close");
      Impl::sendError(res, 413, "request body larger than the limit (" + std::to_string(max) +
                                    " bytes, http.max_body_bytes)");
      impl->requests->Add({{"route", pattern}, {"code", "413"}}).Increment();
      return;
    }
    if (!read) {
      res.set_header("Connection", "close");
      Impl::sendError(res, 400, "the request body could not be read (cut short or badly chunked)");
      impl->requests->Add({{"route", pattern}, {"code", "400"}}).Increment();
      return;
    }
    serve(req, res, &body);
  };
  auto& srv = *impl_->server;
  if (method == "GET") srv.Get(pattern, [serve](const httplib::Request& req, httplib::Response& res) { serve(req, res, nullptr); });
  else if (method == "POST") srv.Post(pattern, with_body);
  else if (method == "PUT") srv.Put(pattern, with_body);
  else if (method == "DELETE") srv.Delete(pattern, with_body);
  else if (method == "PATCH") srv.Patch(pattern, with_body);
  else throw std::invalid_argument("unsupported HTTP method " + method);
}

void HttpServer::routeStream(const std::string& pattern, HttpStreamHandler handler) {
  impl_->routes.emplace_back(std::regex(pattern), "GET");
  Impl* impl = impl_.get();
  impl_->server->Get(pattern, [impl, pattern, h = std::move(handler)](const httplib::Request& req,
                                                                       httplib::Response& res) {
    const HttpRequest r = Impl::request(req);
    HttpStream stream;
    try {
      stream = h(r);
    } catch (const std::exception& e) {
      spdlog::error("HTTP {} {} failed: {}", req.method, req.path, e.what());
      stream.refusal = HttpResponse::error(500, std::string("internal error: ") + e.what());
    }
    if (!stream.producer) {
      Impl::send(res, stream.refusal);
      impl->requests->Add({{"route", pattern}, {"code", std::to_string(stream.refusal.status)}}).Increment();
      return;
    }
    impl->requests->Add({{"route", pattern}, {"code", "200"}}).Increment();
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    auto producer = std::make_shared<decltype(stream.producer)>(std::move(stream.producer));
    res.set_chunked_content_provider(stream.content_type, [impl, producer](std::size_t, httplib::DataSink& sink) {
      ++impl->open_streams;
      const HttpStream::Write write = [&sink](const std::string& chunk) {
        return sink.is_writable() && sink.write(chunk.data(), chunk.size());
      };
      try {
        (*producer)(write, impl->streams_stop.get_token());
      } catch (const std::exception& e) {
        spdlog::error("HTTP stream failed: {}", e.what());
      }
      --impl->open_streams;
      sink.done();
      return true;
    });
  });
}

int HttpServer::openStreams() const { return impl_->open_streams.load(); }

Status HttpServer::start() {
  auto ep = config::parseEndpoint(impl_->options.address);
  if (!ep) return Error{"http address: " + ep.error()};
  auto& srv = *impl_->server;
  if (impl_->options.tls.enabled() && !srv.is_valid()) {
    return Error{"HTTP TLS setup failed: check tls.cert_file, tls.key_file and tls.client_ca_file"};
  }
  if (ep.value().port == 0) {
    impl_->bound_port = srv.bind_to_any_port(ep.value().host);
    if (impl_->bound_port <= 0) return Error{"cannot listen on HTTP address " + impl_->options.address};
  } else {
    if (!srv.bind_to_port(ep.value().host, ep.value().port)) {
      return Error{"cannot listen on HTTP address " + impl_->options.address +
                   " (in use, or the host is not a local address)"};
    }
    impl_->bound_port = ep.value().port;
  }
  // Debian's libcpp-httplib is built with a listen backlog of 5: a burst of connects
  // beyond it has its SYNs dropped and retried after 1 s, 3 s, ... Listening again on
  // the bound socket raises the queue.
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, 1024);
  impl_->thread = std::thread([this] { impl_->server->listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs; wait for it so that a
  // stop right after start cannot be lost.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!srv.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!srv.is_running()) return Error{"HTTP server on " + impl_->options.address + " did not start"};
  return Status::Ok();
}

int HttpServer::port() const { return impl_->bound_port; }

namespace {

// Shuts down (without closing: their threads own the descriptors) every connected
// socket of this process whose local port is `port`: an idle kept-alive client would
// otherwise hold its connection thread, and so the stop, for the keep-alive timeout.
void shutdownConnectionsOnPort(int port) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* e = ::readdir(dir)) {
    const auto fd = parseInt(e->d_name, 0, INT32_MAX);
    if (!fd || *fd == ::dirfd(dir)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t len = sizeof local, plen = sizeof peer;
    if (::getsockname(static_cast<int>(*fd), reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
    if (::getpeername(static_cast<int>(*fd), reinterpret_cast<sockaddr*>(&peer), &plen) != 0) continue;
    int local_port = -1;
    if (local.ss_family == AF_INET) local_port = ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
    if (local.ss_family == AF_INET6) local_port = ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
    if (local_port == port) ::shutdown(static_cast<int>(*fd), SHUT_RDWR);
  }
  ::closedir(dir);
}

}  // namespace

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->streams_stop.request_stop();
  impl_->server->stop();
  shutdownConnectionsOnPort(impl_->bound_port);
  impl_->thread.join();
}

}  // namespace dspy
