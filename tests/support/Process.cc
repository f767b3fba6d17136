// Child processes, ports and polling for the integration tests.
#include "tests/support/Process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace dspy::test {

ChildProcess::ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
                           std::string log_file)
    : log_file_(std::move(log_file)) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (auto& [k, v] : merged) env_strings.push_back(k + "=" + v);

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // If the test process dies without running destructors (a crash, a sanitizer
    // halting it), its daemons must not live on.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    // The test runner may block signals; the daemon must start with a clean mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    execve(args[0], args.data(), envp.data());
    std::fprintf(stderr, "execve %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    waitExit(std::chrono::seconds(5));
  }
}

void ChildProcess::signal(int sig) const { kill(pid_, sig); }

bool ChildProcess::running() {
  if (status_) return false;
  int st = 0;
  const pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return r == 0;
}

std::optional<int> ChildProcess::waitExit(std::chrono::milliseconds timeout) {
  eventually([this] { return !running(); }, timeout);
  return status_;
}

std::string ChildProcess::log() const {
  std::ifstream f(log_file_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A port below the kernel's ephemeral range (32768-60999 here), so that no outgoing
// connection of a parallel test can take it between this check and the daemon's bind
// (that happened with ports picked by binding port 0); chosen at random among the
// free ones so that parallel tests rarely pick the same.
int freePort() {
  static std::mutex mu;
  static std::mt19937 rng(std::random_device{}());
  std::lock_guard lock(mu);
  std::uniform_int_distribution<int> pick(20000, 32000);
  for (int tries = 0; tries < 1000; ++tries) {
    const int port = pick(rng);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return port;
  }
  return 0;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string tempDir() {
  std::string tmpl = "/tmp/dspy-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string binary(const std::string& relative) {
  const char* dir = std::getenv("DSPY_BUILD_DIR");
  if (dir == nullptr) throw std::runtime_error("DSPY_BUILD_DIR is not set (run the tests through ctest)");
  return std::string(dir) + "/" + relative;
}

}  // namespace dspy::test
