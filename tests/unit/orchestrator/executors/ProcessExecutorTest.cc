// The process executor on real processes: allowlist, args, env, cwd, exit codes,
// output tails, and a timeout or cancellation that kills the whole process group.
#include <catch2/catch.hpp>
#include <signal.h>

#include <fstream>
#include <thread>

#include "orchestrator/executors/ProcessExecutor.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;
using namespace std::chrono_literals;

namespace {

ProcessExecutor make(bool arbitrary = false, int tail = 4096) {
  ProcessExecutorConfig cfg;
  cfg.commands["echo"] = ProcessCommand{.argv = {"/bin/echo"}, .allow_args = true};
  cfg.commands["fixed"] = ProcessCommand{.argv = {"/bin/echo", "fixed"}};
  cfg.commands["sh"] = ProcessCommand{.argv = {"/bin/sh", "-c"}, .allow_args = true, .env = {{"FROM_CONFIG", "c"}}};
  cfg.allow_arbitrary = arbitrary;
  cfg.output_tail_bytes = tail;
  return ProcessExecutor(cfg);
}

ExecRequest req(dspy::Payload p, std::chrono::milliseconds timeout = 10s) {
  return ExecRequest{.task_id = "t1", .cls = "cpu_short", .payload = std::move(p), .timeout = timeout, .attempt = 1};
}

}  // namespace

TEST_CASE("process executor runs an allowed command with args and captures output", "[orchestrator][process]") {
  auto ex = make();
  auto o = ex.execute(req({{"command", "echo"}, {"args", R"(["hello","world"])"}}), {});
  CHECK(o.success);
  CHECK(o.result.at("stdout") == "hello world\n");
  CHECK(o.result.at("exit_code") == "0");
}

TEST_CASE("process executor reports exit codes, stderr, env and cwd", "[orchestrator][process]") {
  auto ex = make();
  const auto dir = dspy::test::tempDir();
  auto o = ex.execute(req({{"command", "sh"},
                           {"args", R"(["echo $FROM_CONFIG $MINE $TASK_ID $TASK_ATTEMPT; pwd; echo oops >&2; exit 7"])"},
                           {"env.MINE", "m"}}),
                      {});
  CHECK_FALSE(o.success);
  CHECK(o.retryable);
  CHECK(o.error == "exit code 7");
  CHECK(o.result.at("exit_code") == "7");
  CHECK_THAT(o.result.at("stdout"), Catch::StartsWith("c m t1 1\n"));
  CHECK(o.result.at("stderr") == "oops\n");
  ProcessExecutorConfig cfg;
  cfg.commands["pwd"] = ProcessCommand{.argv = {"/bin/pwd"}, .cwd = dir};
  auto in_dir = ProcessExecutor(cfg).execute(req({{"command", "pwd"}}), {});
  CHECK(in_dir.result.at("stdout") == dir + "\n");
}

TEST_CASE("process executor refuses commands and args that config does not allow", "[orchestrator][process]") {
  auto ex = make();
  CHECK_FALSE(ex.validate({{"command", "rm"}}).ok());
  CHECK_FALSE(ex.validate({}).ok());
  CHECK_FALSE(ex.validate({{"command", "fixed"}, {"args", R"(["x"])"}}).ok());
  CHECK_FALSE(ex.validate({{"command", "echo"}, {"args", "not-a-list"}}).ok());
  CHECK_FALSE(ex.validate({{"command", "echo"}, {"env.BAD-NAME", "x"}}).ok());
  CHECK_FALSE(ex.validate({{"argv", R"(["/bin/true"])"}}).ok());
  CHECK(make(true).validate({{"argv", R"(["/bin/true"])"}}).ok());
  auto o = make(true).execute(req({{"argv", R"(["/bin/echo","any"])"}}), {});
  CHECK(o.result.at("stdout") == "any\n");
  auto missing = make(true).execute(req({{"argv", R"(["/no/such/binary"])"}}), {});
  CHECK_FALSE(missing.success);
  CHECK_FALSE(missing.retryable);
  CHECK_THAT(missing.error, Catch::Contains("/no/such/binary"));
}

TEST_CASE("process executor timeout kills the whole process group", "[orchestrator][process]") {
  auto ex = make();
  const auto dir = dspy::test::tempDir();
  const auto start = std::chrono::steady_clock::now();
  // A grandchild in the background writes its pid, then everything sleeps.
  auto o = ex.execute(req({{"command", "sh"}, {"args", "[\"sleep 30 & echo $! > " + dir + "/pid; sleep 30\"]"}}, 300ms), {});
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK_FALSE(o.success);
  CHECK(o.retryable);
  CHECK_THAT(o.error, Catch::Contains("timed out"));
  CHECK(took < 5s);
  std::ifstream in(dir + "/pid");
  pid_t grandchild = 0;
  in >> grandchild;
  REQUIRE(grandchild > 0);
  // Reaped by init once killed: kill(pid, 0) fails.
  CHECK(dspy::test::eventually([&] { return ::kill(grandchild, 0) != 0; }, 5s));
}

TEST_CASE("process executor cancellation kills the command and is not retryable", "[orchestrator][process]") {
  auto ex = make();
  std::stop_source stop;
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);  // let the command start; the test waits on the result, not on this
    stop.request_stop();
  });
  auto o = ex.execute(req({{"command", "sh"}, {"args", R"(["sleep 30"])"}}), stop.get_token());
  canceller.join();
  CHECK_FALSE(o.success);
  CHECK_FALSE(o.retryable);
  CHECK_THAT(o.error, Catch::Contains("cancelled"));
}

TEST_CASE("process executor keeps only the tail of long output", "[orchestrator][process]") {
  auto ex = make(false, 100);
  auto o = ex.execute(req({{"command", "sh"}, {"args", R"(["seq 1 10000"])"}}), {});
  CHECK(o.success);
  CHECK(o.result.at("stdout").size() == 100);
  CHECK_THAT(o.result.at("stdout"), Catch::EndsWith("9999\n10000\n"));
  CHECK(o.result.at("output_truncated") == "true");
}
