// orchestrator.v1 workflow RPCs over the WorkflowEngine.
#include <nlohmann/json.hpp>

#include "common/GrpcErrors.h"
#include "common/GrpcStream.h"
#include "common/Text.h"
#include "orchestrator/api/OrchestratorService.h"
#include "orchestrator/api/WorkflowViews.h"

namespace dspy::orchestrator {
namespace pb = ::orchestrator::v1;
namespace {

const grpc::Status kNoWorkflows{grpc::StatusCode::UNAVAILABLE, "workflows are not enabled in this orchestrator"};

void fill(const RunRecord& r, const WorkflowSpec* spec, pb::WorkflowRunInfo* out) {
  out->set_run_id(r.id);
  out->set_workflow_id(r.workflow_id);
  out->set_workflow_version(r.workflow_version);
  out->set_status(toString(r.status));
  out->set_idempotency_key(r.idempotency_key);
  for (const auto& [k, v] : r.input) (*out->mutable_input())[k] = v;
  out->set_error(r.error);
  out->set_created_at_ms(r.created_ms);
  out->set_updated_at_ms(r.updated_ms);
  out->set_finished_at_ms(r.finished_ms);
  for (const auto& s : r.steps) {
    auto* step = out->add_steps();
    const NodeSpec* node = spec ? spec->node(s.node_id) : nullptr;
    step->set_node_id(s.node_id);
    step->set_name(node ? node->name : s.node_id);
    step->set_type(node ? node->type : "");
    step->set_status(toString(s.status));
    step->set_attempts(s.attempts);
    step->set_task_id(s.task_id);
    step->set_started_at_ms(s.started_ms);
    step->set_finished_at_ms(s.finished_ms);
    for (const auto& [k, v] : s.result) (*step->mutable_result())[k] = v;
    step->set_error(s.error);
  }
}

pb::WorkflowStatusUpdate toUpdate(const RunRecord& r) {
  pb::WorkflowStatusUpdate u;
  u.set_run_id(r.id);
  u.set_status(updateStatus(r.status));
  u.set_current_step(r.current_step);
  int done = 0;
  for (const auto& s : r.steps) {
    done += s.status == StepStatus::Succeeded ? 1 : 0;
    // The output: every result key of the steps that succeeded, as "step.key".
    if (s.status == StepStatus::Succeeded) {
      for (const auto& [k, v] : s.result) (*u.mutable_output())[s.node_id + "." + k] = v;
    }
  }
  u.set_steps_completed(done);
  u.set_total_steps(static_cast<int>(r.steps.size()));
  u.set_error(r.error);
  return u;
}

}  // namespace

grpc::ServerUnaryReactor* OrchestratorService::CreateWorkflow(grpc::CallbackServerContext* ctx,
                                                              const pb::CreateWorkflowRequest* req,
                                                              pb::CreateWorkflowResponse* resp) {
  WorkflowEngine* flows = parts_.workflows;
  if (flows == nullptr) return finishNow(ctx, kNoWorkflows);
  if (req->spec().empty()) {
    return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "spec is required: the workflow JSON (nodes, edges)"});
  }
  // name and description of the request fill in what the spec leaves out.
  std::string text = req->spec();
  if (nestedDeeperThan(text)) return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, tooDeepMessage("the spec")});
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_object()) {
    if (!req->name().empty() && !doc.contains("name")) doc["name"] = req->name();
    if (!req->description().empty() && !doc.contains("description")) doc["description"] = req->description();
    text = doc.dump();
  }
  auto* reactor = ctx->DefaultReactor();
  const bool queued = blocking_.run([flows, text = std::move(text), id = req->id(), resp, reactor] {
    auto w = flows->putWorkflow(text, id, WorkflowEngine::PutMode::Upsert);
    if (!w) {
      resp->set_error(w.error());
      return reactor->Finish(toGrpc(w.fullError()));
    }
    resp->set_success(true);
    resp->set_workflow_id(w.value().id);
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) reactor->Finish({grpc::StatusCode::RESOURCE_EXHAUSTED, "too many workflow calls wait; retry later"});
  return reactor;
}

grpc::ServerUnaryReactor* OrchestratorService::StartWorkflowRun(grpc::CallbackServerContext* ctx,
                                                                const pb::StartWorkflowRunRequest* req,
                                                                pb::StartWorkflowRunResponse* resp) {
  WorkflowEngine* flows = parts_.workflows;
  if (flows == nullptr) return finishNow(ctx, kNoWorkflows);
  if (Status s = validateTaskId(req->workflow_id()); !s.ok()) {
    return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "workflow_id: " + s.error()});
  }
  if (req->idempotency_key().size() > 256) {
    return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "idempotency_key is longer than 256 characters"});
  }
  Payload input(req->input().begin(), req->input().end());
  auto* reactor = ctx->DefaultReactor();
  const bool queued = blocking_.run([flows, id = req->workflow_id(), key = req->idempotency_key(),
                                     input = std::move(input), resp, reactor] {
    flows->startRun(id, key, input, [resp, reactor](Result<RunRecord> r) {
      if (!r) {
        resp->set_error(r.error());
        return reactor->Finish(toGrpc(r.fullError()));
      }
      resp->set_success(true);
      resp->set_run_id(r.value().id);
      reactor->Finish(grpc::Status::OK);
    });
  });
  if (!queued) reactor->Finish({grpc::StatusCode::RESOURCE_EXHAUSTED, "too many workflow calls wait; retry later"});
  return reactor;
}

grpc::ServerWriteReactor<pb::WorkflowStatusUpdate>* OrchestratorService::StreamWorkflowStatus(
    grpc::CallbackServerContext*, const pb::StreamWorkflowStatusRequest* req) {
  WorkflowEngine* flows = parts_.workflows;
  if (flows == nullptr) return ProducerStream<pb::WorkflowStatusUpdate>::failed(kNoWorkflows);
  if (req->run_id().empty()) {
    return ProducerStream<pb::WorkflowStatusUpdate>::failed({grpc::StatusCode::INVALID_ARGUMENT, "run_id is required"});
  }
  return new ProducerStream<pb::WorkflowStatusUpdate>(
      [flows, run_id = req->run_id()](const ProducerStream<pb::WorkflowStatusUpdate>::Write& write,
                                      std::stop_token stop) {
        RunRecord snapshot;
        Status status;
        auto w = flows->watch(run_id, &snapshot, &status);
        if (!status.ok()) return toGrpc(status.fullError());
        struct Leave {
          WorkflowEngine* flows;
          std::shared_ptr<RunWatch> w;
          ~Leave() { flows->unwatch(w); }
        } leave{flows, w};
        if (!write(toUpdate(snapshot))) return grpc::Status::OK;
        if (!w || isTerminal(snapshot.status)) return grpc::Status::OK;  // an ended run: its final state
        while (!stop.stop_requested()) {
          for (const auto& r : w->next(stop)) {
            if (!write(toUpdate(r))) return grpc::Status::OK;
            if (isTerminal(r.status)) return grpc::Status::OK;
          }
        }
        return grpc::Status::OK;
      });
}

grpc::ServerUnaryReactor* OrchestratorService::GetWorkflowRun(grpc::CallbackServerContext* ctx,
                                                              const pb::GetWorkflowRunRequest* req,
                                                              pb::WorkflowRunInfo* resp) {
  WorkflowEngine* flows = parts_.workflows;
  if (flows == nullptr) return finishNow(ctx, kNoWorkflows);
  if (req->run_id().empty()) return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "run_id is required"});
  auto r = flows->getRun(req->run_id());
  if (!r) return finishNow(ctx, toGrpc(r.fullError()));
  fill(r.value(), flows->specOf(r.value().workflow_id, r.value().workflow_version).get(), resp);
  return finishNow(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* OrchestratorService::ListWorkflows(grpc::CallbackServerContext* ctx,
                                                             const pb::ListWorkflowsRequest*,
                                                             pb::ListWorkflowsResponse* resp) {
  WorkflowEngine* flows = parts_.workflows;
  if (flows == nullptr) return finishNow(ctx, kNoWorkflows);
  auto all = flows->listWorkflows();
  if (!all) return finishNow(ctx, toGrpc(all.fullError()));
  for (const auto& w : all.value()) {
    const auto j = workflowSummary(w);
    auto* s = resp->add_workflows();
    s->set_id(w.id);
    s->set_name(w.name);
    s->set_description(j["description"].get<std::string>());
    for (const auto& t : j["tags"]) {
      if (t.is_string()) s->add_tags(t.get<std::string>());
    }
    s->set_tenant(j["tenant"].get<std::string>());
    s->set_version(w.version);
    s->set_updated_at_ms(w.updated_ms);
    s->set_node_count(j["node_count"].get<int>());
    s->set_edge_count(j["edge_count"].get<int>());
  }
  return finishNow(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* OrchestratorService::ListWorkflowRuns(grpc::CallbackServerContext* ctx,
                                                                const pb::ListWorkflowRunsRequest* req,
                                                                pb::ListWorkflowRunsResponse* resp) {
  WorkflowEngine* flows = parts_.workflows;
  if (flows == nullptr) return finishNow(ctx, kNoWorkflows);
  if (req->limit() < 0 || req->limit() > 1000) {
    return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "limit must be from 0 (20) to 1000"});
  }
  if (auto w = flows->getWorkflow(req->workflow_id()); !w) return finishNow(ctx, toGrpc(w.fullError()));
  auto runs = flows->listRuns(req->workflow_id(), req->limit() == 0 ? 20 : req->limit());
  if (!runs) return finishNow(ctx, toGrpc(runs.fullError()));
  for (const auto& r : runs.value()) {
    auto full = flows->getRun(r.id);
    const RunRecord& rec = full ? full.value() : r;
    fill(rec, flows->specOf(rec.workflow_id, rec.workflow_version).get(), resp->add_runs());
  }
  return finishNow(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* OrchestratorService::CancelWorkflowRun(grpc::CallbackServerContext* ctx,
                                                                 const pb::CancelWorkflowRunRequest* req,
                                                                 pb::CancelWorkflowRunResponse* resp) {
  WorkflowEngine* flows = parts_.workflows;
  if (flows == nullptr) return finishNow(ctx, kNoWorkflows);
  if (req->run_id().empty()) return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "run_id is required"});
  if (Status s = flows->cancelRun(req->run_id()); !s.ok()) return finishNow(ctx, toGrpc(s.fullError()));
  resp->set_success(true);
  auto r = flows->getRun(req->run_id());
  resp->set_status(r ? toString(r.value().status) : "cancelled");
  return finishNow(ctx, grpc::Status::OK);
}

}  // namespace dspy::orchestrator
