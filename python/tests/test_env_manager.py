"""env-manager against the real Docker Engine: the lifecycle of the local nine-service
stack, failures, restarts, adoption, task containers, logs, pulls, Docker outages."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest

from conftest import Daemon
from envstack import (DOCKER, ROOT, EnvManager, PrivateDocker, containers, docker, eventually, inspect,
                      local_stack, remove_project, write_stack)

@pytest.fixture
def em(stubs):
    managers = []

    def make(changes=None, extra_yaml="", health_timeout=30):
        m = EnvManager(stubs, changes, extra_yaml, health_timeout)
        managers.append(m)
        return m

    yield make
    for m in managers:
        m.close()


def final(updates):
    assert updates and updates[-1].service_name == "", "the stream ends with a summary update"
    return updates[-1]


def test_full_start_then_stop_in_reverse_dependency_order(em):
    m = em()
    updates = m.start()
    summary = final(updates)
    assert summary.status == "completed", summary.message
    assert summary.message.startswith("9/9 services up")
    # Progress was streamed as it happened: each service went through these steps.
    steps = {(u.service_name, u.status) for u in updates}
    for svc in m.doc["services"]:
        assert (svc, "creating") in steps and (svc, "starting") in steps
        assert (svc, "healthy") in steps
    status = m.status()
    assert set(status) == set(m.doc["services"])
    redis = status["redis"]
    assert redis.status == "running" and redis.health_checks["state"] == "healthy"
    assert redis.ports == [m.port("redis")]
    assert redis.started_at > time.time() - 120
    assert redis.health_checks["kind"] == "redis"
    assert redis.resource_usage.memory_bytes > 0
    # Containers are labelled, on the project's network, published on loopback only.
    info = inspect(redis.container_id)
    assert info["Config"]["Labels"]["dev.dspy-agent.service"] == "redis"
    assert m.project in info["NetworkSettings"]["Networks"]
    assert info["HostConfig"]["PortBindings"]["6379/tcp"][0]["HostIp"] == "127.0.0.1"
    # A dependent waited for its dependency's health before starting.
    def started(svc):
        return inspect(status[svc].container_id)["State"]["StartedAt"]
    assert started("redis") < started("infermesh-node-a") < started("infermesh-router")
    assert started("zookeeper") < started("kafka")

    resp = m.stub.StopServices(m.pb.StopServicesRequest(timeout_seconds=1), timeout=120)
    assert resp.success, dict(resp.service_results)
    assert set(resp.service_results) == set(m.doc["services"])
    finished = {svc: inspect(status[svc].container_id)["State"]["FinishedAt"] for svc in status}
    assert all(not inspect(status[s].container_id)["State"]["Running"] for s in status)
    assert finished["infermesh-router"] <= finished["infermesh-node-a"] <= finished["redis"]
    assert finished["kafka"] <= finished["zookeeper"]
    assert all(v.status == "stopped" for v in m.status().values())


def test_starting_one_service_pulls_in_its_dependencies_only(em):
    m = em()
    summary = final(m.start(["infermesh-router"]))
    assert summary.status == "completed", summary.message
    status = m.status()
    for svc in ("redis", "infermesh-node-a", "infermesh-node-b", "infermesh-router"):
        assert status[svc].status == "running"
    for svc in ("kafka", "zookeeper", "ollama", "redb", "prometheus"):
        assert status[svc].container_id == ""
    with urllib.request.urlopen(f"http://127.0.0.1:{m.port('infermesh-router')}/health", timeout=5) as r:
        assert r.status == 200


def test_a_failing_required_service_blocks_its_dependents_and_not_the_rest(em):
    m = em({"redis": {"command": ["/usr/bin/redis-server", "--no-such-option"]}})
    updates = m.start()
    summary = final(updates)
    assert summary.status == "failed"
    assert "redis" in summary.message
    status = m.status()
    assert status["redis"].status == "failed"
    assert "exited with code" in status["redis"].health_checks["state_message"]
    for svc in ("infermesh-node-a", "infermesh-node-b", "infermesh-router"):
        assert status[svc].status == "failed" and status[svc].health_checks["state"] == "blocked"
        assert "redis" in status[svc].health_checks["state_message"] or "infermesh" in status[svc].health_checks["state_message"]
        assert status[svc].container_id == ""
    for svc in ("redb", "ollama", "zookeeper", "kafka", "prometheus"):
        assert status[svc].status == "running"
    health = json.loads(urllib.request.urlopen(f"http://{m.daemon.http_addr}/health", timeout=5).read())
    # The old body: env-manager itself is fine ("healthy"); our state word is "degraded".
    assert health["status"] == "healthy" and health["health"] == "degraded"
    assert health["service"] == "env-manager" and abs(health["timestamp"] - time.time()) < 60
    assert "redis" in health["components"]["required_services_down"]


def test_a_killed_container_is_noticed_and_restarted(em):
    m = em()
    assert final(m.start(["redb"])).status == "completed"
    before = m.status(["redb"])["redb"]
    docker("kill", before.container_id)
    def restarted():
        s = m.status(["redb"])["redb"]
        return s if s.status == "running" and s.started_at >= before.started_at and int(s.health_checks["restarts"]) >= 1 else None
    after = eventually(restarted, timeout=30, what="redb restarted and healthy")
    assert after.container_id == before.container_id  # restarted, not duplicated
    assert len(containers(m.project)) == 1
    metrics = urllib.request.urlopen(f"http://{m.daemon.http_addr}/metrics", timeout=5).read().decode()
    assert 'env_manager_service_restarts_total{reason="exited",service_name="redb"}' in metrics


def test_a_crash_loop_stops_being_restarted(em):
    m = em({"prometheus": {"environment": {"FAIL_MODE": "crash_after", "START_DELAY": "0", "PORT": "9090",
                                           "HEALTH_PATH": "/-/healthy"},
                           "restart": {"policy": "on-failure", "backoff_initial": "100ms", "backoff_max": "400ms",
                                       "max_restarts": 3}}})
    assert final(m.start(["prometheus"])).status == "completed"
    s = eventually(lambda: (lambda v: v if v.health_checks["state"] == "crash_loop" else None)(m.status(["prometheus"])["prometheus"]),
                   timeout=60, what="crash loop detected")
    assert s.status == "failed"
    assert "gave up after 3 restarts" in s.health_checks["state_message"]
    assert s.health_checks["restarts"] == "3"


def test_env_manager_killed_with_sigkill_adopts_its_containers(em):
    m = em()
    assert final(m.start(["redis", "redb", "zookeeper", "kafka"])).status == "completed"
    ids = {k: v.container_id for k, v in m.status().items() if v.container_id}
    m.daemon.restart(signal.SIGKILL)
    adopted = eventually(lambda: (lambda s: s if all(s[k].status == "running" for k in ids) else None)(m.status()),
                         timeout=30, what="adopted services healthy")
    assert {k: adopted[k].container_id for k in ids} == ids
    assert final(m.start(["redis", "redb", "zookeeper", "kafka"])).status == "completed"
    assert sorted(containers(m.project)) == sorted(ids.values())  # no duplicates


def test_a_changed_definition_is_recreated(em):
    m = em()
    assert final(m.start(["redb"])).status == "completed"
    old = m.status(["redb"])["redb"].container_id
    m.doc["services"]["redb"]["environment"]["REDB_NAMESPACE"] = "changed"
    write_stack(m.dir, m.doc)
    m.daemon.restart()
    assert final(m.start(["redb"])).status == "completed"
    new = m.status(["redb"])["redb"].container_id
    assert new and new != old
    assert containers(m.project) == [new]
    env = inspect(new)["Config"]["Env"]
    assert "REDB_NAMESPACE=changed" in env


def test_execute_task_success_failure_timeout_and_isolation(em):
    m = em()
    pb = m.pb
    ok = m.stub.ExecuteTask(pb.ExecuteTaskRequest(task_id="t-ok", workload_class="cpu_short",
                                                  payload={"command": "greet", "env.WHO": "tests"}), timeout=60)
    assert ok.success, ok.error
    assert ok.result["exit_code"] == "0"
    assert ok.result["stdout_tail"] == "hello tests\n"
    assert ok.result["stderr_tail"] == "warn\n"
    assert ok.latency_ms > 0

    bad = m.stub.ExecuteTask(pb.ExecuteTaskRequest(task_id="t-bad", payload={"command": "fail"}), timeout=60)
    assert not bad.success
    assert bad.result["exit_code"] == "4"
    assert "exited with code 4" in bad.error
    assert bad.result["stderr_tail"] == "bad\n"

    t0 = time.monotonic()
    slow = m.stub.ExecuteTask(pb.ExecuteTaskRequest(task_id="t-slow", timeout_seconds=1,
                                                    payload={"payload_json": json.dumps({"command": "nap", "args": ["30"]})}),
                              timeout=60)
    assert not slow.success
    assert "timed out after 1s" in slow.error
    assert time.monotonic() - t0 < 15

    isolated = m.stub.ExecuteTask(pb.ExecuteTaskRequest(task_id="t-net", payload={"command": "net"}), timeout=60)
    assert isolated.result["stdout_tail"].strip() == "0", "task containers get no network interface but lo"

    # Every task container was removed afterwards.
    left = docker("ps", "-a", "-q", "--filter", "label=dev.dspy-agent.task-id")
    assert left == ""

    for payload, cls, why in (({"command": "rm-rf"}, "cpu_short", "not allowed"),
                              ({}, "cpu_short", "needs \"command\""),
                              ({"command": "greet", "args": "[\"x\"]"}, "cpu_short", "takes no args"),
                              ({"command": "greet"}, "quantum", "unknown workload class"),
                              ({"payload_json": "{not json"}, "cpu_short", "payload_json")):
        with pytest.raises(grpc.RpcError) as err:
            m.stub.ExecuteTask(pb.ExecuteTaskRequest(task_id="t-x", workload_class=cls, payload=payload), timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert why in err.value.details()


def test_resource_availability_reports_real_hardware_and_class_capacity(em):
    m = em()
    r = m.stub.GetResourceAvailability(m.pb.GetResourceAvailabilityRequest(workload_class="cpu_short"), timeout=10)
    assert r.capacity == 2 and r.in_use == 0 and r.available
    assert r.hardware.cpu_cores == os.cpu_count()
    with open("/proc/meminfo") as f:
        total_kb = int(f.readline().split()[1])
    assert abs(r.hardware.memory_bytes - total_kb * 1024) < 64 * 1024 * 1024
    with pytest.raises(grpc.RpcError) as err:
        m.stub.GetResourceAvailability(m.pb.GetResourceAvailabilityRequest(workload_class="quantum"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_stream_logs_follows_new_lines_and_ends_when_the_client_leaves(em):
    m = em()
    assert final(m.start(["redb"])).status == "completed"
    # busybox httpd logs one line per request with its status; health probes only get
    # 200, so the 404 for a missing path is the line this test waits for.
    marker = "response:404"
    stream = m.stub.StreamLogs(m.pb.StreamLogsRequest(service_name="redb", follow=True, tail=1), timeout=60)
    seen = []

    def read():
        try:
            for entry in stream:
                seen.append(entry)
                if marker in entry.message:
                    return
        except grpc.RpcError:
            pass  # cancelled at the end of the test

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.2)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{m.port('redb')}/missing-{uuid.uuid4().hex}", timeout=5)
    except Exception:
        pass  # 404 is fine: httpd logs the request either way
    reader.join(timeout=20)
    assert not reader.is_alive(), "the followed log line never arrived"
    hit = [e for e in seen if marker in e.message][0]
    assert hit.service_name == "redb" and hit.stream == "stderr"
    assert abs(hit.timestamp - time.time()) < 30
    assert hit.timestamp_ns // 1_000_000_000 == hit.timestamp
    stream.cancel()
    reader.join(timeout=5)

    tail = list(m.stub.StreamLogs(m.pb.StreamLogsRequest(service_name="redb", tail=2), timeout=10))
    assert len(tail) == 2
    for req, code in ((m.pb.StreamLogsRequest(), grpc.StatusCode.INVALID_ARGUMENT),
                      (m.pb.StreamLogsRequest(service_name="nope"), grpc.StatusCode.NOT_FOUND),
                      (m.pb.StreamLogsRequest(service_name="kafka"), grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(grpc.RpcError) as err:
            list(m.stub.StreamLogs(req, timeout=10))
        assert err.value.code() == code


def test_pull_images_streams_real_progress_from_the_local_registry(em):
    m = em()
    ref = f"127.0.0.1:5000/dspy-test/pull-{uuid.uuid4().hex[:8]}:v1"
    # A fresh image with a layer nobody has locally, so the pull really downloads.
    root = Path(tempfile.mkdtemp(prefix="dspy-pull-"))
    (root / "blob").write_bytes(os.urandom(2 * 1024 * 1024))
    tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
    subprocess.run([DOCKER, "import", "-", ref], input=tar, capture_output=True, check=True, timeout=60)
    docker("push", ref)
    docker("rmi", ref)
    updates = list(m.stub.PullImages(m.pb.PullImagesRequest(image_names=[ref]), timeout=120))
    assert updates[-1].image_name == ref and updates[-1].status == "complete", updates[-1].message
    statuses = {u.status for u in updates}
    assert "downloading" in statuses or "extracting" in statuses
    assert any(u.total > 0 for u in updates)
    docker("image", "inspect", ref)
    docker("rmi", ref)

    missing = list(m.stub.PullImages(m.pb.PullImagesRequest(image_names=["127.0.0.1:5000/dspy-test/missing:none"]),
                                     timeout=60))
    assert missing[-1].status == "error"
    assert missing[-1].message


def test_bad_arguments_are_rejected_and_change_nothing(em):
    m = em()
    with pytest.raises(grpc.RpcError) as err:
        m.start(["redis", "ghost"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        list(m.stub.StartServices(m.pb.StartServicesRequest(overrides={"a": "b"}), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        m.stub.RestartService(m.pb.RestartServiceRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        m.stub.StopServices(m.pb.StopServicesRequest(timeout_seconds=-5), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert containers(m.project) == []


def test_restart_service_reports_the_real_result(em):
    m = em()
    assert final(m.start(["redb"])).status == "completed"
    before = m.status(["redb"])["redb"].started_at
    time.sleep(1.1)  # started_at has one-second resolution
    r = m.stub.RestartService(m.pb.RestartServiceRequest(service_name="redb", timeout_seconds=1), timeout=60)
    assert r.success, r.message
    assert m.status(["redb"])["redb"].started_at > before


def test_stream_health_probes_at_the_interval_and_ends_when_the_client_leaves(em):
    m = em()
    assert final(m.start(["redis"])).status == "completed"
    stream = m.stub.StreamHealth(m.pb.StreamHealthRequest(service_names=["redis", "redb"], interval_seconds=1),
                                 timeout=30)
    got = []
    t0 = time.monotonic()
    for u in stream:
        got.append(u)
        if len(got) == 4:
            break
    stream.cancel()
    assert time.monotonic() - t0 >= 0.9, "the second round waited for the interval"
    redis = [u for u in got if u.service_name == "redis"]
    redb = [u for u in got if u.service_name == "redb"]
    assert all(u.healthy for u in redis) and "PONG" in redis[0].message
    assert all(not u.healthy for u in redb)


@pytest.fixture
def private_docker():
    d = PrivateDocker()
    yield d
    d.close()


def test_docker_restarted_under_a_running_env_manager(stubs, private_docker):
    # The engine that goes down is the test's own: the machine's Docker, and whatever a
    # person runs on it (the demo stack, say), is never stopped.
    machine_docker_before = docker("ps", "-q", "--no-trunc")
    m = EnvManager(stubs, docker_host=private_docker.host)
    try:
        assert final(m.start(["redb"])).status == "completed"
        assert private_docker.docker("ps", "-q", "--filter", f"label=dev.dspy-agent.project={m.project}")
        health_url = f"http://{m.daemon.http_addr}/health"
        private_docker.stop()
        try:
            def down():
                try:
                    urllib.request.urlopen(health_url, timeout=5)
                    return None
                except urllib.error.HTTPError as e:
                    return e.code == 503 and "unreachable" in json.loads(e.read())["components"]["docker"]
            eventually(down, timeout=30, what="/health reports Docker down")
            assert m.daemon.proc.poll() is None, "env-manager survived losing Docker"
        finally:
            private_docker.start()
        eventually(lambda: urllib.request.urlopen(health_url, timeout=5).status == 200,
                   timeout=60, what="/health reports Docker back")
        # The container stopped with the engine; the restart policy brings it back.
        eventually(lambda: m.status(["redb"])["redb"].status == "running", timeout=60, what="redb running again")
        assert docker("ps", "-q", "--no-trunc") == machine_docker_before, "the machine's Docker was touched"
    finally:
        m.close()


def test_exec_health_checks_run_inside_the_container(em):
    m = em({"prometheus": {"healthcheck": {"kind": "exec", "command": ["test", "-f", "/www/-/healthy"],
                                           "interval": "1s"}},
            "redb": {"environment": {"FAIL_MODE": "unhealthy", "START_DELAY": "0", "PORT": "8080",
                                     "HEALTH_PATH": "/health"},
                     "healthcheck": {"kind": "exec", "command": ["test", "-f", "/www/health"], "interval": "1s"}}},
           health_timeout=5)
    summary = final(m.start(["prometheus", "redb"]))
    status = m.status()
    assert status["prometheus"].status == "running"
    assert status["prometheus"].health_checks["kind"] == "exec"
    assert status["prometheus"].health_checks["message"].startswith("exec exit 0")
    assert status["redb"].status == "failed"
    assert "exec exit 1" in status["redb"].health_checks["state_message"]
    assert summary.status == "failed"
