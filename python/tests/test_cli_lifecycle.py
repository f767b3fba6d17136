"""dspy-agent start / stop / restart without systemd: both daemons in the background with
PID and log files, health waited for, a second start finds them running, status then
names a stopped daemon and how to start it; a daemon that cannot start fails `start`
with its log named. The services part (StartServices with progress) is the same code
as `dspy-agent services start`, tested in test_orchestrator/test_env_manager."""

import json
import os
import subprocess
from pathlib import Path

from conftest import _free_port
from envstack import local_stack, write_stack


def daemon_env(tmp_path):
    """Configs on free ports, and the environment `dspy-agent start` reads them and its
    run and log folders from: (env, [em gRPC, em HTTP, orchestrator gRPC, orchestrator HTTP]).
    env-manager gets a private stack (its own project; nothing of it is started): with the
    built-in stack it would adopt the containers of a demo running on this machine's
    Docker (project dspy-agent). The stack's document is in env["DSPY_TEST_STACK"]."""
    ports = [_free_port() for _ in range(4)]
    doc = local_stack()
    stack = write_stack(tmp_path, doc)
    (tmp_path / "em.yaml").write_text(f"grpc:\n  address: 127.0.0.1:{ports[0]}\nhttp:\n  address: 127.0.0.1:{ports[1]}\n"
                                      f"services:\n  file: {stack}\n")
    (tmp_path / "orch.yaml").write_text(f"grpc:\n  address: 127.0.0.1:{ports[2]}\nhttp:\n  address: 127.0.0.1:{ports[3]}\n"
                                        f"store:\n  dir: {tmp_path / 'store'}\n")
    env = dict(os.environ, DSPY_AGENT_RUN_DIR=str(tmp_path / "run"), DSPY_AGENT_LOG_DIR=str(tmp_path / "log"),
               ENV_MANAGER_CONFIG=str(tmp_path / "em.yaml"), ORCHESTRATOR_CONFIG=str(tmp_path / "orch.yaml"),
               DSPY_TEST_STACK=json.dumps(doc))
    return env, ports


def test_start_stop_restart_without_systemd(tmp_path):
    cli = str(Path(os.environ["DSPY_BUILD_DIR"]) / "cli/dspy-agent")
    env, ports = daemon_env(tmp_path)
    status_args = ["status", "--env-manager-http", f"127.0.0.1:{ports[1]}", "--orchestrator-http",
                   f"127.0.0.1:{ports[3]}"]

    def run(*args):
        return subprocess.run([cli, *args], capture_output=True, text=True, timeout=120, env=env)

    pids = []
    try:
        r = run("start", "--no-services")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "env-manager   ready on" in r.stdout and "orchestrator  ready on" in r.stdout
        pids = [int((tmp_path / "run" / f"{d}.pid").read_text()) for d in ("env-manager", "orchestrator")]
        assert all(Path(f"/proc/{p}").exists() for p in pids)
        assert (tmp_path / "log/orchestrator.log").stat().st_size > 0
        again = run("start", "--no-services")
        assert again.returncode == 0 and again.stdout.count("already running") == 2, again.stdout
        # Both daemons are up; the services were not started, so status is not ok (exit 1)
        # and says only that.
        up = run(*status_args, "--json")
        assert up.returncode == 1, up.stdout
        body = json.loads(up.stdout)
        assert body["env-manager"]["status"] in ("ok", "degraded") and body["orchestrator"]["status"] == "ok"
        assert body["problems"] and all(p.startswith("required service ") for p in body["problems"]), body
        tail = run("logs", "orchestrator", "--tail", "2")
        assert tail.returncode == 0 and len(tail.stdout.splitlines()) == 2, tail.stdout
        assert "serving gRPC" in run("logs", "orchestrator", "--since", "1h", "--tail", "0").stdout
        assert run("logs", "orchestrator", "--since", "2099-01-01T00:00:00Z").stdout == ""
        assert run("logs", "orchestrator", "--since", "yesterday").returncode == 2

        r = run("stop", "--keep-services")
        assert r.returncode == 0, r.stderr
        assert "orchestrator  stopped" in r.stdout and "env-manager   stopped" in r.stdout
        assert not any(Path(f"/proc/{p}").exists() for p in pids)
        assert not (tmp_path / "run/orchestrator.pid").exists()
        down = run(*status_args)
        assert down.returncode == 1 and "not running: nothing answers on" in down.stdout
        assert "dspy-agent start" in down.stdout

        # A daemon that cannot start (its port is taken): start fails and names its log.
        (tmp_path / "orch.yaml").write_text(f"grpc:\n  address: 127.0.0.1:{ports[0]}\nhttp:\n  address: "
                                            f"127.0.0.1:{ports[3]}\nstore:\n  dir: {tmp_path / 'store'}\n")
        bad = run("start", "--no-services", "--timeout", "10")
        assert bad.returncode == 1 and "orchestrator.log" in bad.stderr, bad.stdout + bad.stderr
    finally:
        run("stop", "--keep-services", "--force")
