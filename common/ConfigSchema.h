// ConfigSchema: a declarative description of a YAML config file. Each key path is bound
// to a typed destination (and optionally an environment variable); loading checks types
// and ranges, rejects unknown and duplicate keys, and names file, line and key in every
// error. Every key has a default, so a partial file (or none) is valid.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/Result.h"

namespace YAML {
class Node;
}

namespace dspy::config {

// Looks up an environment variable; injectable so tests never touch the process env.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup processEnv();
EnvLookup mapEnv(std::map<std::string, std::string> vars);

// "file:line:col: message" for a YAML node.
std::string locate(const std::string& file, const YAML::Node& node, const std::string& message);

struct Endpoint {
  std::string host;
  int port = 0;
};
// Parses "host:port" or "[v6]:port"; port 0..65535.
Result<Endpoint> parseEndpoint(const std::string& text);

class Schema {
 public:
  using Check = std::function<Status()>;
  // Parses a subtree the schema does not describe key by key (e.g. a map keyed by
  // user-chosen names); `path` is its dotted key for messages.
  using CustomParser =
      std::function<Status(const YAML::Node& node, const std::string& file, const std::string& path)>;

  void string(std::string path, std::string* out, std::string env = {});
  void choice(std::string path, std::string* out, std::vector<std::string> allowed, std::string env = {});
  void integer(std::string path, std::int64_t* out, std::int64_t min, std::int64_t max, std::string env = {});
  void integer(std::string path, int* out, int min, int max, std::string env = {});
  void number(std::string path, double* out, double min, double max, std::string env = {});
  void boolean(std::string path, bool* out, std::string env = {});
  // "host:port", checked when loaded.
  void address(std::string path, std::string* out, std::string env = {});
  // A YAML list of strings; from the environment, a comma-separated list.
  void stringList(std::string path, std::vector<std::string>* out, std::string env = {});
  void custom(std::string path, CustomParser parse);
  // An environment variable with a meaning of its own (e.g. VERBOSE=1 -> debug logs).
  void env(std::string var, std::function<Status(const std::string& value)> apply);
  // A rule across keys, run after the file and the environment were applied.
  void check(Check fn);

  // Reads `file` (empty = defaults only), then the environment, then the checks.
  // On error nothing is guaranteed about the destinations: load into a fresh object.
  Status load(const std::string& file, const EnvLookup& env) const;
  // The same from text; `label` names the source in messages.
  Status loadText(const std::string& text, const std::string& label, const EnvLookup& env) const;
  // Applies a mapping node under `prefix` (for nested schemas inside custom parsers).
  Status apply(const YAML::Node& node, const std::string& file, const std::string& prefix) const;

  // Every key path, sorted (for docs and `config validate` output).
  std::vector<std::string> keys() const;
  // Every typed key's current value as JSON text (a string, number, boolean or list),
  // by key path, sorted: what `dspy-agent config show` prints after a load.
  std::vector<std::pair<std::string, std::string>> values() const;
  // The keys parsed by custom parsers (their values are shown from the file itself).
  std::vector<std::string> customKeys() const;
  // The environment variable of a typed key ("" if none).
  std::string envOf(const std::string& path) const;

 private:
  struct Field {
    std::string type;  // for messages: "an integer", "a string", ...
    std::function<std::optional<std::string>(const YAML::Node&)> from_yaml;  // error or nullopt
    std::function<std::optional<std::string>(const std::string&)> from_text;
    std::function<std::string()> show;  // the current value as JSON text
    std::string env;
  };
  void add(std::string path, Field field);
  void walk(const YAML::Node& map, const std::string& file, const std::string& prefix,
            std::vector<std::string>& errors) const;
  bool isSection(const std::string& path) const;
  std::string knownUnder(const std::string& prefix) const;
  Status applyEnvAndChecks(const EnvLookup& env) const;

  std::map<std::string, Field> fields_;
  std::map<std::string, CustomParser> custom_;
  std::vector<std::pair<std::string, std::function<Status(const std::string&)>>> env_hooks_;
  std::vector<Check> checks_;
};

}  // namespace dspy::config
