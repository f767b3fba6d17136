// libFuzzer target: Docker's multiplexed log frames (and raw TTY logs), with and without
// timestamps, and newline-delimited JSON (events, pull progress), fed in pieces split at
// the places the input's first bytes choose: lines or a clean stop, never a crash, and
// held bytes bounded by what was fed. Each line, and the whole input, also goes through
// the readers of the Engine's JSON answers (inspect, list, stats, exec, networks).
// Build and run: scripts/fuzz.sh docker-streams [seconds]   (seeds: tests/fuzz/docker-streams/).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "env_manager/docker/DockerJson.h"
#include "env_manager/docker/StreamDecoders.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dspy::envmanager::docker;
  if (size < 2) return 0;
  const bool multiplexed = data[0] & 1;
  const bool timestamps = data[0] & 2;
  const std::size_t step = 1 + data[1] % 64;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::size_t lines = 0;
  LogDecoder logs(multiplexed, timestamps);
  auto on_line = [&](const LogLine&) { return ++lines < 100'000; };
  bool go = true;
  for (std::size_t at = 0; go && at < bytes.size(); at += step) {
    go = logs.feed(bytes.substr(at, step), on_line);
    if (logs.pending() > bytes.size() + 8) __builtin_trap();
  }
  if (go) (void)logs.finish(on_line);

  LineSplitter split;
  auto on_json = [](std::string_view line) {
    (void)parsePullLine(line);
    (void)parseEventLine(line);
    (void)parseRfc3339Nanos(line);
    return true;
  };
  for (std::size_t at = 0; at < bytes.size(); at += step) split.feed(bytes.substr(at, step), on_json);
  split.finish(on_json);
  const std::string whole(bytes);
  (void)parseInspect(whole);
  (void)parseImageInspect(whole);
  (void)parseContainerList(whole);
  (void)parseStats(whole);
  (void)parseWaitStatus(whole);
  (void)parseTty(whole);
  (void)parseId(whole);
  (void)parseExecExitCode(whole);
  (void)parseNetworksNamed(whole, "a");
  return 0;
}
