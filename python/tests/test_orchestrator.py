"""The orchestrator's task engine against the real daemons: submission over gRPC and
HTTP, result streams, cancellation, timeouts, isolation of failures, container tasks
through a real env-manager and Docker, ensure_services, and a SIGKILL under load."""

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from conftest import Daemon
from envstack import EnvManager, eventually

COMMANDS_YAML = """
executors:
  process:
    commands:
      echo: {argv: [/bin/echo], allow_args: true}
      sh: {argv: [/bin/sh, -c], allow_args: true}
      fail: {argv: [/bin/sh, -c, 'echo broken >&2; exit 3']}
      nap: {argv: [/bin/sleep], allow_args: true}
"""


def commands_yaml(extra="", runner_url=""):
    return COMMANDS_YAML + extra + (f"  http:\n    url: {runner_url}\n" if runner_url else "")


def classes_yaml(extra="", heartbeat_ms=None):
    # heartbeat_ms=0 turns off the result streams' 1 s re-send, for tests that check
    # each state is sent exactly once.
    heartbeat = "" if heartbeat_ms is None else f"  result_heartbeat_ms: {heartbeat_ms}\n"
    return f"""
tasks:
{heartbeat}  classes:
    cpu_short:
      limiter: {{kind: gradient, initial: 4, min: 1, max: 16}}
      retry: {{max_attempts: 1}}
    cpu_long:
      limiter: {{kind: fixed, initial: 2, max: 2}}
      retry: {{max_attempts: 3, initial_interval_ms: 50}}
{extra}"""


class Orchestrator:
    def __init__(self, stubs, extra_yaml="", commands="", runner_url=""):
        self.daemon = Daemon("orchestrator", "orchestrator/orchestrator",
                             commands_yaml(commands, runner_url) + extra_yaml)
        self.daemon.wait_serving()
        self.pb = stubs.orch_pb2
        self.channel = self.daemon.channel()
        self.stub = stubs.orch_grpc.OrchestratorServiceStub(self.channel)
        self.stubs = stubs

    def reconnect(self):
        self.channel.close()
        self.channel = self.daemon.channel()
        self.stub = self.stubs.orch_grpc.OrchestratorServiceStub(self.channel)

    def submit(self, id_="", cls="cpu_short", priority=0, **payload):
        req = self.pb.SubmitTaskRequest(id=id_, payload=payload, priority=priority)
        setattr(req, "class", cls)
        return self.stub.SubmitTask(req, timeout=10)

    def status(self, task_id):
        return self.stub.GetTaskStatus(self.pb.GetTaskStatusRequest(task_id=task_id), timeout=10)

    def wait_final(self, task_id, timeout=30):
        eventually(lambda: self.status(task_id).status in ("completed", "failed", "cancelled"), timeout,
                   what=f"task {task_id} finished")
        return self.status(task_id)

    def http(self, method, path, body=None):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(f"http://{self.daemon.http_addr}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def close(self):
        self.channel.close()
        self.daemon.stop()


@pytest.fixture
def orch(stubs):
    made = []

    def make(extra_yaml=classes_yaml(), commands="", runner_url=""):
        o = Orchestrator(stubs, extra_yaml, commands, runner_url)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


def test_submit_over_grpc_and_http_then_read_the_results(orch):
    o = orch()
    r = o.submit("g1", command="echo", args='["from","grpc"]')
    assert r.success and r.task_id == "g1"
    # payload_json members are merged into the payload.
    r2 = o.submit("g2", payload_json=json.dumps({"command": "echo", "args": ["merged"]}))
    assert r2.success
    code, body = o.http("POST", "/queue/submit", {"id": "h1", "payload": {"command": "echo", "args": ["from", "http"]}})
    assert code == 200 and body == {"ok": True, "id": "h1"}
    code, body = o.http("POST", "/queue/submit", {"payload": {"command": "echo"}})
    assert code == 200 and body["id"].startswith("task-")

    assert o.wait_final("g1").result["stdout"] == "from grpc\n"
    assert o.wait_final("g2").result["stdout"] == "merged\n"
    assert o.wait_final("h1").result["stdout"] == "from http\n"
    code, task = o.http("GET", "/tasks/h1")
    assert code == 200 and task["status"] == "completed" and task["class"] == "cpu_short"
    assert task["result"]["exit_code"] == "0" and task["attempts"] == 1
    eventually(lambda: o.http("GET", "/queue/status")[1]["done"] == 4, 10)
    code, q = o.http("GET", "/queue/status")
    assert {k: q[k] for k in ("pending", "done", "submitted", "processed", "completed")} == {
        "pending": 0, "done": 4, "submitted": 4, "processed": 4, "completed": 4}
    assert q["classes"]["cpu_short"]["limiter"] == "gradient"


def test_stream_task_results_sends_each_change_once_and_ends(orch):
    o = orch(classes_yaml(heartbeat_ms=0))
    ids = [f"s{i}" for i in range(5)]
    for i in ids:
        o.submit(i, cls="cpu_long", command="nap", args='["0.3"]')
    t0 = time.monotonic()
    updates = list(o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(task_ids=ids), timeout=30))
    assert time.monotonic() - t0 < 20, "the stream ends once every named task finished"
    by_task = {}
    for u in updates:
        by_task.setdefault(u.task_id, []).append(u.status)
    assert set(by_task) == set(ids)
    for i, seq in by_task.items():
        assert seq[-1] == "completed", (i, seq)
        assert len(seq) == len(set(seq)), f"no state is sent twice: {i} {seq}"
        assert seq == sorted(seq, key=["pending", "running", "completed"].index)
    done = [u for u in updates if u.status == "completed"]
    assert all(u.duration_ms >= 250 for u in done)
    # Finished tasks appear only with include_completed; the stream then ends at once.
    again = list(o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(task_ids=ids, include_completed=True), timeout=10))
    assert sorted(u.task_id for u in again) == sorted(ids) and {u.status for u in again} == {"completed"}
    assert list(o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(task_ids=ids), timeout=10)) == []
    # A task that does not exist (yet) keeps the stream open until the call's deadline.
    got = []
    with pytest.raises(grpc.RpcError) as err:
        for u in o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(task_ids=["nope"]), timeout=1.5):
            got.append(u)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and got == []


def test_an_all_task_stream_follows_new_tasks_until_the_client_leaves(orch):
    o = orch(classes_yaml(heartbeat_ms=0))
    # A long task first: its state in the stream's opening snapshot shows that the
    # stream is registered before the task under test is submitted.
    o.submit("marker", cls="cpu_long", command="nap", args='["30"]')
    call = o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(), timeout=30)
    seen = []

    def read():
        try:
            for u in call:
                seen.append((u.task_id, u.status))
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read)
    reader.start()
    eventually(lambda: any(t == "marker" for t, _ in seen), 10, what="the snapshot reached the client")
    o.submit("live1", command="echo", args='["x"]')
    eventually(lambda: ("live1", "completed") in seen, 10, what="live1 completed on the stream")
    o.stub.CancelTask(o.pb.CancelTaskRequest(task_id="marker"), timeout=10)
    eventually(lambda: ("marker", "cancelled") in seen, 10, what="the cancelled marker on the stream")
    call.cancel()
    reader.join(5)
    assert not reader.is_alive()
    assert [s for t, s in seen if t == "live1"] == ["pending", "running", "completed"]


def test_a_failing_task_next_to_succeeding_ones_fails_alone(orch):
    o = orch()
    ok_ids = [f"ok{i}" for i in range(10)]
    for i, tid in enumerate(ok_ids):
        o.submit(tid, command="echo", args=json.dumps([str(i)]))
        if i == 4:
            o.submit("bad", command="fail")
    bad = o.wait_final("bad")
    assert bad.status == "failed" and bad.error == "exit code 3"
    assert bad.result["stderr"] == "broken\n"
    for tid in ok_ids:
        assert o.wait_final(tid).status == "completed"


def test_retries_follow_the_class_policy(orch):
    o = orch()
    o.submit("flaky", cls="cpu_long", command="fail")
    t = o.wait_final("flaky")
    assert t.status == "failed"
    assert t.task.attempts == 3


def test_timeout_kills_the_task_and_cancel_stops_queued_and_running_ones(orch):
    o = orch()
    t0 = time.monotonic()
    o.submit("slow", command="nap", args='["30"]', timeout_seconds="1")
    t = o.wait_final("slow", 15)
    assert t.status == "failed" and "timed out" in t.error
    assert time.monotonic() - t0 < 10

    # cpu_long runs two at a time: the third waits in the queue.
    for i in range(3):
        o.submit(f"c{i}", cls="cpu_long", command="nap", args='["30"]')
    eventually(lambda: o.status("c1").status == "running", 10)
    assert o.status("c2").status == "pending"
    r = o.stub.CancelTask(o.pb.CancelTaskRequest(task_id="c2"), timeout=10)
    assert r.success and r.status == "cancelled"
    t0 = time.monotonic()
    code, body = o.http("POST", "/tasks/c0/cancel")
    assert code == 200 and body["ok"]
    assert o.wait_final("c0", 10).status == "cancelled"
    assert time.monotonic() - t0 < 5
    with pytest.raises(grpc.RpcError) as err:
        o.stub.CancelTask(o.pb.CancelTaskRequest(task_id="c0"), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        o.stub.CancelTask(o.pb.CancelTaskRequest(task_id="missing"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    o.stub.CancelTask(o.pb.CancelTaskRequest(task_id="c1"), timeout=10)


def test_bad_input_gets_clear_errors_and_changes_nothing(orch):
    o = orch()
    cases = [
        (dict(id_="x1", cls="quantum", command="echo"), grpc.StatusCode.INVALID_ARGUMENT, "unknown task class"),
        (dict(id_="bad id!", command="echo"), grpc.StatusCode.INVALID_ARGUMENT, "task id"),
        (dict(id_="x2", command="rm"), grpc.StatusCode.INVALID_ARGUMENT, "not one of the configured commands"),
        (dict(id_="x3", argv='["/bin/true"]'), grpc.StatusCode.INVALID_ARGUMENT, "allow_arbitrary"),
        (dict(id_="x4", payload_json="{nope"), grpc.StatusCode.INVALID_ARGUMENT, "payload_json"),
        (dict(id_="x5", command="echo", big="x" * 300_000), grpc.StatusCode.INVALID_ARGUMENT, "over the limit"),
    ]
    for kwargs, code, why in cases:
        with pytest.raises(grpc.RpcError) as err:
            o.submit(**kwargs)
        assert err.value.code() == code, kwargs
        assert why in err.value.details(), err.value.details()
    o.submit("dup", command="echo", args='["a"]')
    assert o.submit("dup", command="echo", args='["a"]').success, "the same request again is accepted"
    with pytest.raises(grpc.RpcError) as err:
        o.submit("dup", command="echo", args='["b"]')
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS

    for body, code, why in ((b"{not json", 400, "JSON object"), ({"class": 5}, 400, "'class'"),
                            ({"payload": [1]}, 400, "'payload'"), ({"class": "quantum"}, 400, "unknown task class"),
                            ({"id": "dup", "payload": {"command": "echo"}}, 409, "taken")):
        status, answer = o.http("POST", "/queue/submit", body)
        assert status == code and why in answer["error"], (body, status, answer)
    assert o.http("GET", "/tasks/nope")[0] == 404
    assert o.http("GET", "/tasks?status=weird")[0] == 400
    for path, why in (("/tasks?limit=ten", "limit must be an integer"), ("/tasks?limit=5000", "between 0 and 1000"),
                      ("/tasks?page_token=x1", "bad page token"), ("/tasks/-bad", "must not start with"),
                      ("/tasks/-bad/cancel", "must not start with")):
        status, answer = o.http("POST" if path.endswith("cancel") else "GET", path)
        assert status == 400 and why in answer["error"], (path, status, answer)
    for call, req, why in (
            (o.stub.ListTasks, o.pb.ListTasksRequest(page_size=5000), "between 0 and 1000"),
            (o.stub.ListTasks, o.pb.ListTasksRequest(page_token="abc"), "bad page token"),
            (o.stub.ListTasks, o.pb.ListTasksRequest(status="done"), "unknown status"),
            (o.stub.CancelTask, o.pb.CancelTaskRequest(task_id="a/b"), "task id"),
            (o.stub.GetTaskStatus, o.pb.GetTaskStatusRequest(task_id=""), "task_id is required")):
        with pytest.raises(grpc.RpcError) as err:
            call(req, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and why in err.value.details(), why
    with pytest.raises(grpc.RpcError) as err:
        list(o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(task_ids=["bad id"]), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        o.status("nope")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Nothing above was stored but "dup".
    eventually(lambda: o.http("GET", "/queue/status")[1]["done"] == 1, 10)
    assert o.http("GET", "/queue/status")[1]["submitted"] == 1


def test_list_tasks_pages_and_filters(orch):
    o = orch()
    for i in range(25):
        o.submit(f"l{i:02d}", command="echo")
    o.submit("lf", command="fail")
    eventually(lambda: o.http("GET", "/queue/status")[1]["done"] == 26, 20)
    seen, token = [], ""
    while True:
        page = o.stub.ListTasks(o.pb.ListTasksRequest(page_size=10, page_token=token, status="completed"), timeout=10)
        seen += [t.task_id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"l{i:02d}" for i in range(25)]
    failed = o.stub.ListTasks(o.pb.ListTasksRequest(status="failed"), timeout=10)
    assert [t.task_id for t in failed.tasks] == ["lf"]
    code, body = o.http("GET", "/tasks?status=failed&limit=5")
    assert code == 200 and [t["id"] for t in body["items"]] == ["lf"]


def test_get_metrics_honours_the_filter_and_counts_tasks(orch):
    o = orch()
    o.submit("m1", command="echo")
    o.wait_final("m1")
    eventually(lambda: o.stub.GetMetrics(o.pb.GetMetricsRequest(metric_names=["queue_tasks_completed_total"]),
                                         timeout=10).metrics.get("queue_tasks_completed_total") == 1, 10)
    m = o.stub.GetMetrics(o.pb.GetMetricsRequest(metric_names=["orchestrator_concurrency_limit", "queue_depth"]),
                          timeout=10).metrics
    assert set(k.split("{")[0] for k in m) == {"orchestrator_concurrency_limit", "queue_depth"}
    assert m['orchestrator_concurrency_limit{class="cpu_long"}'] == 2
    assert m["queue_depth"] == 0
    everything = o.stub.GetMetrics(o.pb.GetMetricsRequest(), timeout=10).metrics
    for name in ("orchestrator_inflight_tasks", "env_queue_depth", "queue_tasks_submitted_total",
                 "queue_tasks_processed_total", "orchestrator_task_duration_seconds_count"):
        assert name in everything
    text = urllib.request.urlopen(f"http://{o.daemon.http_addr}/metrics", timeout=10).read().decode()
    assert 'queue_tasks_completed_total{class="cpu_short"} 1' in text


def test_sigkill_under_load_every_task_finishes_exactly_once(orch, tmp_path):
    log = tmp_path / "runs.log"
    o = orch(classes_yaml("""    work:
      limiter: {kind: fixed, initial: 8, max: 8}
      retry: {max_attempts: 3, initial_interval_ms: 10}
"""), commands=f"""      record: {{argv: [/bin/sh, -c, 'echo "$TASK_ID $TASK_ATTEMPT" >> {log}; sleep 0.02']}}
""")
    ids = [f"k{i:04d}" for i in range(1000)]

    def submit(chunk):
        for tid in chunk:
            o.submit(tid, cls="work", command="record")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, [ids[i::8] for i in range(8)]))
    eventually(lambda: log.exists() and len(log.read_text().splitlines()) >= 150, 30, what="some tasks ran")
    before_kill = len(log.read_text().splitlines())
    o.daemon.restart(kill_signal=signal.SIGKILL)
    o.reconnect()
    eventually(lambda: o.http("GET", "/queue/status")[1]["done"] == 1000, 120, interval=0.5,
               what="all 1000 tasks finished after the restart")
    q = o.http("GET", "/queue/status")[1]
    assert q["completed"] == 1000 and q["pending"] == 0 and q["submitted"] == 1000
    runs = {}
    for line in log.read_text().splitlines():
        tid, attempt = line.split()
        runs.setdefault(tid, []).append(int(attempt))
    assert set(runs) == set(ids), "every task ran"
    twice = {t: a for t, a in runs.items() if len(a) > 1}
    # Only tasks whose last durable state was "running" run again: at most the 8 slots,
    # plus finished attempts whose "completed" had not been committed yet.
    assert len(twice) <= 16, twice
    print(f"runs before the kill: {before_kill}; tasks run twice: {len(twice)}")
    for tid in twice:
        # An attempt starts only once it is recorded, so every extra run was counted.
        assert o.status(tid).task.attempts == 2
        assert runs[tid] == [1, 2]
    # Each task completed once: one terminal record each, none still open.
    results = list(o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(task_ids=ids, include_completed=True),
                                            timeout=60))
    assert len(results) == 1000 and {r.status for r in results} == {"completed"}


def test_container_tasks_run_through_a_real_env_manager(stubs, orch):
    m = EnvManager(stubs)
    try:
        o = orch(classes_yaml(f"""    box:
      executor: container
      workload_class: cpu_short
      limiter: {{kind: fixed, initial: 2, max: 2}}
      retry: {{max_attempts: 1}}
""") + f"env_manager:\n  address: {m.daemon.grpc_addr}\n")
        o.submit("box1", cls="box", command="greet", **{"env.WHO": "orchestrator"})
        o.submit("box2", cls="box", command="fail")
        ok = o.wait_final("box1", 120)
        assert ok.status == "completed", ok.error
        assert ok.result["stdout_tail"] == "hello orchestrator\n"
        bad = o.wait_final("box2", 120)
        assert bad.status == "failed" and "exited with code 4" in bad.error
        h = o.stub.Health(o.pb.HealthRequest(), timeout=10)
        assert h.services["env_manager"] == "ready"
    finally:
        m.close()


def test_ensure_services_brings_up_what_the_orchestrator_needs(stubs, orch):
    m = EnvManager(stubs)
    try:
        o = orch(classes_yaml() + f"env_manager:\n  address: {m.daemon.grpc_addr}\n  ensure_services: [redis]\n")
        eventually(lambda: o.stub.Health(o.pb.HealthRequest(), timeout=10).services.get("ensure_services", "")
                   .startswith("ready"), 90, what="ensure_services ready")
        st = m.status(["redis"])
        assert st["redis"].status == "running"
        assert st["redis"].container_id
        # env-manager's health verdicts are relayed as events: redis healthy, from env-manager.

        def redis_events():
            call = o.stub.StreamEvents(o.pb.StreamEventsRequest(event_types=["service_status"], since_timestamp=1),
                                       timeout=3)
            got = []
            try:
                for ev in call:
                    got.append(ev)
            except grpc.RpcError:
                pass  # the deadline ends the replay
            return [e for e in got if e.resource_id == "redis"]

        eventually(lambda: any(e.data["status"] == "healthy" for e in redis_events()), 30,
                   what="a service_status event for redis")
        ev = [e for e in redis_events() if e.data["status"] == "healthy"][0]
        assert ev.source == "env-manager" and ev.data["service_name"] == "redis"
    finally:
        m.close()


def test_http_executor_posts_to_the_runner_and_maps_its_answers(orch):
    import http.server

    seen = []

    class Runner(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body))
            mode = body["payload"].get("mode")
            if mode == "ok":
                code, answer = 200, {"success": True, "result": {"answer": 42, "echo": body["task_id"]}}
            elif mode == "refuse":
                code, answer = 400, {"error": "runner refuses this payload"}
            elif mode == "flaky" and body["attempt"] == 1:
                code, answer = 503, {"error": "runner busy"}
            elif mode == "flaky":
                code, answer = 200, {"ok": True, "result": {"attempt": str(body["attempt"])}}
            else:
                code, answer = 200, {"success": False, "error": "task logic failed"}
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runner)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        o = orch(classes_yaml("""    remote:
      executor: http
      limiter: {kind: fixed, initial: 2, max: 2}
      retry: {max_attempts: 2, initial_interval_ms: 50}
"""), runner_url=f"http://127.0.0.1:{server.server_port}/")
        for tid, mode in (("r-ok", "ok"), ("r-refuse", "refuse"), ("r-flaky", "flaky"), ("r-fail", "fail")):
            o.submit(tid, cls="remote", mode=mode)
        ok = o.wait_final("r-ok")
        assert ok.status == "completed" and ok.result["answer"] == "42" and ok.result["echo"] == "r-ok"
        refused = o.wait_final("r-refuse")
        assert refused.status == "failed" and "HTTP 400: runner refuses this payload" in refused.error
        assert refused.task.attempts == 1, "a 4xx is not retried"
        flaky = o.wait_final("r-flaky")
        assert flaky.status == "completed" and flaky.task.attempts == 2 and flaky.result["attempt"] == "2"
        failed = o.wait_final("r-fail")
        assert failed.status == "failed" and failed.error == "task logic failed" and failed.task.attempts == 2
        path, body = seen[0]
        assert path == "/tasks/execute"
        assert set(body) == {"id", "task_id", "class", "attempt", "payload"} and body["class"] == "remote"
        assert body["id"] == body["task_id"]
    finally:
        server.shutdown()


def test_cli_submits_follows_shows_lists_and_cancels_tasks(orch):
    import os
    import subprocess

    o = orch()
    cli = [str(Path(os.environ["DSPY_BUILD_DIR"]) / "cli/dspy-agent"), "tasks"]
    addr = ["--addr", o.daemon.grpc_addr]

    def run(*args):
        return subprocess.run(cli + list(args) + addr, capture_output=True, text=True, timeout=60)

    r = run("submit", "cpu_short", "--id", "cli1", "--wait", "command=echo", 'args=["from","cli"]')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "cli1"
    assert "cli1 completed" in r.stdout and "stdout: from cli" in r.stdout
    bad = run("submit", "cpu_short", "--id", "cli2", "--wait", "command=fail")
    assert bad.returncode == 1 and "cli2 failed" in bad.stdout and "exit code 3" in bad.stdout
    shown = json.loads(run("show", "cli1", "--json").stdout)
    assert shown["status"] == "completed" and shown["result"]["stdout"] == "from cli\n"
    assert run("submit", "cpu_long", "--id", "cli3", "command=nap", 'args=["30"]').returncode == 0
    eventually(lambda: o.status("cli3").status == "running", 10)
    listed = json.loads(run("list", "--status", "running", "--json").stdout)
    assert [t["id"] for t in listed["items"]] == ["cli3"]
    c = run("cancel", "cli3")
    assert c.returncode == 0 and "cli3" in c.stdout
    assert o.wait_final("cli3", 10).status == "cancelled"
    missing = run("show", "nope")
    assert missing.returncode == 1 and "no task with id 'nope'" in missing.stderr
    assert run("submit").returncode == 2
    assert run("submit", "cpu_short", "not-a-pair").returncode == 2


def test_sighup_applies_new_limits_and_commands_without_dropping_work(orch):
    o = orch()
    for i in range(4):
        o.submit(f"h{i}", cls="cpu_long", command="nap", args='["30"]')
    eventually(lambda: sum(o.status(f"h{i}").status == "running" for i in range(4)) == 2, 10)
    assert o.status("h3").status == "pending"
    with pytest.raises(grpc.RpcError):
        o.submit("greet1", command="greet")
    text = o.daemon.config.read_text()
    text = text.replace("limiter: {kind: fixed, initial: 2, max: 2}", "limiter: {kind: fixed, initial: 4, max: 4}")
    text = text.replace("      nap: {argv: [/bin/sleep], allow_args: true}\n",
                        "      nap: {argv: [/bin/sleep], allow_args: true}\n      greet: {argv: [/bin/echo, hi]}\n")
    o.daemon.config.write_text(text)
    o.daemon.proc.send_signal(signal.SIGHUP)
    eventually(lambda: all(o.status(f"h{i}").status == "running" for i in range(4)), 10,
               what="the two queued tasks started under the raised limit")
    m = o.stub.GetMetrics(o.pb.GetMetricsRequest(metric_names=["orchestrator_concurrency_limit"]), timeout=10).metrics
    assert m['orchestrator_concurrency_limit{class="cpu_long"}'] == 4
    assert o.submit("greet1", command="greet").success
    assert o.wait_final("greet1").result["stdout"] == "hi\n"
    assert "class 'cpu_long': limiter now fixed" in o.daemon.log_text()
    # A broken file is rejected as a whole and changes nothing.
    o.daemon.config.write_text(text.replace("initial: 4, max: 4", "initial: 9, max: 4"))
    o.daemon.proc.send_signal(signal.SIGHUP)
    eventually(lambda: "reload rejected" in o.daemon.log_text(), 10)
    assert o.stub.GetMetrics(o.pb.GetMetricsRequest(metric_names=["orchestrator_concurrency_limit"]),
                             timeout=10).metrics['orchestrator_concurrency_limit{class="cpu_long"}'] == 4
    for i in range(4):
        o.stub.CancelTask(o.pb.CancelTaskRequest(task_id=f"h{i}"), timeout=10)


def test_batches_over_grpc_and_http_answer_per_task_in_order(orch):
    o = orch()
    assert o.submit("bt-taken", command="echo").success
    tasks = []
    for i in range(20):
        t = o.pb.SubmitTaskRequest(id=f"bt-{i}", payload={"command": "echo", "args": json.dumps([str(i)])})
        setattr(t, "class", "cpu_short")
        tasks.append(t)
    bad = o.pb.SubmitTaskRequest(id="bt bad", payload={"command": "echo"})
    other = o.pb.SubmitTaskRequest(id="bt-taken", payload={"command": "echo", "args": '["different"]'})
    resp = o.stub.SubmitTasks(o.pb.SubmitTasksRequest(tasks=tasks[:10] + [bad, other] + tasks[10:]), timeout=30)
    assert resp.accepted == 20
    assert [r.task_id for r in resp.results] == [f"bt-{i}" for i in range(10)] + ["bt bad", "bt-taken"] + \
        [f"bt-{i}" for i in range(10, 20)]
    assert [r.success for r in resp.results].count(False) == 2
    assert (resp.results[10].code, resp.results[11].code) == ("INVALID_ARGUMENT", "ALREADY_EXISTS")
    assert "task id may hold only" in resp.results[10].error
    assert o.wait_final("bt-19").result["stdout"] == "19\n"
    too_many = o.pb.SubmitTasksRequest(tasks=[o.pb.SubmitTaskRequest() for _ in range(10001)])
    with pytest.raises(grpc.RpcError) as e:
        o.stub.SubmitTasks(too_many, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "10000" in e.value.details()
    assert o.stub.SubmitTasks(o.pb.SubmitTasksRequest(), timeout=10).accepted == 0

    code, body = o.http("POST", "/queue/submit", [
        {"id": "bh-1", "payload": {"command": "echo", "args": ["http", "batch"]}},
        {"id": 7},
        {"id": "bh-2", "class": "nope"},
        "not a task",
        {"payload": {"command": "echo"}}])
    assert code == 200 and body["ok"] is False and body["accepted"] == 2
    r = body["results"]
    assert r[0] == {"ok": True, "id": "bh-1"}
    assert r[1]["ok"] is False and r[1]["status"] == 400 and "'id' must be a string" in r[1]["error"]
    assert r[2]["ok"] is False and r[2]["status"] == 400 and r[2]["id"] == "bh-2"
    assert r[3]["ok"] is False and "JSON object" in r[3]["error"]
    assert r[4]["ok"] is True and r[4]["id"].startswith("task-")
    assert o.wait_final("bh-1").result["stdout"] == "http batch\n"
    code, body = o.http("POST", "/queue/submit", [{"payload": {"command": "echo"}}] * 10001)
    assert code in (400, 413)
    code, body = o.http("POST", "/queue/submit", b"42")
    assert code == 400 and "array" in body["error"]


BACKLOG_YAML = """
tasks:
  queue_in_memory: 4
  classes:
    slot:
      limiter: {kind: fixed, initial: 1, max: 1}
      retry: {max_attempts: 3, initial_interval_ms: 50}
"""


def test_a_backlog_beyond_queue_in_memory_waits_in_the_store_survives_kill_9_and_runs_once(orch):
    o = orch(BACKLOG_YAML)
    assert o.submit("bl-blocker", cls="slot", command="nap", args='["60"]').success
    eventually(lambda: o.status("bl-blocker").status == "running", 10, what="the blocker runs")
    tasks = []
    for i in range(300):
        t = o.pb.SubmitTaskRequest(id=f"bl-{i}", payload={"command": "echo", "args": json.dumps([str(i)])},
                                   priority=1 if i % 10 == 0 else 0)
        setattr(t, "class", "slot")
        tasks.append(t)
    assert o.stub.SubmitTasks(o.pb.SubmitTasksRequest(tasks=tasks), timeout=30).accepted == 300
    slot = o.http("GET", "/queue/status")[1]["classes"]["slot"]
    assert slot["queued"] == 300
    assert slot["queued_in_store"] >= 300 - 4, "only the head of the backlog stays in memory"
    # A task that waits only in the store reads, resubmits and cancels as a queued one.
    assert o.status("bl-253").status == "pending"
    assert o.submit("bl-253", cls="slot", command="echo", args='["253"]').success
    with pytest.raises(grpc.RpcError) as e:
        o.submit("bl-253", cls="slot", command="echo", args='["other"]')
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert o.stub.CancelTask(o.pb.CancelTaskRequest(task_id="bl-251"), timeout=10).success
    assert o.status("bl-251").status == "cancelled"

    o.daemon.restart(kill_signal=signal.SIGKILL)
    o.reconnect()
    status = o.http("GET", "/queue/status")[1]
    # The blocker's retry waits 50 ms, so a few of the backlog may already have run.
    assert status["pending"] + status["completed"] == 300, "the blocker and 299 queued tasks are all still there"
    assert status["classes"]["slot"]["queued_in_store"] >= 250
    eventually(lambda: o.status("bl-blocker").status == "running", 10, what="the interrupted blocker runs again")
    assert o.stub.CancelTask(o.pb.CancelTaskRequest(task_id="bl-blocker"), timeout=10).success
    for i in range(300):
        if i == 251:
            continue
        t = o.wait_final(f"bl-{i}", timeout=60)
        assert t.status == "completed" and t.result["stdout"] == f"{i}\n"
        assert t.task.attempts == 1, f"bl-{i} ran once"
    assert o.status("bl-251").status == "cancelled"
    # Priority first, then submission order: start times never go back along that order
    # (one slot, so each task starts after the previous one; ties within a ms allowed).
    expected = [i for i in range(300) if i % 10 == 0] + [i for i in range(300) if i % 10 and i != 251]
    times = [o.status(f"bl-{i}").task.started_at_ms for i in expected]
    assert times == sorted(times)
    assert times[0] > 0
