// Text and JSON log formats for spdlog.
#include "common/Logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace dspy {
namespace {

// One JSON object a line; the message is escaped by nlohmann::json.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string daemon) : daemon_(std::move(daemon)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto t = msg.time;
    const std::time_t secs = system_clock::to_time_t(t);
    const auto micros = duration_cast<microseconds>(t.time_since_epoch()).count() % 1'000'000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[64];
    const std::size_t n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(ts + n, sizeof ts - n, ".%06lldZ", static_cast<long long>(micros));
    nlohmann::json j = {
        {"ts", ts},
        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                              spdlog::level::to_string_view(msg.level).size())},
        {"daemon", daemon_},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
        {"thread", msg.thread_id},
    };
    const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(daemon_); }

 private:
  std::string daemon_;
};

}  // namespace

void setupLogging(const LogConfig& cfg, const std::string& daemon_name) {
  auto logger = spdlog::default_logger();
  if (logger->name() != daemon_name) {
    logger = std::make_shared<spdlog::logger>(daemon_name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
    spdlog::set_default_logger(logger);
  }
  if (cfg.format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>(daemon_name));
  } else {
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v"));
  }
  logger->set_level(spdlog::level::from_str(cfg.level));
  logger->flush_on(spdlog::level::info);
}

}  // namespace dspy
