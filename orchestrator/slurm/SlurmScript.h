// SlurmScript: turns a task's payload into an sbatch script and sbatch's arguments.
//
// Templates (deploy/slurm/NAME.sbatch) hold placeholders `${NAME:-default}` and
// `${NAME:?message}` (required); NAME is the payload key in capitals (payload `skill`
// fills `${SKILL:-...}`). A plain `${VAR}` or `$VAR` is the shell's and is left alone.
// Values of the keys that Slurm options take (partition, nodes, time_limit, ...) must
// have their option's form and are written as they are; any other value is free text,
// written single-quoted as one shell word, and may not appear in an #SBATCH line. No
// value may hold a control character. So no payload can add a shell command or an
// #SBATCH directive.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/Payload.h"
#include "common/Result.h"

namespace dspy::orchestrator::slurm {

// A payload key with a fixed form; `flag` is its sbatch option ("" for keys that only
// templates use).
struct OptionKey {
  const char* key;
  const char* flag;
  const char* form;  // described in errors, e.g. "a whole number >= 1"
};
const std::vector<OptionKey>& optionKeys();

// Checks `value` against the form of option key `key`; Ok for keys without a form.
Status checkOption(const std::string& key, const std::string& value);
// 'text' with embedded quotes escaped: one shell word whatever it holds.
std::string shellQuote(const std::string& text);

struct Rendered {
  std::string script;
  std::vector<std::string> used_keys;  // payload keys the template read
};

// `name` is for messages. Fails naming the line and key for: a missing required value,
// a value of the wrong form, free text in an #SBATCH line, a control character.
Result<Rendered> renderTemplate(const std::string& name, const std::string& text, const Payload& payload);

// sbatch's options from the payload's option keys that have a flag (validated), plus
// time_limit from timeout_seconds when the payload names no time limit.
Result<std::vector<std::string>> sbatchOptions(const Payload& payload);

// A file name for a task id: its safe characters and a short hash (ids may hold anything).
std::string safeName(const std::string& task_id);
// The comment every job of ours carries: finds a job after a crash between sbatch and
// the store ("dspy:<hash of task id>:<attempt>").
std::string jobMarker(const std::string& task_id, int attempt);

}  // namespace dspy::orchestrator::slurm
