// Orchestrator task commands for operators.
#include "cli/TasksCommands.h"
#include "common/Text.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <algorithm>
#include <sstream>
#include <iterator>
#include <iostream>
#include <fstream>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli/Addresses.h"
#include "cli/GrpcClient.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"

#include <CLI/CLI.hpp>

#include <memory>

namespace dspy::cli {
namespace {

namespace pb = ::orchestrator::v1;

struct Options {
  std::string addr;
  bool json = false;
  bool wait = false;
  int priority = 0;
  int limit = 0;
  std::string id, status, cls;
  std::vector<std::string> rest;  // the positional words: CLASS then KEY=VALUE..., or an ID
};

// `show` and `cancel` take exactly one task id.
bool oneId(const Options& o, const char* cmd) {
  if (o.rest.size() == 1) return true;
  std::fprintf(stderr, "%s needs one task ID\n", cmd);
  return false;
}

nlohmann::json toJson(const pb::TaskInfo& t) {
  return {{"id", t.task_id()},
          {"class", t.class_()},
          {"status", t.status()},
          {"priority", t.priority()},
          {"attempts", t.attempts()},
          {"payload", std::map<std::string, std::string>(t.payload().begin(), t.payload().end())},
          {"result", std::map<std::string, std::string>(t.result().begin(), t.result().end())},
          {"error", t.error()},
          {"submitted_at_ms", t.submitted_at_ms()},
          {"started_at_ms", t.started_at_ms()},
          {"finished_at_ms", t.finished_at_ms()}};
}

void printTask(const pb::TaskInfo& t) {
  std::printf("%s  %s  %s  attempts=%d", t.task_id().c_str(), t.class_().c_str(), t.status().c_str(), t.attempts());
  if (t.finished_at_ms() && t.started_at_ms()) {
    std::printf("  %lld ms", static_cast<long long>(t.finished_at_ms() - t.started_at_ms()));
  }
  std::printf("\n");
  if (!t.error().empty()) std::printf("  error: %s\n", t.error().c_str());
  for (const auto& [k, v] : t.result()) {
    std::string shown = v.size() > 200 ? v.substr(v.size() - 200) : v;
    while (!shown.empty() && shown.back() == '\n') shown.pop_back();
    std::printf("  %s: %s\n", k.c_str(), shown.c_str());
  }
}

int submit(pb::OrchestratorService::Stub& stub, const Options& o) {
  if (o.rest.empty()) {
    std::fputs("submit needs a CLASS\n", stderr);
    return 2;
  }
  pb::SubmitTaskRequest req;
  req.set_class_(o.rest[0]);
  req.set_id(o.id);
  req.set_priority(o.priority);
  for (std::size_t i = 1; i < o.rest.size(); ++i) {
    const auto eq = o.rest[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "payload entries are KEY=VALUE, got '%s'\n", o.rest[i].c_str());
      return 2;
    }
    (*req.mutable_payload())[o.rest[i].substr(0, eq)] = o.rest[i].substr(eq + 1);
  }
  grpc::ClientContext ctx;
  unary(ctx);
  pb::SubmitTaskResponse resp;
  if (auto s = stub.SubmitTask(&ctx, req, &resp); !s.ok()) return failed(s, "submit");
  std::printf("%s\n", resp.task_id().c_str());
  if (!o.wait) return 0;
  grpc::ClientContext sctx;  // no deadline: the task may run for long
  withToken(sctx);
  pb::StreamTaskResultsRequest sreq;
  sreq.add_task_ids(resp.task_id());
  sreq.set_include_completed(true);
  auto reader = stub.StreamTaskResults(&sctx, sreq);
  pb::TaskResult r;
  std::string last;
  while (reader->Read(&r)) {
    std::printf("%s %s (attempt %d)\n", r.task_id().c_str(), r.status().c_str(), r.attempts());
    std::fflush(stdout);
    last = r.status();
  }
  if (auto s = reader->Finish(); !s.ok()) return failed(s, "following the task");
  grpc::ClientContext gctx;
  unary(gctx);
  pb::GetTaskStatusRequest g;
  g.set_task_id(resp.task_id());
  pb::GetTaskStatusResponse t;
  if (auto s = stub.GetTaskStatus(&gctx, g, &t); s.ok()) printTask(t.task());
  return last == "completed" ? 0 : 1;
}

nlohmann::json toJson(const pb::SlurmJob& j) {
  return {{"job_id", j.job_id()},           {"status", j.status()},       {"slurm_state", j.slurm_state()},
          {"attempt", j.attempt()},         {"exit_code", j.exit_code()}, {"reason", j.reason()},
          {"error", j.error()},             {"submit_time_ms", j.submit_time_ms()},
          {"start_time_ms", j.start_time_ms()}, {"end_time_ms", j.end_time_ms()},
          {"output_path", j.output_path()}, {"nodes", j.nodes()},         {"template", j.template_name()}};
}

void printSlurmJob(const pb::SlurmJob& j) {
  std::printf("  slurm job: %s  %s  attempt=%d", j.job_id().empty() ? "(not submitted)" : j.job_id().c_str(),
              j.slurm_state().c_str(), j.attempt());
  if (j.exit_code() >= 0) std::printf("  exit=%d", j.exit_code());
  if (!j.nodes().empty()) std::printf("  nodes=%s", j.nodes().c_str());
  if (!j.reason().empty()) std::printf("  reason=%s", j.reason().c_str());
  std::printf("\n");
  if (!j.output_path().empty()) std::printf("  slurm output: %s\n", j.output_path().c_str());
  if (!j.error().empty()) std::printf("  slurm error: %s\n", j.error().c_str());
}

int show(pb::OrchestratorService::Stub& stub, const Options& o) {
  if (!oneId(o, "show")) return 2;
  grpc::ClientContext ctx;
  unary(ctx);
  pb::GetTaskStatusRequest req;
  req.set_task_id(o.rest[0]);
  pb::GetTaskStatusResponse resp;
  if (auto s = stub.GetTaskStatus(&ctx, req, &resp); !s.ok()) return failed(s, "show");
  if (o.json) {
    nlohmann::json j = toJson(resp.task());
    if (resp.has_slurm_job()) j["slurm_job"] = toJson(resp.slurm_job());
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    printTask(resp.task());
    if (resp.has_slurm_job()) printSlurmJob(resp.slurm_job());
  }
  return 0;
}

int list(pb::OrchestratorService::Stub& stub, const Options& o) {
  const int wanted = o.limit > 0 ? o.limit : 100;
  nlohmann::json items = nlohmann::json::array();
  std::string token;
  int got = 0;
  if (!o.json) std::printf("%-40s %-12s %-10s %8s  %s\n", "ID", "CLASS", "STATUS", "ATTEMPTS", "ERROR");
  do {
    grpc::ClientContext ctx;
    unary(ctx);
    pb::ListTasksRequest req;
    req.set_status(o.status);
    req.set_class_(o.cls);
    req.set_page_size(std::min(1000, wanted - got));
    req.set_page_token(token);
    pb::ListTasksResponse resp;
    if (auto s = stub.ListTasks(&ctx, req, &resp); !s.ok()) return failed(s, "list");
    for (const auto& t : resp.tasks()) {
      ++got;
      if (o.json) {
        items.push_back(toJson(t));
      } else {
        std::printf("%-40s %-12s %-10s %8d  %s\n", t.task_id().c_str(), t.class_().c_str(), t.status().c_str(),
                    t.attempts(), t.error().substr(0, 60).c_str());
      }
    }
    token = resp.next_page_token();
  } while (!token.empty() && got < wanted);
  if (o.json) std::printf("%s\n", nlohmann::json{{"items", items}}.dump(2).c_str());
  return 0;
}

int cancel(pb::OrchestratorService::Stub& stub, const Options& o) {
  if (!oneId(o, "cancel")) return 2;
  grpc::ClientContext ctx;
  unary(ctx);
  pb::CancelTaskRequest req;
  req.set_task_id(o.rest[0]);
  pb::CancelTaskResponse resp;
  if (auto s = stub.CancelTask(&ctx, req, &resp); !s.ok()) return failed(s, "cancel");
  std::printf("%s %s\n", o.rest[0].c_str(), resp.status().c_str());
  return 0;
}

// The tasks of a batch file: a JSON array, or one JSON object per line, each
// {"id"?, "class"?, "payload"?: {...}, "priority"?, "workflow_id"?}; non-string payload
// values become their JSON text. "" when all is well, else why not.
std::string readBatch(const std::string& file, std::vector<pb::SubmitTaskRequest>* out) {
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(file);
    if (!in) return "cannot read " + file;
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::vector<nlohmann::json> items;
  auto whole = nlohmann::json::parse(text, nullptr, false);
  if (whole.is_array()) {
    items.assign(whole.begin(), whole.end());
  } else {
    std::istringstream lines(text);
    std::string line;
    for (int n = 1; std::getline(lines, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) return file + ":" + std::to_string(n) + ": not JSON";
      items.push_back(std::move(j));
    }
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& j = items[i];
    const std::string where = file + ": task " + std::to_string(i + 1) + ": ";
    if (!j.is_object()) return where + "not a JSON object";
    pb::SubmitTaskRequest& r = out->emplace_back();
    for (const char* key : {"id", "class", "workflow_id"}) {
      if (!j.contains(key) || j[key].is_null()) continue;
      if (!j[key].is_string()) return where + "'" + key + "' must be a string";
      const std::string v = j[key].get<std::string>();
      if (std::string(key) == "id") r.set_id(v);
      if (std::string(key) == "class") r.set_class_(v);
      if (std::string(key) == "workflow_id") r.set_workflow_id(v);
    }
    if (r.class_().empty()) r.set_class_("cpu_short");
    if (j.contains("priority")) {
      if (!j["priority"].is_number_integer()) return where + "'priority' must be an integer";
      r.set_priority(j["priority"].get<int>());
    }
    if (j.contains("payload") && !j["payload"].is_null()) {
      if (!j["payload"].is_object()) return where + "'payload' must be a JSON object";
      for (const auto& [k, v] : j["payload"].items()) {
        (*r.mutable_payload())[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
    }
  }
  return "";
}

// SubmitTasks in chunks of 1,000: one line per task ("ID" or "#N refused: why (CODE)"),
// or --json {"accepted", "results": [{ok, id, error?, code?}]}; exit 1 unless all were
// accepted.
int submitBatch(pb::OrchestratorService::Stub& stub, const Options& o) {
  if (o.rest.size() != 1) {
    std::fputs("submit-batch needs one FILE (or - for standard input)\n", stderr);
    return 2;
  }
  std::vector<pb::SubmitTaskRequest> tasks;
  if (std::string why = readBatch(o.rest[0], &tasks); !why.empty()) {
    std::fprintf(stderr, "%s\n", why.c_str());
    return 2;
  }
  nlohmann::json results = nlohmann::json::array();
  int accepted = 0;
  constexpr std::size_t kChunk = 1000;
  for (std::size_t start = 0; start < tasks.size(); start += kChunk) {
    pb::SubmitTasksRequest req;
    for (std::size_t i = start; i < std::min(tasks.size(), start + kChunk); ++i) *req.add_tasks() = tasks[i];
    grpc::ClientContext ctx;
    unary(ctx);
    pb::SubmitTasksResponse resp;
    if (auto s = stub.SubmitTasks(&ctx, req, &resp); !s.ok()) return failed(s, "submit-batch");
    for (int i = 0; i < resp.results_size(); ++i) {
      const auto& r = resp.results(i);
      const std::size_t n = start + static_cast<std::size_t>(i) + 1;
      if (r.success()) {
        ++accepted;
        results.push_back({{"ok", true}, {"id", r.task_id()}});
        if (!o.json) std::printf("%s\n", r.task_id().c_str());
      } else {
        results.push_back({{"ok", false}, {"id", r.task_id()}, {"error", r.error()}, {"code", r.code()}});
        if (!o.json) std::printf("#%zu refused: %s (%s)\n", n, r.error().c_str(), r.code().c_str());
      }
    }
  }
  if (o.json) {
    std::printf("%s\n", nlohmann::json{{"accepted", accepted}, {"results", results}}.dump(2).c_str());
  } else {
    std::fprintf(stderr, "%d of %zu task(s) accepted\n", accepted, tasks.size());
  }
  return accepted == static_cast<int>(tasks.size()) ? 0 : 1;
}

}  // namespace

void addTasksCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  CLI::App* tasks = commandGroup(app, "tasks", "the orchestrator's tasks: submit, show, list, cancel", &o->addr,
                                 defaultAddresses().orch_grpc, "ORCHESTRATOR_ADDR", "the orchestrator");
  auto run = [o, exit_code](int (*command)(pb::OrchestratorService::Stub&, const Options&)) {
    return runCommand<pb::OrchestratorService>(o, "orchestrator", exit_code, command);
  };

  CLI::App* c = tasks->add_subcommand("submit", "submit a task; with --wait, follow it until it finished and exit 1 "
                                                "unless it completed");
  c->add_option("class", o->rest, "CLASS, then the payload as KEY=VALUE words")->required();
  c->add_option("--id", o->id, "the task's id (default: generated)");
  c->add_option("--priority", o->priority, "higher runs first (default 0)")
      ->check(CLI::Range(-1'000'000'000, 1'000'000'000));
  c->add_flag("--wait", o->wait, "follow the task until it finished");
  c->callback(run(&submit));

  c = tasks->add_subcommand("submit-batch", "submit many tasks in batches of 1,000 (SubmitTasks): FILE is a JSON "
                                            "array or JSON lines of {id?, class?, payload?, priority?, workflow_id?}; "
                                            "exit 1 unless every task was accepted");
  c->add_option("file", o->rest, "the file, or - for standard input")->required()->expected(1);
  c->add_flag("--json", o->json, "JSON for scripts: {\"accepted\", \"results\": [{ok, id, error?, code?}]}");
  c->callback(run(&submitBatch));

  c = tasks->add_subcommand("show", "one task: status, attempts, result, error");
  c->add_option("id", o->rest, "the task's id")->required()->expected(1);
  c->add_flag("--json", o->json, "JSON for scripts");
  c->callback(run(&show));

  c = tasks->add_subcommand("list", "tasks in submission order");
  c->add_option("--status", o->status, "only tasks in this state")
      ->check(CLI::IsMember({"pending", "running", "completed", "failed", "cancelled"}));
  c->add_option("--class", o->cls, "only tasks of this class");
  c->add_option("--limit", o->limit, "at most N tasks")->check(CLI::Range(1, 1'000'000'000));
  c->add_flag("--json", o->json, "JSON for scripts");
  c->callback(run(&list));

  c = tasks->add_subcommand("cancel", "cancel a queued or running task");
  c->add_option("id", o->rest, "the task's id")->required()->expected(1);
  c->callback(run(&cancel));
}

}  // namespace dspy::cli
