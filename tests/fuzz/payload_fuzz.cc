// libFuzzer target: task payloads as SubmitTask and POST /queue/submit carry them: the
// input is split into a payload_json text and an args text (at the first NUL); both are
// read or refused with a message, never a crash. Task ids and retry texts too; the
// payload's JSON text as the store writes it equals nlohmann's.
// Build and run: scripts/fuzz.sh payload [seconds]   (seeds: tests/fuzz/payload/).
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/Payload.h"
#include "orchestrator/tasks/Task.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  dspy::Payload p{{"command", "echo"}, {"payload_json", input.substr(0, nul)}};
  if (nul != std::string::npos) p["args"] = input.substr(nul + 1);
  auto expanded = dspy::expandPayload(p);
  if (expanded.ok()) {
    if (expanded.value().count("payload_json") && !expanded.value().count("command")) __builtin_trap();
    (void)dspy::payloadStringList(expanded.value(), "args");
    auto again = dspy::expandPayload(expanded.value());  // expanding twice changes nothing more
    (void)again;
  } else if (expanded.error().empty()) {
    __builtin_trap();
  }
  (void)dspy::payloadStringList(p, "args");
  // The store's JSON writer: the same text as nlohmann's, or the same refusal.
  std::string ours, theirs;
  bool ours_threw = false, theirs_threw = false;
  try {
    ours = dspy::payloadToJson(p);
  } catch (const nlohmann::json::exception&) {
    ours_threw = true;
  }
  try {
    theirs = nlohmann::json(p).dump();
  } catch (const nlohmann::json::exception&) {
    theirs_threw = true;
  }
  if (ours_threw != theirs_threw || ours != theirs) __builtin_trap();
  (void)dspy::orchestrator::validateTaskId(input);
  (void)dspy::orchestrator::retryFromText(input);
  return 0;
}
