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
