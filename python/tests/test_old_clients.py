"""The old system's clients, call by call, against our daemons (WIRE-CONTRACT.md
sections 3 and 8): what the old async Python client, the old Go CLI and plain HTTP
callers did, and what they expect back. Stubs are built from proto/ as those clients'
were; a real HTTP runner stands in for the old env-runner."""

import contextlib
import http.client
import http.server
import json
import statistics
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import Daemon
from contract import SERVICE_STATUS_WORDS, TASK_STATUS_WORDS
from envstack import EnvManager, eventually, private_stack_yaml

OLD_METRIC_KEYS = ("tasks_tracked_total", "tasks_pending", "tasks_running", "tasks_completed", "gpu_wait_seconds",
                   "env_error_rate", "runner_gpu_total", "workflows_total")


class OldRunner:
    """The old env-runner's API: POST /tasks/execute {"id","class","payload"} ->
    {"id","embeddings":[[...]],"latency_ms","metadata"}. `delay` slows every answer."""

    def __init__(self, delay=0.0):
        self.seen = []
        self.delay = delay
        runner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                runner.seen.append((self.path, body))
                time.sleep(runner.delay)
                answer = {"id": body["id"], "embeddings": [[0.25, 0.5]], "latency_ms": 1.5,
                          "metadata": {"class": body["class"]}}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class DefaultOrchestrator:
    """An orchestrator with no task config at all (the built-in classes), as an old
    deployment would run it, pointed at a runner through ENV_RUNNER_URL."""

    def __init__(self, stubs, runner_url, extra_yaml=""):
        self.daemon = Daemon("orchestrator", "orchestrator/orchestrator", extra_yaml,
                             env={"ENV_RUNNER_URL": runner_url})
        self.daemon.wait_serving()
        self.pb = stubs.orch_pb2
        self.channel = self.daemon.channel()
        self.stub = stubs.orch_grpc.OrchestratorServiceStub(self.channel)

    def submit(self, task_id, cls, payload):
        # The old client: the field `class` is a Python keyword, so it is set by name.
        req = self.pb.SubmitTaskRequest(id=task_id, payload=payload)
        setattr(req, "class", cls)
        return self.stub.SubmitTask(req, timeout=10)

    def status(self, task_id):
        return self.stub.GetTaskStatus(self.pb.GetTaskStatusRequest(task_id=task_id), timeout=10)

    def close(self):
        self.channel.close()
        self.daemon.stop()


@contextlib.contextmanager
def orchestrator_with_slow_runner(stubs, delay):
    slow = OldRunner(delay=delay)
    o = DefaultOrchestrator(stubs, slow.url)
    try:
        yield o
    finally:
        o.close()
        slow.close()


@pytest.fixture
def runner():
    r = OldRunner()
    yield r
    r.close()


@pytest.fixture
def default_orch(stubs, runner):
    o = DefaultOrchestrator(stubs, runner.url)
    yield o
    o.close()


def http_json(addr, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{addr}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


# ------------------------------------------------------------------ 1. service status words

def test_the_old_cli_counts_started_services_as_up(stubs):
    m = EnvManager(stubs)
    try:
        before = m.status()
        assert all(s.status == "stopped" for s in before.values())
        updates = list(m.stub.StartServices(m.pb.StartServicesRequest(service_names=["redis", "redb"]), timeout=120))
        # The start stream keeps its own progress words.
        assert {u.status for u in updates if u.service_name == "redis"} >= {"starting", "healthy"}
        status = m.status()
        # The old CLI: a service is up when, and only when, status == "running".
        up = sorted(name for name, s in status.items() if s.status == "running")
        assert up == ["redb", "redis"]
        assert status["redis"].health_checks["state"] == "healthy"
        assert all(s.status in SERVICE_STATUS_WORDS for s in status.values())
    finally:
        m.close()


# ------------------------------------------------------------------ 2. GetMetrics keys

def test_get_metrics_carries_the_old_keys_with_meaning(stubs):
    with orchestrator_with_slow_runner(stubs, delay=0.6) as o:
        all_metrics = o.stub.GetMetrics(o.pb.GetMetricsRequest(), timeout=10).metrics
        for key in OLD_METRIC_KEYS:
            assert key in all_metrics, key
        # Agent code asks for just these two.
        picked = o.stub.GetMetrics(o.pb.GetMetricsRequest(metric_names=["tasks_running", "gpu_wait_seconds"]),
                                   timeout=10).metrics
        assert set(picked) == {"tasks_running", "gpu_wait_seconds"}
        # Three gpu tasks on the built-in gpu class (one at a time): the second and third
        # wait for the first, so the mean gpu wait becomes positive; one runs at a time.
        for i in range(3):
            o.submit(f"g{i}", "gpu", {"data": str(i)})
        eventually(lambda: o.stub.GetMetrics(o.pb.GetMetricsRequest(metric_names=["tasks_running"]),
                                             timeout=10).metrics["tasks_running"] == 1, 10, what="one gpu task running")
        eventually(lambda: all(o.status(f"g{i}").status == "completed" for i in range(3)), 20, what="gpu tasks done")
        m = o.stub.GetMetrics(o.pb.GetMetricsRequest(), timeout=10).metrics
        assert m["tasks_completed"] == 3 and m["tasks_tracked_total"] == 3
        assert m["tasks_running"] == 0 and m["tasks_pending"] == 0
        assert m["gpu_wait_seconds"] >= 0.3, m["gpu_wait_seconds"]  # (0 + ~0.6 + ~1.2) / 3
        assert m["env_error_rate"] == 0
        assert m["runner_gpu_total"] == 0  # env-manager is not used by the built-in classes


# ------------------------------------------------------------------ 3. runner tasks by default

def test_default_classes_hand_any_payload_to_the_runner(default_orch, runner):
    o = default_orch
    assert o.submit("r1", "cpu_short", {"data": "value"}).success
    nested = {"payload_json": json.dumps({"gepa": {"population": 8, "mutations": ["swap", "drop"]}})}
    assert o.submit("r2", "cpu_long", nested).success
    # A class the config does not know runs on the runner under the default class.
    assert o.submit("r3", "rl_training", {"episodes": "3"}).success
    for tid in ("r1", "r2", "r3"):
        eventually(lambda: o.status(tid).status == "completed", 20, what=f"{tid} completed")
    done = o.status("r1")
    assert json.loads(done.result["embeddings"]) == [[0.25, 0.5]]
    assert done.result["latency_ms"] == "1.5"
    bodies = {body["id"]: body for path, body in runner.seen}
    assert all(path == "/tasks/execute" for path, _ in runner.seen)
    assert bodies["r1"]["class"] == "cpu_short" and bodies["r1"]["payload"] == {"data": "value"}
    assert json.loads(bodies["r2"]["payload"]["gepa"]) == {"population": 8, "mutations": ["swap", "drop"]}
    assert bodies["r3"]["class"] == "rl_training"
    assert getattr(o.status("r3").task, "class") == "rl_training"
    # Health names the runner.
    health = o.stub.Health(o.pb.HealthRequest(), timeout=10)
    assert health.services["runner"] == f"{runner.url}: reachable"


def test_a_runner_that_is_down_fails_the_attempt_clearly_and_shows_in_health(stubs):
    dead = OldRunner()
    url = dead.url
    dead.close()  # nothing listens there any more
    o = DefaultOrchestrator(stubs, url, "tasks:\n  classes:\n    cpu_short:\n      executor: http\n"
                                         "      retry: {max_attempts: 2, initial_interval_ms: 50}\n")
    try:
        o.submit("down1", "cpu_short", {"data": "x"})
        eventually(lambda: o.status("down1").status == "failed", 20, what="task failed")
        t = o.status("down1")
        assert t.task.attempts == 2, "a transport failure is retried by policy"
        assert "runner unreachable at " + url in t.error
        health = o.stub.Health(o.pb.HealthRequest(), timeout=10)
        assert "runner unreachable" in health.services["runner"]
        code, _, body = http_json(o.daemon.http_addr, "GET", "/health")
        assert code == 200 and body["status"] == "degraded"
    finally:
        o.close()


def test_python_repr_lists_are_refused_naming_payload_json(stubs, runner):
    o = DefaultOrchestrator(stubs, runner.url, "tasks:\n  classes:\n    cpu_short: {executor: process}\n"
                                                "executors:\n  process:\n    commands:\n"
                                                "      echo: {argv: [/bin/echo], allow_args: true}\n")
    try:
        # The old client sends str(['x', 'y']) for a list.
        with pytest.raises(grpc.RpcError) as err:
            o.submit("repr1", "cpu_short", {"command": "echo", "args": str(["x", "y"])})
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "payload_json" in err.value.details()
    finally:
        o.close()


# ------------------------------------------------------------------ 4. result streams

def test_result_streams_send_a_message_at_least_every_second_while_tasks_run(stubs):
    with orchestrator_with_slow_runner(stubs, delay=3.0) as o:
        o.submit("hb1", "cpu_short", {"data": "slow"})
        stream = o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(task_ids=["hb1"]), timeout=30)
        arrivals, messages = [], []
        for msg in stream:  # the old client: wait_for(stream.__anext__(), 1.0)
            arrivals.append(time.monotonic())
            messages.append(msg)
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        assert messages[-1].status == "completed"
        assert max(gaps) < 1.5, gaps
        assert len(messages) >= 3, "heartbeats re-sent the running task's state"
        assert all(m.status in TASK_STATUS_WORDS for m in messages)
        running = [m for m in messages if m.status == "running"]
        assert running and all(m.completed_at > 0 for m in running), "an unfinished task carries its last update"


def test_a_stream_may_name_a_task_before_it_is_submitted(default_orch):
    o = default_orch
    stream = o.stub.StreamTaskResults(o.pb.StreamTaskResultsRequest(task_ids=["later1"]), timeout=20)
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream))
    reader.start()
    time.sleep(0.3)  # the stream is open and waiting; nothing to report yet
    assert got == []
    assert o.submit("later1", "cpu_short", {"data": "v"}).success
    reader.join(20)
    assert not reader.is_alive(), "the stream ends once the named task finished"
    assert got[-1].task_id == "later1" and got[-1].status == "completed"


# ------------------------------------------------------------------ 5. HTTP bodies and codes

def test_env_manager_health_has_the_old_body_and_both_daemons_answer_405(stubs, default_orch):
    em = Daemon("env-manager", "env_manager/env-manager", private_stack_yaml())
    try:
        em.wait_serving()
        code, _, body = http_json(em.http_addr, "GET", "/health")
        assert code == 200
        assert body["status"] == "healthy" and body["service"] == "env-manager"
        assert isinstance(body["timestamp"], int) and abs(body["timestamp"] - time.time()) < 60
        for addr, path, allow in ((em.http_addr, "/health", "GET, HEAD"),
                                  (default_orch.daemon.http_addr, "/queue/submit", "POST"),
                                  (default_orch.daemon.http_addr, "/queue/status", "GET, HEAD")):
            method = "POST" if allow.startswith("GET") else "GET"
            code, headers, body = http_json(addr, method, path, {} if method == "POST" else None)
            assert code == 405, (addr, path, code)
            assert headers["Allow"] == allow
            assert "not allowed" in body["error"]
        code, _, _ = http_json(default_orch.daemon.http_addr, "GET", "/no/such/route")
        assert code == 404
    finally:
        em.stop()


def test_the_health_rpc_carries_the_old_keys(default_orch):
    services = default_orch.stub.Health(default_orch.pb.HealthRequest(), timeout=10).services
    assert services["orchestrator"] == "healthy"
    assert services["grpc_server"] == "serving"


# ------------------------------------------------------------------ 6. kept-alive HTTP

def test_kept_alive_http_requests_cost_no_nagle_delay(default_orch):
    host, port = default_orch.daemon.http_addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    took = []
    for i in range(20):
        t0 = time.perf_counter()
        conn.request("POST", "/queue/submit", body=json.dumps({"payload": {"data": str(i)}}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200, r.read()
        r.read()
        took.append(time.perf_counter() - t0)
    conn.close()
    # With Nagle against delayed ACKs every request after the first took 40-44 ms.
    assert statistics.median(took[1:]) < 0.02, took


def test_sixteen_kept_alive_clients_are_all_served(default_orch):
    host, port = default_orch.daemon.http_addr.split(":")
    # Every client is answered once while all sixteen hold their connections open (a
    # fixed pool of 8 connection threads never answers the ninth).
    all_answered_once = threading.Barrier(16, timeout=8)

    def client(n):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        for i in range(10):
            conn.request("GET", "/queue/status")
            r = conn.getresponse()
            assert r.status == 200
            r.read()
            if i == 0:
                all_answered_once.wait()
        conn.close()
        return n

    with ThreadPoolExecutor(16) as pool:
        assert sorted(pool.map(client, range(16))) == list(range(16))
