// libFuzzer target: a compose file (and the same bytes as our own services format) must
// read or be refused with a message; never crash, hang or leak. Whatever reads as
// compose must also survive the round trip through our YAML.
// Build and run: scripts/fuzz.sh compose [seconds]   (seeds: tests/fuzz/compose/).
#include <cstddef>
#include <cstdint>
#include <string>

#include "env_manager/services/ServiceSpec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dspy::envmanager;
  const std::string text(reinterpret_cast<const char*>(data), size);
  ServicesLoadOptions o;
  o.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "SET") return std::string("value");
    if (name == "EMPTY") return std::string();
    return std::nullopt;
  };
  auto r = parseCompose(text, "fuzz.yml", "/nonexistent", o);
  if (r.ok()) {
    auto back = parseServices(toNativeYaml(r.value()), "fuzz-native.yaml");
    if (!back.ok()) __builtin_trap();  // our own output must read back
  }
  (void)parseServices(text, "fuzz.yaml");
  return 0;
}
