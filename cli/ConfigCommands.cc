// The config commands: check files before anything starts, show the effective values
// with where each came from, and write the default files.
#include "cli/ConfigCommands.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

#include "cli/Addresses.h"
#include "cli/DefaultConfigs.h"
#include "cli/Terminal.h"
#include "common/ConfigSchema.h"
#include "env_manager/EnvManagerConfig.h"
#include "env_manager/services/ServiceSpec.h"
#include "orchestrator/OrchestratorConfig.h"

namespace dspy::cli {
namespace {
namespace fs = std::filesystem;

std::string envOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : fallback;
}

// Which file is it? A services file has `services:` entries with an `image`; a daemon's
// file is told by keys only that daemon has. "" when it cannot be told (or not YAML).
std::string kindOf(const std::string& file, std::string* why) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    *why = "cannot read " + file;
    return "";
  } catch (const YAML::Exception& e) {
    *why = file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg;
    return "";
  }
  if (!root.IsMap()) {
    *why = file + ": not a YAML mapping";
    return "";
  }
  if (root["services"] && root["services"].IsMap()) {
    for (const auto& kv : root["services"]) {
      if (kv.second.IsMap() && kv.second["image"]) return "services";
    }
  }
  for (const char* key : {"store", "executors", "workflows", "kafka", "events", "slurm", "env_manager"}) {
    if (root[key]) return "orchestrator";
  }
  for (const char* key : {"docker", "lifecycle", "services"}) {
    if (root[key]) return "env-manager";
  }
  *why = file + ": cannot tell which file this is (no key only the orchestrator's, env-manager's or a services "
                "file has); use --env-manager FILE or --orchestrator FILE";
  return "";
}

// Loads `file` as `kind` would; "" when it is valid, else the line-numbered errors.
std::string check(const std::string& kind, const std::string& file) {
  const auto env = config::processEnv();
  if (kind == "env-manager") {
    auto r = envmanager::loadConfig(file, env);
    return r ? "" : r.error();
  }
  if (kind == "orchestrator") {
    auto r = orchestrator::loadConfig(file, env);
    return r ? "" : r.error();
  }
  auto r = envmanager::loadServicesFile(file);
  return r ? "" : r.error();
}

int validate(std::string em_file, std::string orch_file, const std::vector<std::string>& files, bool as_json) {
  if (em_file.empty() && orch_file.empty() && files.empty()) {
    em_file = envOr("ENV_MANAGER_CONFIG", "/etc/dspy-agent/env-manager.yaml");
    orch_file = envOr("ORCHESTRATOR_CONFIG", "/etc/dspy-agent/orchestrator.yaml");
  }
  int rc = 0;
  nlohmann::json results = nlohmann::json::array();
  auto report = [&](const std::string& what, const std::string& file, const std::string& error) {
    results.push_back({{"file", file}, {"kind", what}, {"valid", error.empty()}, {"error", error}});
    if (!error.empty()) rc = 1;
    if (as_json) return;
    if (error.empty()) {
      std::printf("%s: %s: %s\n", what.c_str(), file.c_str(), paint("OK", Tone::Good).c_str());
    } else {
      std::printf("%s: %s: %s\n%s\n", what.c_str(), file.c_str(), paint("INVALID", Tone::Bad).c_str(), error.c_str());
    }
  };
  if (!em_file.empty()) report("env-manager", em_file, check("env-manager", em_file));
  if (!orch_file.empty()) report("orchestrator", orch_file, check("orchestrator", orch_file));
  for (const auto& f : files) {
    std::string why;
    const std::string kind = kindOf(f, &why);
    report(kind.empty() ? "unknown" : kind == "services" ? "services file" : kind, f,
           kind.empty() ? why : check(kind, f));
  }
  if (as_json) std::cout << nlohmann::json{{"ok", rc == 0}, {"files", results}}.dump(2) << "\n";
  return rc;
}

int keys() {
  {
    envmanager::EnvManagerConfig cfg;
    config::Schema s;
    envmanager::describe(s, cfg);
    for (const auto& k : s.keys()) std::printf("env-manager   %s\n", k.c_str());
  }
  orchestrator::OrchestratorConfig cfg;
  config::Schema s;
  orchestrator::describe(s, cfg);
  for (const auto& k : s.keys()) std::printf("orchestrator  %s\n", k.c_str());
  return 0;
}

bool secretKey(const std::string& key) {
  for (const char* word : {"token", "password", "secret", "passwd"}) {
    if (key.find(word) != std::string::npos) return true;
  }
  return false;
}

// A YAML subtree as JSON (scalars stay text), secrets under it replaced.
nlohmann::json toJson(const YAML::Node& n, const std::string& key) {
  if (n.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : n) j[kv.first.Scalar()] = toJson(kv.second, kv.first.Scalar());
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& item : n) j.push_back(toJson(item, key));
    return j;
  }
  if (n.IsScalar()) return secretKey(key) && !n.Scalar().empty() ? "<redacted>" : n.Scalar();
  return nullptr;
}

// The node at a dotted key path (undefined when absent).
YAML::Node at(const YAML::Node& root, const std::string& path) {
  YAML::Node n;
  n.reset(root);  // reset, not =: assigning a YAML::Node writes into the node it refers to
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!n.IsMap() || !n[part]) return YAML::Node(YAML::NodeType::Undefined);
    n.reset(n[part]);
    if (dot == std::string::npos) return n;
    start = dot + 1;
  }
}

// {"file", "values": {key: value}, "sources": {key: "file" | "env VAR" | "default"}}, or
// the load's error.
template <class Config, class Describe>
Result<nlohmann::json> effective(const std::string& file, Describe describe) {
  Config cfg;
  config::Schema schema;
  describe(schema, cfg);
  const auto env = config::processEnv();
  if (Status s = schema.load(file, env); !s.ok()) return Error{s.error(), ErrorKind::InvalidArgument};
  YAML::Node root;
  if (!file.empty()) root = YAML::LoadFile(file);  // loaded fine just above
  nlohmann::json values = nlohmann::json::object(), sources = nlohmann::json::object();
  for (const auto& [key, text] : schema.values()) {
    nlohmann::json v = nlohmann::json::parse(text, nullptr, false);
    if (secretKey(key) && v.is_string() && !v.get<std::string>().empty()) v = "<redacted>";
    values[key] = v;
    const std::string var = schema.envOf(key);
    if (!var.empty() && env(var)) {
      sources[key] = "env " + var;
    } else {
      sources[key] = at(root, key).IsDefined() ? "file" : "default";
    }
  }
  for (const auto& key : schema.customKeys()) {
    const YAML::Node n = at(root, key);
    values[key] = n.IsDefined() ? toJson(n, key) : nlohmann::json("(built-in default; see docs/configuration.md)");
    sources[key] = n.IsDefined() ? "file" : "default";
  }
  return nlohmann::json{{"file", file}, {"values", values}, {"sources", sources}};
}

int show(std::string em_file, std::string orch_file, bool as_json) {
  auto em = effective<envmanager::EnvManagerConfig>(
      em_file, [&em_file](config::Schema& s, envmanager::EnvManagerConfig& c) {
        const fs::path parent = fs::path(em_file).parent_path();
        envmanager::describe(s, c, em_file.empty() ? "" : parent.empty() ? "." : parent.string());
      });
  auto orch = effective<orchestrator::OrchestratorConfig>(
      orch_file, [](config::Schema& s, orchestrator::OrchestratorConfig& c) { orchestrator::describe(s, c); });
  int rc = 0;
  for (const auto* r : {&em, &orch}) {
    if (!*r) {
      std::fprintf(stderr, "%s\n", r->error().c_str());
      rc = 1;
    }
  }
  if (rc != 0) return rc;
  if (as_json) {
    std::cout << nlohmann::json{{"env-manager", em.value()}, {"orchestrator", orch.value()}}.dump(2) << "\n";
    return 0;
  }
  for (const auto& [name, r] : {std::pair<const char*, const nlohmann::json*>{"env-manager", &em.value()},
                                {"orchestrator", &orch.value()}}) {
    const std::string file = (*r)["file"].get<std::string>();
    std::printf("# %s: %s\n", name, file.empty() ? "no file (defaults and environment)" : file.c_str());
    for (const auto& [key, value] : (*r)["values"].items()) {
      const std::string source = (*r)["sources"][key].get<std::string>();
      std::printf("%-44s %-40s %s\n", key.c_str(), value.dump().c_str(),
                  paint("(" + source + ")", source == "default" ? Tone::Dim : Tone::Warn).c_str());
    }
    std::printf("\n");
  }
  return 0;
}

int init(const std::string& dir, bool local, bool force, bool as_json) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  std::vector<std::pair<fs::path, std::string>> done;  // path, written | kept
  for (const auto& f : defaultConfigs()) {
    if (f.local != local) continue;
    const fs::path path = fs::path(dir) / f.name;
    std::string action = "kept";
    if (force || !fs::exists(path)) {
      const fs::path tmp = path.string() + ".tmp";
      std::ofstream out(tmp, std::ios::trunc);
      out << f.text;
      out.close();
      ::chmod(tmp.c_str(), 0640);
      fs::rename(tmp, path, ec);
      if (!out || ec) {
        std::fprintf(stderr, "cannot write %s: %s\n", path.c_str(), ec ? ec.message().c_str() : "write failed");
        return 1;
      }
      action = "written";
    }
    done.emplace_back(path, action);
  }
  // Checked once all are there: env-manager's file names the services file.
  int rc = 0;
  nlohmann::json files = nlohmann::json::array();
  for (const auto& [path, action] : done) {
    std::string why;
    const std::string kind = kindOf(path.string(), &why);
    const std::string error = kind.empty() ? why : check(kind, path.string());
    if (!error.empty()) rc = 1;
    files.push_back({{"file", path.string()}, {"action", action}, {"valid", error.empty()}, {"error", error}});
    if (!as_json) {
      std::printf("%-8s %s%s\n", action.c_str(), path.c_str(),
                  action == "kept" ? " (exists; --force replaces it)" : "");
      if (!error.empty()) std::printf("%s\n", error.c_str());
    }
  }
  if (as_json) std::cout << nlohmann::json{{"ok", rc == 0}, {"dir", dir}, {"files", files}}.dump(2) << "\n";
  return rc;
}

}  // namespace

void addConfigCommands(CLI::App& app, int* exit_code) {
  struct Options {
    std::string em_file, orch_file, dir = "/etc/dspy-agent";
    std::vector<std::string> files;
    bool json = false, local = false, force = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* config = app.add_subcommand("config", "check, show and write config files; list config keys");
  config->require_subcommand(1);
  CLI::App* c = config->add_subcommand(
      "validate", "check config files (and the environment) as the daemons would, without starting anything; a "
                  "FILE's content tells whose it is (env-manager, orchestrator or a services file)");
  c->add_option("FILE", o->files, "files to check (default: both daemons' files in /etc/dspy-agent or "
                                  "$ENV_MANAGER_CONFIG / $ORCHESTRATOR_CONFIG)");
  c->add_option("--env-manager", o->em_file, "env-manager's config file");
  c->add_option("--orchestrator", o->orch_file, "the orchestrator's config file");
  c->add_flag("--json", o->json, "JSON for scripts: {\"ok\", \"files\": [{file, kind, valid, error}]}");
  c->callback([o, exit_code] { *exit_code = validate(o->em_file, o->orch_file, o->files, o->json); });

  c = config->add_subcommand("show", "every key's effective value (file, then environment, then default) and "
                                     "where it came from; secrets are redacted");
  c->add_option("--env-manager", o->em_file, "env-manager's config file (default: $ENV_MANAGER_CONFIG, else "
                                             "/etc/dspy-agent/env-manager.yaml if present)");
  c->add_option("--orchestrator", o->orch_file, "the orchestrator's config file (default: $ORCHESTRATOR_CONFIG, "
                                                "else /etc/dspy-agent/orchestrator.yaml if present)");
  c->add_flag("--json", o->json, "JSON for scripts: {daemon: {\"file\", \"values\", \"sources\"}}");
  c->callback([o, exit_code] {
    *exit_code = show(o->em_file.empty() ? defaultAddresses().em_config : o->em_file,
                      o->orch_file.empty() ? defaultAddresses().orch_config : o->orch_file, o->json);
  });

  c = config->add_subcommand("init", "write the default config files (both daemons' and the services file), "
                                     "keeping files that exist, and check them");
  c->add_option("--dir", o->dir, "where to write them")->capture_default_str();
  c->add_flag("--local", o->local, "the local-images stack (the demo's: services.local.yaml, images from "
                                   "scripts/build-images.sh) instead of the default one");
  c->add_flag("--force", o->force, "replace files that exist");
  c->add_flag("--json", o->json, "JSON for scripts: {\"ok\", \"dir\", \"files\": [{file, action, valid, error}]}");
  c->callback([o, exit_code] { *exit_code = init(o->dir, o->local, o->force, o->json); });

  c = config->add_subcommand("keys", "list every config key of both daemons");
  c->callback([exit_code] { *exit_code = keys(); });
}

}  // namespace dspy::cli
