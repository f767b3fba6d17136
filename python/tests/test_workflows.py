"""Workflows against the real orchestrator (and, for a services step, the real
env-manager and Docker): parallel branches, retries, both failure policies, cancel,
idempotent starts, a SIGKILL mid-run, the status stream, every HTTP route."""

import json
import signal
import tempfile
from pathlib import Path

import grpc
import pytest

from envstack import EnvManager, eventually
from test_orchestrator import Orchestrator, classes_yaml


def node(id_, command, args=None, retry=None, **extra):
    payload = {"command": command}
    if args is not None:
        payload["args"] = json.dumps(args)
    n = {"id": id_, "type": "task", "task": {"class": "cpu_short", "payload": payload}}
    if retry:
        n["retry"] = retry
    n.update(extra)
    return n


def edges(*pairs):
    return [{"source": a, "target": b} for a, b in pairs]


@pytest.fixture
def wf(stubs):
    made = []

    def make(extra=""):
        o = Orchestrator(stubs, classes_yaml() + extra)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


def create(o, spec):
    resp = o.stub.CreateWorkflow(o.pb.CreateWorkflowRequest(spec=json.dumps(spec).encode()), timeout=10)
    assert resp.success, resp.error
    return resp.workflow_id


def start(o, workflow_id, key="", **inputs):
    resp = o.stub.StartWorkflowRun(o.pb.StartWorkflowRunRequest(workflow_id=workflow_id, idempotency_key=key,
                                                                input=inputs), timeout=10)
    assert resp.success, resp.error
    return resp.run_id


def run_info(o, run_id):
    return o.stub.GetWorkflowRun(o.pb.GetWorkflowRunRequest(run_id=run_id), timeout=10)


def wait_run(o, run_id, timeout=60):
    eventually(lambda: run_info(o, run_id).status in ("succeeded", "failed", "cancelled"), timeout,
               what=f"run {run_id} ended")
    r = run_info(o, run_id)
    return r, {s.node_id: s for s in r.steps}


def test_a_diamond_runs_its_middle_steps_in_parallel(wf):
    o = wf()
    wid = create(o, {"name": "diamond", "nodes": [
        node("a", "echo", ["start"]), node("b", "nap", ["0.6"]), node("c", "nap", ["0.6"]),
        node("d", "echo", ["a exited ${steps.a.exit_code}"])], "edges": edges(("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"))})
    r, steps = wait_run(o, start(o, wid))
    assert r.status == "succeeded", r.error
    b, c = steps["b"], steps["c"]
    # Overlapping: each started before the other ended.
    assert b.started_at_ms < c.finished_at_ms and c.started_at_ms < b.finished_at_ms
    assert steps["d"].started_at_ms >= max(b.finished_at_ms, c.finished_at_ms)
    assert steps["d"].result["stdout"] == "a exited 0\n"  # a's result, passed on
    assert r.workflow_version == 1


def test_a_failing_step_retries_by_its_policy_and_then_succeeds(wf, tmp_path):
    o = wf()
    marker = tmp_path / "tried"
    wid = create(o, {"name": "retry", "nodes": [
        node("flaky", "sh", [f"test -f {marker} && echo ok && exit 0; touch {marker}; exit 1"],
             retry={"max_attempts": 3, "initial_interval_ms": 50})]})
    r, steps = wait_run(o, start(o, wid))
    assert r.status == "succeeded"
    assert steps["flaky"].attempts == 2


@pytest.mark.parametrize("policy", ["stop", "continue"])
def test_failure_policies(wf, policy):
    o = wf()
    wid = create(o, {"name": "p", "failure_policy": policy, "nodes": [
        node("bad", "fail"), node("child", "echo"), node("slow", "nap", ["1"]), node("after", "echo")],
        "edges": edges(("bad", "child"), ("slow", "after"))})
    r, steps = wait_run(o, start(o, wid))
    assert r.status == "failed"
    assert "step 'bad' failed" in r.error
    assert steps["child"].status == "skipped"
    if policy == "stop":
        assert steps["slow"].status == "failed"  # cancelled while it ran
        assert steps["after"].status == "skipped"
    else:
        assert steps["slow"].status == "succeeded"
        assert steps["after"].status == "succeeded"


def test_cancel_mid_run_and_idempotent_start(wf):
    o = wf()
    wid = create(o, {"name": "c", "nodes": [node("long", "nap", ["30"]), node("next", "echo")],
                     "edges": edges(("long", "next"))})
    run_id = start(o, wid, key="once")
    assert start(o, wid, key="once") == run_id
    eventually(lambda: {s.node_id: s.status for s in run_info(o, run_id).steps}["long"] == "running", 10)
    resp = o.stub.CancelWorkflowRun(o.pb.CancelWorkflowRunRequest(run_id=run_id), timeout=10)
    assert resp.success
    r, steps = wait_run(o, run_id, 15)
    assert r.status == "cancelled"
    assert steps["next"].status == "skipped"
    assert o.status(steps["long"].task_id).status == "cancelled"
    with pytest.raises(grpc.RpcError) as err:
        o.stub.CancelWorkflowRun(o.pb.CancelWorkflowRunRequest(run_id=run_id), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_sigkill_mid_run_then_the_run_completes_without_repeating_finished_steps(wf, tmp_path):
    o = wf()
    log = tmp_path / "effects"
    def effect(name, sleep="0"):
        return node(name, "sh", [f"echo {name} >> {log}; sleep {sleep}"])
    # An attempt that a crash interrupted counts (it may have had effects): the
    # workflow's default policy allows a second one.
    wid = create(o, {"name": "k", "defaults": {"retry": {"max_attempts": 2, "initial_interval_ms": 10}},
                     "nodes": [effect("one"), effect("two", "2"), effect("three")],
                     "edges": edges(("one", "two"), ("two", "three"))})
    run_id = start(o, wid)
    eventually(lambda: log.exists() and "two" in log.read_text(), 20, what="step two started")
    o.daemon.restart(signal.SIGKILL)
    o.reconnect()
    r, steps = wait_run(o, run_id, 60)
    assert r.status == "succeeded", r.error
    lines = log.read_text().split()
    assert lines.count("one") == 1  # finished before the kill: never again
    assert lines.count("three") == 1
    assert lines.count("two") == 2  # interrupted while it ran: run again, once
    assert steps["two"].attempts == lines.count("two")


def test_the_status_stream_sends_each_step_change_and_ends_with_the_run(wf):
    o = wf()
    wid = create(o, {"name": "s", "nodes": [node("a", "nap", ["0.3"]), node("b", "echo", ["hi"])],
                     "edges": edges(("a", "b"))})
    run_id = start(o, wid)
    updates = list(o.stub.StreamWorkflowStatus(o.pb.StreamWorkflowStatusRequest(run_id=run_id), timeout=30))
    assert updates[-1].status == "completed"
    assert updates[-1].steps_completed == 2 and updates[-1].total_steps == 2
    assert updates[-1].output["b.stdout"] == "hi\n"
    assert [u.steps_completed for u in updates] == sorted(u.steps_completed for u in updates)
    assert "b" in [u.current_step for u in updates]
    # A run that ended streams its final state once.
    again = list(o.stub.StreamWorkflowStatus(o.pb.StreamWorkflowStatusRequest(run_id=run_id), timeout=10))
    assert len(again) == 1 and again[0].status == "completed"
    with pytest.raises(grpc.RpcError) as err:
        list(o.stub.StreamWorkflowStatus(o.pb.StreamWorkflowStatusRequest(run_id="nope"), timeout=10))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_every_http_route_and_its_errors(wf):
    o = wf()
    spec = {"id": "h1", "name": "H", "tags": ["t"], "nodes": [node("a", "echo", ["x"])]}
    code, body = o.http("POST", "/workflows", spec)
    assert code == 201 and body["id"] == "h1" and body["version"] == 1
    assert o.http("POST", "/workflows", spec)[0] == 409
    code, body = o.http("POST", "/workflows", b"{not json")
    assert code == 400 and "neither JSON nor YAML" in body["error"]
    code, body = o.http("POST", "/workflows", {"name": "x", "nodes": [{"id": "a", "type": "magic", "magic": {}}]})
    assert code == 400 and body["error"].startswith("node 'a': unknown type 'magic'")
    code, body = o.http("POST", "/workflows", {"name": "x", "nodes": [node("a", "echo"), node("b", "echo")],
                                               "edges": edges(("a", "b"), ("b", "a"))})
    assert code == 400 and body["error"] == "cycle: a -> b -> a"
    code, body = o.http("GET", "/workflows")
    assert code == 200 and [w["id"] for w in body["items"]] == ["h1"]
    assert body["items"][0]["node_count"] == 1 and body["items"][0]["tags"] == ["t"]
    spec["nodes"].append(node("b", "echo", ["y"]))
    spec["edges"] = edges(("a", "b"))
    code, body = o.http("PUT", "/workflows/h1", spec)
    assert code == 200 and body["version"] == 2
    assert o.http("PUT", "/workflows/nope", spec)[0] == 400  # the spec says h1
    assert o.http("PUT", "/workflows/nope", {k: v for k, v in spec.items() if k != "id"})[0] == 404
    code, body = o.http("GET", "/workflows/h1")
    assert code == 200 and len(body["nodes"]) == 2
    code, body = o.http("GET", "/workflows/h1/history")
    assert code == 200 and [h["version"] for h in body["items"]] == [2, 1]
    code, body = o.http("GET", body["items"][1]["path"])
    assert code == 200 and len(body["nodes"]) == 1
    assert o.http("GET", "/workflows/nope")[0] == 404
    code, run = o.http("POST", "/workflows/h1/runs", {"idempotency_key": "k1", "input": {"n": 1}})
    assert code == 201 and run["workflow_id"] == "h1" and run["input"] == {"n": "1"}
    assert o.http("POST", "/workflows/h1/runs", {"idempotency_key": "k1"})[1]["id"] == run["id"]
    assert o.http("POST", "/workflows/h1/runs", {"input": [1]})[0] == 400
    assert o.http("POST", "/workflows/h1/runs", b"[")[0] == 400
    assert o.http("POST", "/workflows/nope/runs", {})[0] == 404
    eventually(lambda: o.http("GET", f"/workflow-runs/{run['id']}")[1]["status"] == "succeeded", 30)
    code, rec = o.http("GET", f"/workflow-runs/{run['id']}")
    assert rec["workflow_name"] == "H" and rec["workflow_version"] == 2
    assert [s["status"] for s in rec["steps"]] == ["succeeded", "succeeded"]
    assert rec["steps"][0]["action"] == "task:cpu_short" and "completed_at" in rec
    code, body = o.http("GET", "/workflows/h1/runs?limit=5")
    assert code == 200 and [r["id"] for r in body["items"]] == [run["id"]]
    assert o.http("GET", "/workflows/h1/runs?limit=0")[0] == 400
    assert o.http("GET", "/workflow-runs/nope")[0] == 404
    assert o.http("POST", f"/workflow-runs/{run['id']}/cancel")[0] == 409
    assert o.http("DELETE", "/workflows/h1")[0] == 405
    listed = o.stub.ListWorkflows(o.pb.ListWorkflowsRequest(), timeout=10).workflows
    assert [w.id for w in listed] == ["h1"] and listed[0].version == 2
    runs = o.stub.ListWorkflowRuns(o.pb.ListWorkflowRunsRequest(workflow_id="h1"), timeout=10).runs
    assert [r.run_id for r in runs] == [run["id"]]
    metrics = o.stub.GetMetrics(o.pb.GetMetricsRequest(metric_names=["workflows_total"]), timeout=10).metrics
    assert metrics["workflows_total"] == 1


def test_a_services_step_waits_for_the_real_env_manager(stubs, wf):
    m = EnvManager(stubs)
    try:
        o = wf(f"env_manager:\n  address: {m.daemon.grpc_addr}\n")
        wid = create(o, {"name": "svc", "nodes": [
            {"id": "up", "type": "services", "services": {"services": ["redis"]}},
            node("use", "echo", ["redis is up"]),
            {"id": "nope", "type": "services", "services": {"services": ["no-such-service"]}}],
            "edges": edges(("up", "use")), "failure_policy": "continue"})
        r, steps = wait_run(o, start(o, wid), 120)
        assert steps["up"].status == "succeeded"
        assert steps["use"].started_at_ms >= steps["up"].finished_at_ms
        assert m.status(["redis"])["redis"].status == "running"
        assert steps["nope"].status == "failed" and "no-such-service" in steps["nope"].error
    finally:
        m.close()


def test_the_cli_creates_runs_watches_lists_shows_and_cancels(wf, tmp_path):
    import os
    import subprocess

    o = wf()
    cli = [str(Path(os.environ["DSPY_BUILD_DIR"]) / "cli/dspy-agent"), "workflows"]
    addr = ["--addr", o.daemon.grpc_addr]

    def run(*args):
        return subprocess.run(cli + list(args) + addr, capture_output=True, text=True, timeout=60)

    spec = tmp_path / "flow.yaml"
    spec.write_text("""
id: cli-flow
name: From the CLI
nodes:
  - {id: hello, type: task, task: {class: cpu_short, payload: {command: echo, args: '["hi ${input.who}"]'}}}
  - {id: bye, type: task, task: {class: cpu_short, payload: {command: echo, args: '["bye"]'}}}
edges:
  - {source: hello, target: bye}
""")
    r = run("create", str(spec))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "cli-flow"
    r = run("run", "cli-flow", "--input", "who=me", "--watch")
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.splitlines()[0]
    assert "completed 2/2" in r.stdout and "succeeded" in r.stdout
    shown = json.loads(run("show", run_id, "--json").stdout)
    assert shown["status"] == "succeeded"
    assert shown["steps"][0]["result"]["stdout"] == "hi me\n"
    listed = json.loads(run("list", "--json").stdout)
    assert [w["id"] for w in listed["items"]] == ["cli-flow"]
    runs = json.loads(run("list", "cli-flow", "--json").stdout)
    assert [x["id"] for x in runs["items"]] == [run_id]
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "nodes": [{"id": "a", "type": "training", "training": {"method": "m"}}]}')
    r = run("create", str(bad))
    assert r.returncode == 1 and "training.skill is required" in r.stderr
    long_spec = tmp_path / "long.json"
    long_spec.write_text(json.dumps({"id": "long", "name": "L", "nodes": [node("wait", "nap", ["30"])]}))
    assert run("create", str(long_spec)).returncode == 0
    long_run = run("run", "long").stdout.strip()
    eventually(lambda: run_info(o, long_run).steps[0].status == "running", 10)
    r = run("cancel", long_run)
    assert r.returncode == 0 and r.stdout.startswith(long_run)  # the run's status right after the request
    eventually(lambda: run_info(o, long_run).status == "cancelled", 10)
    assert run("show", "nope").returncode == 1
    assert run("run").returncode == 2
