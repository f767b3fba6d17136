// Integer parsing, the stable hash, time as text.
#include "common/Text.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace dspy {

std::optional<std::int64_t> parseInt(std::string_view text, std::int64_t min, std::int64_t max) {
  if (text.empty()) return std::nullopt;
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || v < min || v > max) return std::nullopt;
  return v;
}

StableHash& StableHash::add(std::string_view bytes) {
  for (unsigned char c : bytes) {
    h_ ^= c;
    h_ *= 1099511628211ULL;
  }
  return *this;
}

StableHash& StableHash::addField(std::string_view field) {
  add(std::to_string(field.size()) + ":");
  return add(field);
}

std::string StableHash::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
  return buf;
}

bool nestedDeeperThan(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

std::string tooDeepMessage(std::string_view what) {
  return std::string(what) + " is nested deeper than " + std::to_string(kMaxNesting) + " levels";
}

std::string rfc3339Ms(std::int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

}  // namespace dspy
