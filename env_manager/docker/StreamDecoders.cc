// Docker stream decoding.
#include "env_manager/docker/StreamDecoders.h"

#include "common/Text.h"

#include <charconv>
#include <cstdint>
#include <ctime>

namespace dspy::envmanager::docker {
namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int* out) {
  if (pos + n > s.size()) return false;
  auto v = parseInt(s.substr(pos, n), 0, INT32_MAX);
  if (!v) return false;
  *out = static_cast<int>(*v);
  return true;
}

}  // namespace

std::optional<std::int64_t> parseRfc3339Nanos(std::string_view s) {
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
      s[16] != ':') {
    return std::nullopt;
  }
  if (!digits(s, 0, 4, &year) || !digits(s, 5, 2, &mon) || !digits(s, 8, 2, &day) || !digits(s, 11, 2, &hour) ||
      !digits(s, 14, 2, &min) || !digits(s, 17, 2, &sec)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 9) {
        nanos = nanos * 10 + (s[pos] - '0');
        ++n;
      }
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (; n < 9; ++n) nanos *= 10;
  }
  std::int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos + 6 <= s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, &oh) || s[pos + 3] != ':' || !digits(s, pos + 4, 2, &om)) return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const std::int64_t epoch = timegm(&tm) - offset_s;
  // Nanoseconds in 64 bits reach the year 2262: later (or much earlier) is not a time
  // this stream can carry.
  constexpr std::int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
  if (epoch > kMaxSeconds || epoch < -kMaxSeconds) return std::nullopt;
  return epoch * 1'000'000'000 + nanos;
}

bool LogDecoder::emitLine(int stream, std::string line, const std::function<bool(const LogLine&)>& on_line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  LogLine out;
  out.stream = stream == 2 ? "stderr" : "stdout";
  if (timestamps_) {
    const auto space = line.find(' ');
    auto ts = parseRfc3339Nanos(std::string_view(line).substr(0, space));
    if (ts) {
      out.timestamp_ns = *ts;
      line.erase(0, space == std::string::npos ? line.size() : space + 1);
    }
  }
  out.message = std::move(line);
  return on_line(out);
}

bool LogDecoder::emitPayload(int stream, std::string_view payload,
                             const std::function<bool(const LogLine&)>& on_line) {
  std::string& partial = partial_[stream == 2 ? 2 : 1];
  std::size_t start = 0;
  while (true) {
    const auto nl = payload.find('\n', start);
    if (nl == std::string_view::npos) {
      partial.append(payload.substr(start));
      return true;
    }
    std::string line = std::move(partial);
    partial.clear();
    line.append(payload.substr(start, nl - start));
    if (!emitLine(stream, std::move(line), on_line)) return false;
    start = nl + 1;
  }
}

bool LogDecoder::feed(std::string_view bytes, const std::function<bool(const LogLine&)>& on_line) {
  if (!multiplexed_) return emitPayload(1, bytes, on_line);
  frame_.append(bytes);
  std::size_t pos = 0;
  bool go_on = true;
  while (go_on && frame_.size() - pos >= 8) {
    const auto* h = reinterpret_cast<const unsigned char*>(frame_.data() + pos);
    const std::size_t len = (std::size_t{h[4]} << 24) | (std::size_t{h[5]} << 16) | (std::size_t{h[6]} << 8) | h[7];
    if (frame_.size() - pos - 8 < len) break;
    const int stream = h[0] == 2 ? 2 : 1;  // 0 (stdin) and 1 both go to stdout
    go_on = emitPayload(stream, std::string_view(frame_).substr(pos + 8, len), on_line);
    pos += 8 + len;
  }
  frame_.erase(0, pos);
  return go_on;
}

bool LogDecoder::finish(const std::function<bool(const LogLine&)>& on_line) {
  for (int s : {1, 2}) {
    if (!partial_[s].empty()) {
      std::string line = std::move(partial_[s]);
      partial_[s].clear();
      if (!emitLine(s, std::move(line), on_line)) return false;
    }
  }
  return true;
}

bool LineSplitter::feed(std::string_view bytes, const std::function<bool(std::string_view)>& on_line) {
  buf_.append(bytes);
  std::size_t start = 0;
  bool go_on = true;
  while (go_on) {
    const auto nl = buf_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(buf_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) go_on = on_line(line);
    start = nl + 1;
  }
  buf_.erase(0, start);
  return go_on;
}

bool LineSplitter::finish(const std::function<bool(std::string_view)>& on_line) {
  if (buf_.empty()) return true;
  std::string rest = std::move(buf_);
  buf_.clear();
  return on_line(rest);
}

}  // namespace dspy::envmanager::docker
