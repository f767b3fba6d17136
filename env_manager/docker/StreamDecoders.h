// Decoders for the byte streams the Docker Engine sends: the multiplexed stdout/stderr
// framing of logs and exec output, RFC 3339 timestamps, and newline-delimited JSON
// (events, pull progress). Pure and incremental: bytes may arrive split anywhere.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "env_manager/docker/DockerApi.h"

namespace dspy::envmanager::docker {

// "2024-01-02T03:04:05.123456789Z" (or with a +hh:mm offset) -> ns since the epoch.
std::optional<std::int64_t> parseRfc3339Nanos(std::string_view text);

// Splits a log stream into lines. Multiplexed streams carry 8-byte frame headers
// (stream type, three zero bytes, big-endian length); TTY streams are raw stdout.
class LogDecoder {
 public:
  LogDecoder(bool multiplexed, bool timestamps) : multiplexed_(multiplexed), timestamps_(timestamps) {}
  // Returns false once on_line asked to stop.
  bool feed(std::string_view bytes, const std::function<bool(const LogLine&)>& on_line);
  // Emits lines still missing their newline at the end of the stream.
  bool finish(const std::function<bool(const LogLine&)>& on_line);
  // Bytes of an incomplete frame header or body still held.
  std::size_t pending() const { return frame_.size(); }

 private:
  bool emitPayload(int stream, std::string_view payload, const std::function<bool(const LogLine&)>& on_line);
  bool emitLine(int stream, std::string line, const std::function<bool(const LogLine&)>& on_line);

  bool multiplexed_;
  bool timestamps_;
  std::string frame_;
  std::string partial_[3];
};

// Splits newline-delimited text into lines (without the newline).
class LineSplitter {
 public:
  bool feed(std::string_view bytes, const std::function<bool(std::string_view)>& on_line);
  bool finish(const std::function<bool(std::string_view)>& on_line);

 private:
  std::string buf_;
};

}  // namespace dspy::envmanager::docker
