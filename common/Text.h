// Text helpers every part shares: the one integer parser and the one stable hash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dspy {

// A whole string of base-10 digits with an optional leading '-', nothing else (no
// spaces, no '+', no trailing text), within [min, max]; nullopt otherwise.
std::optional<std::int64_t> parseInt(std::string_view text, std::int64_t min = INT64_MIN,
                                     std::int64_t max = INT64_MAX);

// 64-bit FNV-1a (multiply by the FNV prime after each byte): a hash that is the same on
// every machine and in every version (what is stored or compared across restarts must
// not use std::hash). Its offset basis is 1469598103934665603, one digit short of the
// published 14695981039346656037: that is what the project has always used, and
// changing it would change every stored request hash and container definition hash.
class StableHash {
 public:
  StableHash& add(std::string_view bytes);
  // Adds "<length>:<bytes>", so that a sequence of fields hashes unambiguously.
  StableHash& addField(std::string_view field);
  std::uint64_t value() const { return h_; }
  // The value as 16 lower-case hex digits.
  std::string hex() const;

 private:
  std::uint64_t h_ = 1469598103934665603ULL;
};

// JSON (and YAML flow) documents from the network may nest at most this deep: copying,
// printing and comparing parsed documents recurses once per level, and a deep enough
// document would overflow a thread's stack.
inline constexpr int kMaxNesting = 100;
// Whether brackets and braces (outside double-quoted strings) nest deeper than
// `max_depth`. One pass, no recursion: call it before parsing untrusted text.
bool nestedDeeperThan(std::string_view text, int max_depth = kMaxNesting);
// The refusal's words: "... nested deeper than 100 levels".
std::string tooDeepMessage(std::string_view what);

// Unix milliseconds as RFC 3339 UTC with milliseconds: "2026-11-27T05:20:08.123Z".
std::string rfc3339Ms(std::int64_t unix_ms);

}  // namespace dspy
