// Registry setup with build info and process gauges.
#include "common/Metrics.h"

#include <prometheus/counter.h>

#include <dirent.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

namespace dspy {
namespace {

double residentBytes() {
  std::ifstream f("/proc/self/statm");
  long pages_total = 0;
  long pages_resident = 0;
  f >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double openFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  double n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 2;  // "." and ".."
}

}  // namespace

Metrics::Metrics(const std::string& daemon, const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::BuildGauge()
      .Name("dspy_build_info")
      .Help("Build information; the value is always 1")
      .Register(*registry_)
      .Add({{"daemon", daemon}, {"version", version}})
      .Set(1);
  const auto start = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  prometheus::BuildGauge()
      .Name("process_start_time_seconds")
      .Help("Start time of the process since the Unix epoch in seconds")
      .Register(*registry_)
      .Add({})
      .Set(start);
  rss_bytes_ = &prometheus::BuildGauge()
                    .Name("process_resident_memory_bytes")
                    .Help("Resident memory size in bytes")
                    .Register(*registry_)
                    .Add({});
  open_fds_ = &prometheus::BuildGauge()
                   .Name("process_open_fds")
                   .Help("Number of open file descriptors")
                   .Register(*registry_)
                   .Add({});
}

Metrics::~Metrics() = default;

void Metrics::addScrapeHook(std::function<void()> hook) {
  std::lock_guard lock(render_mu_);
  hooks_.push_back(std::move(hook));
}

std::string Metrics::render() {
  std::lock_guard lock(render_mu_);
  for (const auto& hook : hooks_) hook();
  rss_bytes_->Set(residentBytes());
  open_fds_->Set(openFds());
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

void CounterFollower::to(double total) {
  if (total > seen) counter->Increment(total - seen);
  seen = total;
}

}  // namespace dspy
