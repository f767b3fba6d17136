// Integer parsing and the stable hash.
#include "common/Text.h"

#include <charconv>
#include <cstdio>

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

}  // namespace dspy
