// Workflow commands for operators.
#include "cli/WorkflowsCommands.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/Addresses.h"
#include "cli/GrpcClient.h"
#include "common/Result.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"

namespace dspy::cli {
namespace {

namespace pb = ::orchestrator::v1;

struct Options {
  std::string addr;
  bool json = false;
  bool watch = false;
  std::string file, id, key, target;
  std::vector<std::string> inputs;  // KEY=VALUE
  int limit = 20;
};

nlohmann::json toJson(const pb::WorkflowRunInfo& r) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : r.steps()) {
    steps.push_back({{"node_id", s.node_id()}, {"name", s.name()}, {"type", s.type()}, {"status", s.status()},
                     {"attempts", s.attempts()}, {"task_id", s.task_id()}, {"started_at_ms", s.started_at_ms()},
                     {"finished_at_ms", s.finished_at_ms()},
                     {"result", std::map<std::string, std::string>(s.result().begin(), s.result().end())},
                     {"error", s.error()}});
  }
  return {{"id", r.run_id()},         {"workflow_id", r.workflow_id()},   {"workflow_version", r.workflow_version()},
          {"status", r.status()},     {"idempotency_key", r.idempotency_key()},
          {"input", std::map<std::string, std::string>(r.input().begin(), r.input().end())},
          {"error", r.error()},       {"created_at_ms", r.created_at_ms()}, {"finished_at_ms", r.finished_at_ms()},
          {"steps", steps}};
}

void printRun(const pb::WorkflowRunInfo& r) {
  std::printf("run %s of %s (version %d): %s\n", r.run_id().c_str(), r.workflow_id().c_str(), r.workflow_version(),
              r.status().c_str());
  if (!r.error().empty()) std::printf("  error: %s\n", r.error().c_str());
  std::printf("  %-20s %-11s %-10s %8s  %s\n", "STEP", "TYPE", "STATUS", "ATTEMPTS", "DETAIL");
  for (const auto& s : r.steps()) {
    std::string detail = s.error();
    if (detail.empty() && s.finished_at_ms() && s.started_at_ms()) {
      detail = std::to_string(s.finished_at_ms() - s.started_at_ms()) + " ms";
    }
    std::printf("  %-20s %-11s %-10s %8d  %s\n", s.node_id().c_str(), s.type().c_str(), s.status().c_str(), s.attempts(),
                detail.c_str());
  }
}

Result<pb::WorkflowRunInfo> getRun(pb::OrchestratorService::Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  unary(ctx);
  pb::GetWorkflowRunRequest req;
  req.set_run_id(id);
  pb::WorkflowRunInfo info;
  if (auto s = stub.GetWorkflowRun(&ctx, req, &info); !s.ok()) return Error{s.error_message()};
  return info;
}

// Follows a run until it ends: on a terminal the step table redrawn in place, else a
// line per change. 0 when the run succeeded.
int follow(pb::OrchestratorService::Stub& stub, const std::string& run_id, bool as_json) {
  const bool tty = ::isatty(STDOUT_FILENO) == 1 && !as_json;
  grpc::ClientContext ctx;  // no deadline: runs may take long
  withToken(ctx);
  pb::StreamWorkflowStatusRequest req;
  req.set_run_id(run_id);
  auto reader = stub.StreamWorkflowStatus(&ctx, req);
  pb::WorkflowStatusUpdate u;
  std::string last, printed;
  while (reader->Read(&u)) {
    last = u.status();
    if (tty) {
      if (auto r = getRun(stub, run_id)) {
        std::printf("\033[H\033[J");
        printRun(r.value());
      }
    } else if (!as_json) {
      char line[512];
      std::snprintf(line, sizeof line, "%s %s %d/%d%s%s\n", u.run_id().c_str(), u.status().c_str(),
                    u.steps_completed(), u.total_steps(), u.current_step().empty() ? "" : " step ",
                    u.current_step().c_str());
      if (line != printed) std::fputs(line, stdout);  // a step's updates that look alike print once
      printed = line;
    }
    std::fflush(stdout);
  }
  if (auto s = reader->Finish(); !s.ok()) return failed(s, "watch");
  if (auto r = getRun(stub, run_id)) {
    if (as_json) {
      std::printf("%s\n", toJson(r.value()).dump(2).c_str());
    } else if (!tty) {
      printRun(r.value());
    }
  }
  return last == "completed" ? 0 : 1;
}

int create(pb::OrchestratorService::Stub& stub, const Options& o) {
  std::ifstream in(o.file);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", o.file.c_str());
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  grpc::ClientContext ctx;
  unary(ctx);
  pb::CreateWorkflowRequest req;
  req.set_id(o.id);
  req.set_spec(text.str());
  pb::CreateWorkflowResponse resp;
  if (auto s = stub.CreateWorkflow(&ctx, req, &resp); !s.ok()) return failed(s, "create");
  if (o.json) {
    std::printf("%s\n", nlohmann::json{{"workflow_id", resp.workflow_id()}}.dump().c_str());
  } else {
    std::printf("%s\n", resp.workflow_id().c_str());
  }
  return 0;
}

int run(pb::OrchestratorService::Stub& stub, const Options& o) {
  pb::StartWorkflowRunRequest req;
  req.set_workflow_id(o.target);
  req.set_idempotency_key(o.key);
  for (const auto& kv : o.inputs) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "inputs are KEY=VALUE, got '%s'\n", kv.c_str());
      return 2;
    }
    (*req.mutable_input())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  grpc::ClientContext ctx;
  unary(ctx);
  pb::StartWorkflowRunResponse resp;
  if (auto s = stub.StartWorkflowRun(&ctx, req, &resp); !s.ok()) return failed(s, "run");
  if (!o.watch) {
    if (o.json) {
      std::printf("%s\n", nlohmann::json{{"run_id", resp.run_id()}}.dump().c_str());
    } else {
      std::printf("%s\n", resp.run_id().c_str());
    }
    return 0;
  }
  if (!o.json) std::printf("%s\n", resp.run_id().c_str());
  return follow(stub, resp.run_id(), o.json);
}

int show(pb::OrchestratorService::Stub& stub, const Options& o) {
  auto r = getRun(stub, o.target);
  if (!r) {
    std::fprintf(stderr, "show failed: %s\n", r.error().c_str());
    return 1;
  }
  if (o.json) {
    std::printf("%s\n", toJson(r.value()).dump(2).c_str());
  } else {
    printRun(r.value());
  }
  return 0;
}

int watch(pb::OrchestratorService::Stub& stub, const Options& o) { return follow(stub, o.target, o.json); }

int list(pb::OrchestratorService::Stub& stub, const Options& o) {
  grpc::ClientContext ctx;
  unary(ctx);
  if (o.target.empty()) {
    pb::ListWorkflowsResponse resp;
    if (auto s = stub.ListWorkflows(&ctx, pb::ListWorkflowsRequest(), &resp); !s.ok()) return failed(s, "list");
    nlohmann::json out = nlohmann::json::array();
    if (!o.json) std::printf("%-24s %-30s %7s %6s %6s\n", "WORKFLOW", "NAME", "VERSION", "NODES", "EDGES");
    for (const auto& w : resp.workflows()) {
      if (o.json) {
        out.push_back({{"id", w.id()}, {"name", w.name()}, {"version", w.version()}, {"node_count", w.node_count()},
                       {"edge_count", w.edge_count()}, {"updated_at_ms", w.updated_at_ms()}});
      } else {
        std::printf("%-24s %-30s %7d %6d %6d\n", w.id().c_str(), w.name().c_str(), w.version(), w.node_count(),
                    w.edge_count());
      }
    }
    if (o.json) std::printf("%s\n", nlohmann::json{{"items", out}}.dump(2).c_str());
    return 0;
  }
  pb::ListWorkflowRunsRequest req;
  req.set_workflow_id(o.target);
  req.set_limit(o.limit);
  pb::ListWorkflowRunsResponse resp;
  if (auto s = stub.ListWorkflowRuns(&ctx, req, &resp); !s.ok()) return failed(s, "list");
  nlohmann::json out = nlohmann::json::array();
  if (!o.json) std::printf("%-34s %-10s %7s  %s\n", "RUN", "STATUS", "STEPS", "ERROR");
  for (const auto& r : resp.runs()) {
    int done = 0;
    for (const auto& s : r.steps()) done += s.status() == "succeeded" ? 1 : 0;
    if (o.json) {
      out.push_back(toJson(r));
    } else {
      std::printf("%-34s %-10s %3d/%-3d  %s\n", r.run_id().c_str(), r.status().c_str(), done, r.steps_size(),
                  r.error().c_str());
    }
  }
  if (o.json) std::printf("%s\n", nlohmann::json{{"items", out}}.dump(2).c_str());
  return 0;
}

int cancel(pb::OrchestratorService::Stub& stub, const Options& o) {
  grpc::ClientContext ctx;
  unary(ctx);
  pb::CancelWorkflowRunRequest req;
  req.set_run_id(o.target);
  pb::CancelWorkflowRunResponse resp;
  if (auto s = stub.CancelWorkflowRun(&ctx, req, &resp); !s.ok()) return failed(s, "cancel");
  if (o.json) {
    std::printf("%s\n", nlohmann::json{{"run_id", o.target}, {"status", resp.status()}}.dump().c_str());
  } else {
    std::printf("%s %s\n", o.target.c_str(), resp.status().c_str());
  }
  return 0;
}

}  // namespace

void addWorkflowsCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  CLI::App* flows = commandGroup(app, "workflows", "the orchestrator's workflows and runs", &o->addr,
                                 defaultAddresses().orch_grpc, "ORCHESTRATOR_ADDR", "the orchestrator");
  flows->add_flag("--json", o->json, "JSON for scripts");
  auto run_with = [o, exit_code](int (*command)(pb::OrchestratorService::Stub&, const Options&)) {
    return runCommand<pb::OrchestratorService>(o, "orchestrator", exit_code, command);
  };

  CLI::App* c = flows->add_subcommand("create", "store a workflow from a JSON or YAML file (a new version if its id exists)");
  c->add_option("file", o->file, "the spec file")->required()->check(CLI::ExistingFile);
  c->add_option("--id", o->id, "the workflow's id (default: the spec's, else generated)");
  c->callback(run_with(&create));

  c = flows->add_subcommand("run", "start a run of a workflow; with --watch, follow it and exit 1 unless it succeeded");
  c->add_option("workflow", o->target, "the workflow's id")->required();
  c->add_option("--input", o->inputs, "run input as KEY=VALUE (repeatable)");
  c->add_option("--key", o->key, "idempotency key: the same key returns the same run");
  c->add_flag("--watch", o->watch, "follow the run until it ends");
  c->callback(run_with(&run));

  c = flows->add_subcommand("show", "a run and its steps");
  c->add_option("run", o->target, "the run's id")->required();
  c->callback(run_with(&show));

  c = flows->add_subcommand("watch", "follow a run until it ends (a live step table on a terminal)");
  c->add_option("run", o->target, "the run's id")->required();
  c->callback(run_with(&watch));

  c = flows->add_subcommand("list", "the workflows; with a workflow id, its runs (newest first)");
  c->add_option("workflow", o->target, "list this workflow's runs");
  c->add_option("--limit", o->limit, "at most N runs")->check(CLI::Range(1, 1000));
  c->callback(run_with(&list));

  c = flows->add_subcommand("cancel", "cancel a run: its running tasks are cancelled, pending steps skipped");
  c->add_option("run", o->target, "the run's id")->required();
  c->callback(run_with(&cancel));
}

}  // namespace dspy::cli
