// Metrics: the daemon's Prometheus registry and its text rendering for GET /metrics.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace dspy {

// A counter that follows a total kept elsewhere (read at scrape time).
struct CounterFollower {
  prometheus::Counter* counter;
  double seen = 0;
  void to(double total);
};

class Metrics {
 public:
  Metrics(const std::string& daemon, const std::string& version);
  ~Metrics();

  prometheus::Registry& registry() { return *registry_; }
  // Prometheus text format 0.0.4, with process gauges refreshed and scrape hooks run.
  std::string render();
  // Runs before every render, to set gauges that are cheaper to read than to track.
  void addScrapeHook(std::function<void()> hook);

  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* rss_bytes_;
  prometheus::Gauge* open_fds_;
  std::mutex render_mu_;
  std::vector<std::function<void()>> hooks_;
};

}  // namespace dspy
