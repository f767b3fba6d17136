// libFuzzer target: sbatch template rendering and options from a task payload. The input
// is a template, a line "----", then payload lines key=value. No payload value may bring a
// control character into a rendered script; shell quoting always quotes.
// Build and run: scripts/fuzz.sh sbatch [seconds]   (seeds: tests/fuzz/sbatch/).
#include <cstddef>
#include <cstdint>
#include <string>

#include "orchestrator/slurm/SlurmScript.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dspy::orchestrator::slurm;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto cut = input.find("\n----\n");
  const std::string tmpl = input.substr(0, cut);
  dspy::Payload payload;
  if (cut != std::string::npos) {
    std::size_t at = cut + 6;
    while (at < input.size()) {
      auto end = input.find('\n', at);
      if (end == std::string::npos) end = input.size();
      const std::string line = input.substr(at, end - at);
      const auto eq = line.find('=');
      if (eq != std::string::npos) payload[line.substr(0, eq)] = line.substr(eq + 1);
      at = end + 1;
    }
  }
  auto control = [](const std::string& text) {
    for (char c : text) {
      if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') return true;
    }
    return false;
  };
  auto r = renderTemplate("fuzz.sbatch", tmpl, payload);
  // Templates are the operator's; payload values are not: none may bring a control
  // character into the script.
  if (r.ok() && !control(tmpl) && control(r.value().script)) __builtin_trap();
  (void)sbatchOptions(payload);
  for (const auto& [k, v] : payload) {
    (void)checkOption(k, v);
    const std::string q = shellQuote(v);
    if (q.size() < 2 || q.front() != '\'' || q.back() != '\'') __builtin_trap();
  }
  return 0;
}
