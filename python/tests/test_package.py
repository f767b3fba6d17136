"""The dspy_agent_infra package against real daemons: every method end to end, the old
client's names and return shapes, streams that end as documented, typed errors (daemon
down within the deadline, bad arguments, unknown ids, deadlines), handles and
as_completed over 1,000 tasks, AgentInfra (also starting the system), the synchronous
wrapper, stubs that match proto/, and an install into fresh venvs."""

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import dspy_agent_infra as infra
from conftest import ROOT, Daemon, _free_port
from dspy_agent_infra import (AgentInfra, EnvManagerClient, InvalidArgument, NotFound, OrchestratorClient,
                              SyncAgentInfra, TaskFailed, TaskSpec, Unavailable, encode_payload)
from envstack import EnvManager
from test_orchestrator import COMMANDS_YAML, classes_yaml

FAST = """    fast:
      executor: noop
      limiter: {kind: fixed, initial: 64, max: 64}
"""


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def orch_daemon():
    d = Daemon("orchestrator", "orchestrator/orchestrator", COMMANDS_YAML + classes_yaml(FAST))
    d.wait_serving()
    yield d
    d.stop()


def test_the_stubs_were_generated_from_this_proto_folder():
    from dspy_agent_infra import _proto_hash

    h = hashlib.sha256()
    for name in ("env_manager/v1/env_manager.proto", "orchestrator/v1/orchestrator.proto"):
        h.update(name.encode() + b"\0" + (ROOT / "proto" / name).read_bytes() + b"\0")
    assert _proto_hash.PROTO_SHA256 == h.hexdigest(), \
        "proto/ changed after the package was built: reinstall it (pip install ./python)"
    assert (Path(infra.__file__).parent / "py.typed").exists()
    assert not list((ROOT / "python/src").rglob("*_pb2*.py")), "generated stubs must not be in the source tree"


def test_payload_values_that_are_not_strings_go_as_json():
    assert encode_payload({"command": "echo", "args": ["a", "b"], "n": 3, "ok": True, "none": None}) == {
        "command": "echo", "payload_json": '{"args":["a","b"],"n":3,"ok":true,"none":null}'}
    assert encode_payload({"payload_json": '{"x": 1}', "y": [2]}) == {"payload_json": '{"x":1,"y":[2]}'}
    assert encode_payload(None) == {}
    with pytest.raises(TypeError):
        encode_payload({"payload_json": "[1]"})


def test_the_old_methods_keep_their_names_and_shapes(orch_daemon):
    async def go():
        async with infra.orchestrator_client(orch_daemon.grpc_addr) as c:
            h = await c.health_check()
            assert h["healthy"] is True and h["version"] and h["services"]["orchestrator"] == "healthy"
            r = await c.submit_task("old-1", "cpu_short", {"command": "echo", "args": ["from", "python"]})
            assert r == {"success": True, "task_id": "old-1", "error": ""}
            seen = [m async for m in c.stream_task_results(["old-1"])]  # ends: every named task finished
            final = seen[-1]
            assert set(final) >= {"task_id", "status", "result", "error", "duration_ms", "completed_at"}
            assert final["status"] == "completed" and final["result"]["stdout"] == "from python\n"
            st = await c.get_task_status("old-1")
            assert st["status"] == "completed" and st["result"] == st["result_payload"] == final["result"]
            assert st["error"] == "" and st["task"]["payload"]["payload_json"] == '{"args":["from","python"]}'
            m = await c.get_metrics(["tasks_running", "gpu_wait_seconds"])
            assert set(m) == {"tasks_running", "gpu_wait_seconds"} and all(isinstance(v, float) for v in m.values())
            assert "tasks_completed" in await c.get_metrics()
            events = c.stream_events(["task_*"], since_timestamp=int(time.time()) - 60)
            got = []
            async for e in events:
                got.append(e)
                if e["resource_id"] == "old-1" and e["event_type"] == "task_completed":
                    break
            await events.aclose()
            assert {"event_type", "resource_id", "data", "timestamp"} <= set(got[-1])
            assert ("task_submitted", "old-1") in {(e["event_type"], e["resource_id"]) for e in got}
            bad = await c.submit_task("bad id!", "cpu_short", {"command": "echo"})
            assert bad["success"] is False and "id" in bad["error"]
            refused = await c.submit_task("old-2", "cpu_short", {"command": "rm"})
            assert refused["success"] is False and "rm" in refused["error"]
    run(go())


def test_handles_results_cancel_list_and_typed_errors(orch_daemon):
    async def go():
        async with OrchestratorClient(orch_daemon.grpc_addr, timeout=10) as c:
            h = await c.submit("cpu_short", {"command": "echo", "args": ["handled"]})
            res = await h.result(timeout=30)
            assert res.ok and res.result["stdout"] == "handled\n" and h.done()
            failing = await c.submit("cpu_short", {"command": "fail"})
            with pytest.raises(TaskFailed) as e:
                await failing.result(timeout=30)
            assert e.value.result.status == "failed" and "exit code 3" in e.value.result.error
            assert (await failing.result(raise_on_failure=False)).status == "failed"

            # Cancelling the coroutine that waits cancels nothing on the server...
            long = await c.submit("cpu_long", {"command": "nap", "args": ["30"]})
            waiter = asyncio.ensure_future(long.result())
            await asyncio.sleep(0.3)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            with pytest.raises(asyncio.TimeoutError):
                await long.result(timeout=0.5)
            assert (await long.status())["status"] in ("pending", "running")
            # ...cancel() does.
            assert (await long.cancel())["success"] is True
            with pytest.raises(TaskFailed):
                await long.result(timeout=30)
            assert long._final.status == "cancelled"

            listed = await c.list_tasks(status="completed", task_class="cpu_short", limit=1000)
            assert h.task_id in [t["task_id"] for t in listed["items"]]
            assert all(t["status"] == "completed" for t in listed["items"])

            with pytest.raises(NotFound) as nf:
                await c.get_task_status("no-such-task")
            assert nf.value.daemon == "orchestrator" and nf.value.call == "GetTaskStatus" and nf.value.hint
            with pytest.raises(InvalidArgument) as bad:
                await c.submit("cpu_short", {"command": "rm"})
            assert "SubmitTask" in str(bad.value)
            with pytest.raises(InvalidArgument):
                await c.list_tasks(limit=5000)
            # A stream with a deadline: live events only, none come, the deadline ends it.
            t0 = time.monotonic()
            with pytest.raises(infra.DeadlineExceeded):
                async for _ in c.stream_events(["workflow_reward"], timeout=0.5):
                    pass
            assert 0.4 < time.monotonic() - t0 < 5
        # A peer that accepts connections and never speaks gRPC: the unary call's own
        # deadline ends it.
        import socket
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(16)
            stuck = OrchestratorClient(f"127.0.0.1:{mute.getsockname()[1]}", timeout=1)
            t0 = time.monotonic()
            with pytest.raises(infra.DeadlineExceeded) as d:
                await stuck.get_metrics()
            assert 0.9 < time.monotonic() - t0 < 5
            assert "deadline" in str(d.value).lower() and d.value.call == "GetMetrics"
            await stuck.close()
    run(go())


def test_a_daemon_that_is_down_is_a_clear_error_within_the_deadline():
    address = f"127.0.0.1:{_free_port()}"

    async def go():
        c = OrchestratorClient(address, timeout=2)
        t0 = time.monotonic()
        with pytest.raises(Unavailable) as e:
            await c.connect(timeout=1)
        assert time.monotonic() - t0 < 3
        assert address in str(e.value) and "dspy-agent start" in str(e.value)
        t0 = time.monotonic()
        with pytest.raises(Unavailable) as e:
            await c.submit_task("x", "cpu_short", {"command": "echo"})
        assert time.monotonic() - t0 < 5, "retries stay within the call's deadline"
        assert e.value.daemon == "orchestrator" and e.value.call == "SubmitTask"
        h = await c.health_check()
        assert h["healthy"] is False and address in h["error"]
        await c.close()
        em = EnvManagerClient(address, timeout=2)
        with pytest.raises(Unavailable) as e:
            await em.get_services_status()
        assert e.value.daemon == "env-manager"
        await em.close()
    run(go())


def test_a_thousand_handles_batch_submit_and_as_completed(orch_daemon):
    async def go():
        async with OrchestratorClient(orch_daemon.grpc_addr) as c:
            specs = [TaskSpec("fast", {"i": i}) for i in range(1000)]
            handles = await c.submit_many(specs)
            assert len({h.task_id for h in handles}) == 1000
            done = [h async for h in c.as_completed(handles, timeout=120)]
            assert sorted(h.task_id for h in done) == sorted(h.task_id for h in handles)
            assert all(h.done() for h in done)
            assert all([(await h.result()).ok for h in done])
            # result() of many handles at once, each on its own stream.
            more = await c.submit_many([{"task_class": "fast"} for _ in range(200)])
            results = await asyncio.gather(*(h.result(timeout=60) for h in more))
            assert all(r.ok for r in results)
            # Already finished handles come back at once.
            assert len([h async for h in c.as_completed(more)]) == 200
            # A refused task in a batch: the others are stored, the error says which.
            mixed = [TaskSpec("fast", task_id="mx-1"), TaskSpec("cpu_short", {"command": "rm"}, task_id="mx-2"),
                     TaskSpec("fast", task_id="mx-3")]
            with pytest.raises(infra.SubmitRefused) as e:
                await c.submit_many(mixed, batch_size=2)
            assert [h.task_id for h in e.value.accepted] == ["mx-1", "mx-3"]
            assert [(i, tid) for i, tid, _ in e.value.refused] == [(1, "mx-2")]
            assert "INVALID_ARGUMENT" in e.value.refused[0][2] and "#1 (mx-2)" in str(e.value)
            assert all([(await h.result(timeout=30)).ok for h in e.value.accepted])
    run(go())


def test_workflows_end_to_end(orch_daemon):
    spec = {"name": "py", "nodes": [
        {"id": "a", "type": "task", "task": {"class": "cpu_short", "payload": {"command": "echo", "args": '["a"]'}}},
        {"id": "b", "type": "task", "task": {"class": "cpu_short", "payload": {"command": "echo", "args": '["b"]'}}}],
        "edges": [{"source": "a", "target": "b"}]}
    slow = {"name": "slow", "nodes": [
        {"id": "z", "type": "task", "task": {"class": "cpu_long", "payload": {"command": "nap", "args": '["30"]'}}}]}

    async def go():
        async with OrchestratorClient(orch_daemon.grpc_addr) as c:
            created = await c.create_workflow(spec)
            assert created["success"] and created["workflow_id"]
            started = await c.start_workflow_run(created["workflow_id"], {"who": "py", "n": 2}, idempotency_key="k1")
            assert started["success"] and started["run_id"]
            again = await c.start_workflow_run(created["workflow_id"], idempotency_key="k1")
            assert again["run_id"] == started["run_id"]
            updates = [u async for u in c.stream_workflow_status(started["run_id"])]  # ends with the run
            assert updates[-1]["status"] == "completed" and updates[-1]["steps_completed"] == 2
            assert updates[-1]["output"]["b.stdout"] == "b\n"
            record = await c.get_workflow_run(started["run_id"])
            assert record["status"] == "succeeded" and [s["node_id"] for s in record["steps"]] == ["a", "b"]
            assert record["input"] == {"who": "py", "n": "2"}

            long = await c.create_workflow(json.dumps(slow))
            run_id = (await c.start_workflow_run(long["workflow_id"]))["run_id"]
            cancelled = await c.cancel_workflow_run(run_id)
            assert cancelled["success"] and cancelled["status"] in ("running", "cancelled")
            ended = [u async for u in c.stream_workflow_status(run_id)]
            assert ended[-1]["status"] == "cancelled"
            assert (await c.get_workflow_run(run_id))["status"] == "cancelled"
            with pytest.raises(InvalidArgument):
                await c.create_workflow({"name": "bad", "nodes": [{"id": "x", "type": "nope"}]})
            with pytest.raises(NotFound):
                await c.get_workflow_run("no-such-run")
            with pytest.raises(NotFound):
                await c.start_workflow_run("no-such-workflow")
    run(go())


def test_env_manager_client_end_to_end(stubs):
    m = EnvManager(stubs)
    try:
        async def go():
            async with EnvManagerClient(m.daemon.grpc_addr) as em:
                updates = [u async for u in em.start_services(["redis"])]
                assert updates[-1]["service_name"] == "" and updates[-1]["status"] == "completed"
                status = await em.get_services_status()
                assert status["redis"]["status"] == "running" and status["redis"]["required"] is True
                assert status["redis"]["ports"] == [m.port("redis")]
                logs = [e async for e in em.stream_logs("redis", tail=5)]  # ends without follow
                assert 0 < len(logs) <= 5 and all(e["stream"] in ("stdout", "stderr") for e in logs)
                health = em.stream_health(["redis"], interval_seconds=1)
                first = await health.__anext__()
                await health.aclose()
                assert first["service_name"] == "redis" and first["healthy"] is True
                avail = await em.get_resource_availability("cpu_short")
                assert avail["capacity"] == 2 and avail["hardware"]["cpu_cores"] >= 1
                out = await em.execute_task("py-greet", "cpu_short", {"command": "greet", "env.WHO": "python"})
                assert out["success"] and "hello python" in out["result"]["stdout_tail"], out
                pulled = [p async for p in em.pull_images(["127.0.0.1:5000/dspy-test/missing:none"])]
                assert pulled[-1]["status"] == "error" and pulled[-1]["message"]
                restarted = await em.restart_service("redis")
                assert restarted["success"] is True
                stopped = await em.stop_services(["redis"])
                assert stopped["success"] and "redis" in stopped["service_results"]
                with pytest.raises(NotFound) as nf:
                    await em.get_services_status(["no-such-service"])
                assert nf.value.daemon == "env-manager" and "no-such-service" in str(nf.value)
        run(go())
    finally:
        m.close()


def test_agent_infra_starts_the_system_and_the_sync_wrapper_works(tmp_path):
    from test_cli_lifecycle import daemon_env

    env, ports = daemon_env(tmp_path)
    (tmp_path / "orch.yaml").write_text((tmp_path / "orch.yaml").read_text() + COMMANDS_YAML + classes_yaml(FAST))
    cli = str(Path(os.environ["DSPY_BUILD_DIR"]) / "cli/dspy-agent")
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DSPY_AGENT_", "ENV_MANAGER_CONFIG",
                                                                     "ORCHESTRATOR_CONFIG"))})
    os.environ["ORCHESTRATOR_ADDR"] = f"127.0.0.1:{ports[2]}"
    os.environ["ENV_MANAGER_ADDR"] = f"127.0.0.1:{ports[0]}"
    try:
        async def go():
            async with AgentInfra.start(start_system=True, services=[], cli=cli, health_timeout=30) as ai:
                assert "ready on" in ai.start_output
                h = await ai.orchestrator.submit("cpu_short", {"command": "echo", "args": ["infra"]})
                assert (await h.result(timeout=30)).result["stdout"] == "infra\n"
                assert isinstance(await ai.env_manager.get_services_status(), dict)
        run(go())

        with SyncAgentInfra() as s:  # addresses from the environment, no event loop of the caller's
            h = s.orchestrator.submit("cpu_short", {"command": "echo", "args": ["sync"]})
            assert h.result(timeout=30).result["stdout"] == "sync\n"
            hs = s.orchestrator.submit_many([TaskSpec("fast") for _ in range(20)])
            assert len(list(s.as_completed(hs, timeout=60))) == 20
            assert [r["status"] for r in s.orchestrator.stream_task_results([h.task_id])] == ["completed"]
            assert s.orchestrator.health_check()["healthy"] is True

        async def inside_a_running_loop():  # as in a notebook
            with SyncAgentInfra() as s:
                return s.orchestrator.get_metrics(["tasks_completed"])
        assert run(inside_a_running_loop())["tasks_completed"] >= 22

        async def unreachable():
            async with AgentInfra.start(f"127.0.0.1:{_free_port()}", connect_timeout=1):
                pass
        with pytest.raises(Unavailable):
            run(unreachable())
    finally:
        subprocess.run([cli, "stop", "--keep-services", "--force"], env=env, capture_output=True, timeout=120)
        os.environ.clear()
        os.environ.update(saved)


def _fresh_venv_install(python, tmp_path):
    """A clean checkout's python/ and proto/ (nothing generated), a new venv, pip install."""
    src = tmp_path / "checkout"
    shutil.copytree(ROOT / "proto", src / "proto")
    shutil.copytree(ROOT / "python", src / "python",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests", ".pytest_cache"))
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    r = subprocess.run([str(venv / "bin/pip"), "install", "-q", str(src / "python")], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return venv / "bin/python"


# Debian's python3, and the newest other CPython on the machine (pyenv's, on ours).
PYTHONS = ["/usr/bin/python3"] + sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.1[2-9]*/bin/python3"))[-1:]


@pytest.mark.parametrize("python", PYTHONS)
def test_pip_install_into_a_fresh_venv(python, tmp_path, orch_daemon):
    venv_python = _fresh_venv_install(python, tmp_path)
    probe = ("import asyncio, sys, dspy_agent_infra as d\n"
             "async def main():\n"
             "    async with d.OrchestratorClient(sys.argv[1]) as c:\n"
             "        print((await c.health_check())['healthy'])\n"
             "asyncio.run(main())\n")
    r = subprocess.run([str(venv_python), "-c", probe, orch_daemon.grpc_addr], capture_output=True, text=True,
                       timeout=120, cwd=tempfile.gettempdir())
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stdout + r.stderr


def test_tls_with_client_certificates_and_a_token(tmp_path):
    from dspy_agent_infra import TLS, Unauthenticated

    subprocess.run(["bash", str(ROOT / "tests/support/make-certs.sh"), str(tmp_path)], check=True, timeout=60)
    d = Daemon("orchestrator", "orchestrator/orchestrator",
               f"tls:\n  cert_file: {tmp_path}/server.pem\n  key_file: {tmp_path}/server.key\n"
               f"  client_ca_file: {tmp_path}/ca.pem\nauth:\n  token: s3cret\n")
    tls = TLS.from_files(ca=str(tmp_path / "ca.pem"), cert=str(tmp_path / "client.pem"),
                         key=str(tmp_path / "client.key"))
    try:
        async def go():
            async with OrchestratorClient(d.grpc_addr, tls=tls, token="s3cret") as c:
                assert (await c.health_check())["healthy"] is True
                assert (await c.submit_task("tls-1", "cpu_short", {"command": "echo"}))["success"] is True
            async with OrchestratorClient(d.grpc_addr, tls=tls, token="wrong") as c:
                with pytest.raises(Unauthenticated) as e:
                    await c.get_metrics()
                assert "token" in str(e.value)
            plain = OrchestratorClient(d.grpc_addr, timeout=2)  # no TLS: the handshake never succeeds
            with pytest.raises(Unavailable):
                await plain.get_metrics()
            await plain.close()
        run(go())
    finally:
        d.stop()
