// Starting and stopping the whole system.
#include "cli/LifecycleCommands.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <deque>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/Addresses.h"
#include "cli/ServicesCommands.h"
#include "cli/Terminal.h"
#include "common/ConfigSchema.h"
#include "common/Subprocess.h"
#include "env_manager/EnvManagerConfig.h"
#include "orchestrator/OrchestratorConfig.h"

extern char** environ;

namespace dspy::cli {
namespace {
namespace fs = std::filesystem;

struct Options {
  std::string em_config, orch_config;  // files; "" = the built-in defaults
  std::string run_dir, log_dir;
  std::vector<std::string> services;
  bool no_services = false;
  bool keep_services = false;
  bool force = false;
  bool json = false;
  int timeout = 30;
  // logs
  std::string what;
  bool follow = false;
  int tail = 100;
  std::string since;
};

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string fileIfExists(const std::string& path) { return fs::exists(path) ? path : std::string(); }

// A daemon as the CLI sees it: its binary, config file, addresses and PID file.
struct Daemon {
  std::string name;    // env-manager | orchestrator
  std::string binary;
  std::string config;  // "" = built-in defaults
  std::string grpc, http;
  std::string pid_file, log_file;
};

// Next to this binary (installed: PREFIX/bin), or in the build tree (build/<preset>/cli).
std::string findBinary(const std::string& name, const std::string& build_subdir) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const fs::path& p : {self / name, self.parent_path() / build_subdir / name}) {
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return name;  // on PATH
}

Result<std::vector<Daemon>> daemons(const Options& o) {
  const auto env = config::processEnv();
  std::vector<Daemon> out(2);
  auto em = o.em_config.empty() ? Result<envmanager::EnvManagerConfig>(envmanager::EnvManagerConfig{})
                                : envmanager::loadConfig(o.em_config, env);
  if (!em) return Error{"env-manager config: " + em.error(), ErrorKind::InvalidArgument};
  auto orch = o.orch_config.empty() ? Result<orchestrator::OrchestratorConfig>(orchestrator::OrchestratorConfig{})
                                    : orchestrator::loadConfig(o.orch_config, env);
  if (!orch) return Error{"orchestrator config: " + orch.error(), ErrorKind::InvalidArgument};
  out[0] = {"env-manager", findBinary("env-manager", "env_manager"), o.em_config, em.value().server.grpc_address,
            em.value().server.http_address, o.run_dir + "/env-manager.pid", o.log_dir + "/env-manager.log"};
  out[1] = {"orchestrator", findBinary("orchestrator", "orchestrator"), o.orch_config,
            orch.value().server.grpc_address, orch.value().server.http_address, o.run_dir + "/orchestrator.pid",
            o.log_dir + "/orchestrator.log"};
  return out;
}

// A step of start/stop: a JSON line with --json, else the human line.
void report(const Options& o, const nlohmann::json& j, const std::string& human) {
  if (o.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", human.c_str());
  }
  std::fflush(stdout);
}

std::string padded(const std::string& name) {
  char b[64];
  std::snprintf(b, sizeof b, "%-13s", name.c_str());
  return b;
}

bool healthy(const std::string& http) {
  httplib::Client c("http://" + http);
  c.set_connection_timeout(1, 0);
  c.set_read_timeout(3, 0);
  auto r = c.Get("/health");
  return r && (r->status == 200);
}

pid_t readPid(const std::string& file) {
  std::ifstream in(file);
  long pid = 0;
  if (!(in >> pid) || pid <= 1) return 0;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 ? static_cast<pid_t>(pid) : 0;
}

bool underSystemd() {
  return fs::exists("/run/systemd/system") &&
         (fs::exists("/etc/systemd/system/dspy-agent.target") || fs::exists("/lib/systemd/system/dspy-agent.target"));
}

// `systemctl start` of the target (it Wants both units and is reached only once both
// are READY). A stop names the units too: a stop of the target alone returns before
// the units it takes down have stopped, and a start right after would cancel their
// queued stop jobs.
int systemctl(const std::string& verb) {
  SubprocessSpec spec;
  spec.argv = {"systemctl", verb, "dspy-agent.target"};
  if (verb == "stop") spec.argv.insert(spec.argv.end(), {"dspy-orchestrator.service", "dspy-env-manager.service"});
  spec.timeout = std::chrono::minutes(3);
  const SubprocessResult r = runSubprocess(spec);
  if (!r.ok()) {
    std::fprintf(stderr, "systemctl %s dspy-agent.target: %s\n", verb.c_str(), r.describe().c_str());
    return 1;
  }
  return 0;
}

bool waitHealthy(const Daemon& d, int timeout_s, pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (healthy(d.http)) return true;
    if (pid > 0 && ::kill(pid, 0) != 0) return false;  // it exited
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

int spawnDaemon(const Daemon& d, const Options& o) {
  const int timeout_s = o.timeout;
  if (pid_t pid = readPid(d.pid_file)) {
    report(o, {{"daemon", d.name}, {"status", "already_running"}, {"pid", pid}, {"address", d.http}},
           padded(d.name) + " already running (pid " + std::to_string(pid) + ")");
    return 0;
  }
  if (healthy(d.http)) {
    report(o, {{"daemon", d.name}, {"status", "already_running"}, {"address", d.http}},
           padded(d.name) + " already answers on " + d.http + " (not started by dspy-agent)");
    return 0;
  }
  std::error_code ec;
  fs::create_directories(fs::path(d.pid_file).parent_path(), ec);
  fs::create_directories(fs::path(d.log_file).parent_path(), ec);
  std::vector<std::string> args{d.binary};
  if (!d.config.empty()) args.insert(args.end(), {"--config", d.config});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, d.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);  // its own session: it outlives this command
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    std::fprintf(stderr, "%s: cannot start %s: %s\n", d.name.c_str(), d.binary.c_str(), std::strerror(rc));
    return 1;
  }
  std::ofstream(d.pid_file) << pid << "\n";
  report(o, {{"daemon", d.name}, {"status", "starting"}, {"pid", pid}, {"log", d.log_file}},
         padded(d.name) + " starting (pid " + std::to_string(pid) + ", log " + d.log_file + ")");
  if (!waitHealthy(d, timeout_s, pid)) {
    std::fprintf(stderr, "%s did not become healthy on %s within %d s; see %s\n", d.name.c_str(), d.http.c_str(),
                 timeout_s, d.log_file.c_str());
    return 1;
  }
  report(o, {{"daemon", d.name}, {"status", "ready"}, {"pid", pid}, {"address", d.http}, {"grpc_address", d.grpc}},
         padded(d.name) + " " + paint("ready", Tone::Good) + " on " + d.http + " (gRPC " + d.grpc + ")");
  return 0;
}

// *result: stopped | killed | not_running | still_running.
int stopDaemon(const Daemon& d, int timeout_s, bool force, const Options& o, std::string* result) {
  const pid_t pid = readPid(d.pid_file);
  if (pid == 0) {
    std::error_code ec;
    fs::remove(d.pid_file, ec);
    *result = "not_running";
    if (!o.json) std::printf("%-13s not running (no live PID in %s)\n", d.name.c_str(), d.pid_file.c_str());
    return 0;
  }
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (::kill(pid, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (::kill(pid, 0) == 0) {
    if (!force) {
      std::fprintf(stderr, "%s (pid %d) did not stop within %d s; --force kills it\n", d.name.c_str(), pid, timeout_s);
      *result = "still_running";
      return 1;
    }
    ::kill(pid, SIGKILL);
    *result = "killed";
    if (!o.json) std::printf("%-13s killed (pid %d)\n", d.name.c_str(), pid);
  } else {
    *result = "stopped";
    if (!o.json) std::printf("%-13s %s (pid %d)\n", d.name.c_str(), paint("stopped", Tone::Good).c_str(), pid);
  }
  std::error_code ec;
  fs::remove(d.pid_file, ec);
  return 0;
}

int start(const Options& o) {
  auto ds = daemons(o);
  if (!ds) {
    std::fprintf(stderr, "%s\n", ds.error().c_str());
    return 1;
  }
  if (underSystemd()) {
    if (!o.json) std::printf("starting dspy-agent.target (systemd)\n");
    if (systemctl("start") != 0) return 1;
    for (const auto& d : ds.value()) {
      if (!waitHealthy(d, o.timeout, 0)) {
        std::fprintf(stderr, "%s is not healthy on %s; journalctl -u dspy-%s shows why\n", d.name.c_str(),
                     d.http.c_str(), d.name.c_str());
        return 1;
      }
      report(o, {{"daemon", d.name}, {"status", "ready"}, {"address", d.http}, {"grpc_address", d.grpc}},
             padded(d.name) + " " + paint("ready", Tone::Good) + " on " + d.http + " (systemd)");
    }
  } else {
    for (const auto& d : ds.value()) {
      if (spawnDaemon(d, o) != 0) return 1;
    }
  }
  if (o.no_services) return 0;
  if (!o.json) {
    std::printf("starting %s\n", o.services.empty() ? "every service" : "the named services and what they need");
  }
  return startServicesAt(ds.value()[0].grpc, o.services, o.json);
}

int stop(const Options& o) {
  auto ds = daemons(o);
  if (!ds) {
    std::fprintf(stderr, "%s\n", ds.error().c_str());
    return 1;
  }
  int rc = 0;
  nlohmann::json out = {{"services", nullptr}, {"daemons", nlohmann::json::object()}};
  if (!o.keep_services && healthy(ds.value()[0].http)) {
    if (!o.json) std::printf("stopping the services (dependents first)\n");
    nlohmann::json services;
    if (stopServicesAt(ds.value()[0].grpc, {}, o.timeout, o.json ? &services : nullptr) != 0) rc = 1;
    if (o.json) out["services"] = services;
  }
  if (underSystemd()) {
    const int s = systemctl("stop");
    for (const auto& d : ds.value()) out["daemons"][d.name] = s == 0 ? "stopped" : "still_running";
    if (s != 0) rc = 1;
  } else {
    // The orchestrator first: it uses env-manager.
    for (auto it = ds.value().rbegin(); it != ds.value().rend(); ++it) {
      std::string result;
      if (stopDaemon(*it, o.timeout, o.force, o, &result) != 0) rc = 1;
      out["daemons"][it->name] = result;
    }
  }
  if (o.json) {
    out["ok"] = rc == 0;
    std::printf("%s\n", out.dump(2).c_str());
  }
  return rc;
}

// "10m", "2h", "30s", "1d" ago, or an RFC 3339 / "YYYY-MM-DDTHH:MM:SS" local time; unix seconds.
std::optional<std::int64_t> parseSince(const std::string& text) {
  if (text.empty()) return 0;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  char unit = text.back();
  if (std::string("smhd").find(unit) != std::string::npos && text.size() > 1) {
    try {
      std::size_t used = 0;
      const long long n = std::stoll(text.substr(0, text.size() - 1), &used);
      if (used != text.size() - 1 || n < 0) return std::nullopt;
      const long long mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
      return now - n * mult;
    } catch (...) {
      return std::nullopt;
    }
  }
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  tm.tm_isdst = -1;
  const bool utc = *end == 'Z';
  const std::time_t t = utc ? ::timegm(&tm) : std::mktime(&tm);
  return static_cast<std::int64_t>(t);
}

// The daemons' log lines start with their local time, "2026-11-27T09:17:54.337".
std::int64_t lineTime(const std::string& line) {
  if (line.size() < 19) return -1;
  std::tm tm{};
  if (::strptime(line.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return -1;
  tm.tm_isdst = -1;
  return static_cast<std::int64_t>(std::mktime(&tm));
}

int fileLogs(const std::string& file, const Options& o, std::int64_t since) {
  std::ifstream in(file);
  if (!in) {
    std::fprintf(stderr, "no log at %s (was the daemon started by dspy-agent start? --log-dir)\n", file.c_str());
    return 1;
  }
  std::deque<std::string> last;
  std::string line;
  std::int64_t current = 0;  // a line without a time (a continuation) keeps the last one's
  while (std::getline(in, line)) {
    if (const std::int64_t t = lineTime(line); t >= 0) current = t;
    if (since > 0 && current < since) continue;
    last.push_back(line);
    if (o.tail > 0 && static_cast<int>(last.size()) > o.tail) last.pop_front();
  }
  auto emit = [&o](const std::string& l) {
    if (o.json) {
      std::printf("%s\n", nlohmann::json{{"message", l}}.dump().c_str());
    } else {
      std::printf("%s\n", l.c_str());
    }
  };
  for (const auto& l : last) emit(l);
  std::fflush(stdout);
  if (!o.follow) return 0;
  in.clear();
  while (true) {  // follow: new lines as they are written (a file offers nothing to wait on)
    while (std::getline(in, line)) {
      emit(line);
      std::fflush(stdout);
    }
    in.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int logs(const Options& o) {
  const auto since = parseSince(o.since);
  if (!since) {
    std::fprintf(stderr, "--since: '%s' is not a time (10m, 2h, 1d, or 2026-11-27T09:00:00[Z])\n", o.since.c_str());
    return 2;
  }
  if (o.what == "env-manager" || o.what == "orchestrator") {
    if (underSystemd()) {
      std::vector<std::string> args{"journalctl", "-u", "dspy-" + o.what + ".service", "-n",
                                    o.tail > 0 ? std::to_string(o.tail) : "all", "--no-pager"};
      if (o.follow) args.push_back("-f");
      if (o.json) args.push_back("--output=json");
      if (*since > 0) args.push_back("--since=@" + std::to_string(*since));
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "cannot run journalctl: %s\n", std::strerror(errno));
      return 1;
    }
    return fileLogs(o.log_dir + "/" + o.what + ".log", o, *since);
  }
  auto ds = daemons(o);
  if (!ds) {
    std::fprintf(stderr, "%s\n", ds.error().c_str());
    return 1;
  }
  return serviceLogsAt(ds.value()[0].grpc, o.what, o.follow, o.tail, *since, o.json);
}

}  // namespace

void addLifecycleCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  const bool root = ::geteuid() == 0;
  o->em_config = envOr("ENV_MANAGER_CONFIG", fileIfExists("/etc/dspy-agent/env-manager.yaml"));
  o->orch_config = envOr("ORCHESTRATOR_CONFIG", fileIfExists("/etc/dspy-agent/orchestrator.yaml"));
  const std::string home = envOr("HOME", "/tmp");
  o->run_dir = envOr("DSPY_AGENT_RUN_DIR", root ? "/run/dspy-agent" : home + "/.local/state/dspy-agent");
  o->log_dir = envOr("DSPY_AGENT_LOG_DIR", root ? "/var/log/dspy-agent" : home + "/.local/state/dspy-agent");
  auto common = [o](CLI::App* c) {
    c->add_option("--env-manager-config", o->em_config,
                  "env-manager's config ($ENV_MANAGER_CONFIG, else /etc/dspy-agent/env-manager.yaml if present)");
    c->add_option("--orchestrator-config", o->orch_config,
                  "the orchestrator's config ($ORCHESTRATOR_CONFIG, else /etc/dspy-agent/orchestrator.yaml if present)");
    c->add_option("--run-dir", o->run_dir, "PID files without systemd ($DSPY_AGENT_RUN_DIR)");
    c->add_option("--log-dir", o->log_dir, "daemon logs without systemd ($DSPY_AGENT_LOG_DIR)");
    c->add_option("--timeout", o->timeout, "seconds to wait for each daemon (and each service stop)")
        ->check(CLI::Range(1, 3600));
  };
  CLI::App* c = app.add_subcommand("start", "start both daemons (through systemd when dspy-agent.target is "
                                            "installed, else in the background with PID and log files), then "
                                            "the services; exit 1 if a required one did not come up");
  common(c);
  c->add_option("--services", o->services, "only these services (and what they need)")->delimiter(',');
  c->add_flag("--no-services", o->no_services, "start the daemons only");
  c->add_flag("--json", o->json, "one JSON object per line: {\"daemon\", \"status\", ...} for each daemon, then "
                                 "each service step and {\"done\": true, \"ok\"} as `services start --json`");
  c->callback([o, exit_code] { *exit_code = start(*o); });
  c = app.add_subcommand("stop", "stop the services (dependents first), then both daemons");
  common(c);
  c->add_flag("--keep-services", o->keep_services, "leave the services running");
  c->add_flag("--force", o->force, "kill a daemon that does not stop within --timeout");
  c->add_flag("--json", o->json, "one JSON object: {\"ok\", \"services\": {\"ok\", \"services\": {name: result}} "
                                 "or null, \"daemons\": {name: stopped|killed|not_running|still_running}}");
  c->callback([o, exit_code] { *exit_code = stop(*o); });
  c = app.add_subcommand("logs", "a daemon's log (journald under systemd, else its log file) or a service's "
                                 "container log");
  common(c);
  c->add_option("WHAT", o->what, "env-manager, orchestrator, or a service name")->required();
  c->add_flag("-f,--follow", o->follow, "keep printing new lines");
  c->add_option("--tail", o->tail, "the last N lines (0 = all)")->check(CLI::NonNegativeNumber);
  c->add_option("--since", o->since, "only lines since: 10m, 2h, 1d, or 2026-11-27T09:00:00[Z]");
  c->add_flag("--json", o->json, "one JSON object per line: a service's {\"time\", \"timestamp\", \"stream\", "
                                 "\"message\"}; a daemon's {\"message\"} (journald's own JSON under systemd)");
  c->callback([o, exit_code] { *exit_code = logs(*o); });
  auto pull = std::make_shared<std::pair<std::vector<std::string>, std::string>>();
  pull->second = defaultAddresses().em_grpc;
  c = app.add_subcommand("pull", "pull images through env-manager with live progress: every image the services "
                                 "need, or the named ones; exit 1 if one could not be pulled");
  c->add_option("IMAGE", pull->first, "images to pull (default: the services' images)");
  c->add_option("--addr", pull->second, "env-manager's gRPC address (now " + pull->second +
                                            "; from $ENV_MANAGER_ADDR, else its config file, else the default)");
  c->add_flag("--json", o->json, "one JSON object per line, as `services pull --json`");
  c->callback([o, pull, exit_code] { *exit_code = pullImagesAt(pull->second, pull->first, o->json); });
  c = app.add_subcommand("restart", "stop, then start (daemons and services)");
  common(c);
  c->add_flag("--force", o->force, "kill a daemon that does not stop within --timeout");
  c->add_flag("--keep-services", o->keep_services, "leave the services running while the daemons restart");
  c->add_flag("--no-services", o->no_services, "start the daemons only");
  c->callback([o, exit_code] {
    const int s = stop(*o);
    *exit_code = s != 0 ? s : start(*o);
  });
}

}  // namespace dspy::cli
