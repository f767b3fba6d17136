// Small helpers shared by the C++ benchmarks: percentiles and JSON output.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dspy::bench {

struct Summary {
  double p50_us = 0, p99_us = 0, max_us = 0;
  std::size_t samples = 0;
  double per_second = 0;
};

// The orchestrator config the submission benchmarks (B2, B2b, B9) run: a `noop` class
// "bench" (accepted tasks also run) and a class "hold" whose single slot is held by a
// sleep, so that accepted tasks only queue (the sleep ends by itself after
// `hold_seconds`, even when its orchestrator was killed).
inline std::string benchOrchestratorConfig(int grpc_port, int http_port, const std::string& dir,
                                           const std::string& sync, const std::string& log_level,
                                           int hold_seconds) {
  return "grpc:\n  address: 127.0.0.1:" + std::to_string(grpc_port) + "\nhttp:\n  address: 127.0.0.1:" +
         std::to_string(http_port) + "\nstore:\n  dir: " + dir + "/state\n  sync: " + sync +
         "\nlog:\n  level: " + log_level +
         "\ntasks:\n  classes:\n    bench:\n      executor: noop\n"
         "      limiter: {kind: fixed, initial: 4, max: 4}\n"
         "      max_queued: 10000000\n"
         "    hold:\n      executor: process\n"
         "      limiter: {kind: fixed, initial: 1, max: 1}\n"
         "      max_queued: 10000000\n"
         "executors:\n  process:\n    commands:\n"
         "      wait: {argv: [/bin/sleep, '" + std::to_string(hold_seconds) + "']}\n";
}

inline Summary summarize(std::vector<double> us, double seconds) {
  Summary s;
  s.samples = us.size();
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  s.p50_us = us[us.size() / 2];
  s.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  s.max_us = us.back();
  s.per_second = static_cast<double>(us.size()) / seconds;
  return s;
}

inline nlohmann::json toJson(const Summary& s) {
  return {{"p50_us", s.p50_us}, {"p99_us", s.p99_us}, {"max_us", s.max_us}, {"samples", s.samples},
          {"per_second", s.per_second}};
}

inline void writeJson(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(2) << "\n";
  std::printf("wrote %s\n", path.c_str());
}

// Resident set size (VmRSS) and its peak (VmHWM) of a process, in MB.
inline std::pair<double, double> rssMb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  double rss = 0, hwm = 0;
  while (in >> key) {
    if (key == "VmRSS:") in >> rss;
    if (key == "VmHWM:") in >> hwm;
  }
  return {rss / 1024.0, hwm / 1024.0};
}

}  // namespace dspy::bench
