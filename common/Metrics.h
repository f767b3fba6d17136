// Metrics: the daemon's Prometheus registry and its text rendering for GET /metrics.
#pragma once

#include <memory>
#include <mutex>
#include <string>

namespace prometheus {
class Registry;
class Gauge;
}  // namespace prometheus

namespace dspy {

class Metrics {
 public:
  Metrics(const std::string& daemon, const std::string& version);
  ~Metrics();

  prometheus::Registry& registry() { return *registry_; }
  // Prometheus text format 0.0.4, with process gauges refreshed.
  std::string render();

  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* rss_bytes_;
  prometheus::Gauge* open_fds_;
  std::mutex render_mu_;
};

}  // namespace dspy
