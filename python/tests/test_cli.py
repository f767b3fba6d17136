"""The dspy-agent CLI against real daemons: every operator command's human and --json
output (shape, not timing), exit codes, daemon-down messages, bad flags, colour only on a
terminal, addresses from flags, env and the daemons' config files, `config show | init`,
`pull` from the local registry, and `start --services` / `stop` of a private stack."""

import json
import os
import pty
import re
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import Daemon, _free_port
from envstack import DOCKER, EnvManager, docker, remove_project

CLI = str(Path(os.environ.get("DSPY_BUILD_DIR", "build/release")) / "cli/dspy-agent")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def clean_env(**extra):
    """The environment without anything that would point the CLI elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "ENV_MANAGER_ADDR", "ORCHESTRATOR_ADDR", "ENV_MANAGER_CONFIG",
                        "ORCHESTRATOR_CONFIG", "ENV_MANAGER_METRICS_ADDR", "ORCHESTRATOR_HTTP_ADDR",
                        "ORCHESTRATOR_GRPC_ADDR", "ENV_MANAGER_GRPC_ADDR")}
    env["TERM"] = "xterm"
    env.update(extra)
    return env


def run(*args, env=None, timeout=120):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or clean_env())


def run_tty(*args, env=None, timeout=120):
    """Runs the CLI with a pseudo-terminal as stdout: (exit code, output)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([CLI, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env or clean_env())
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(timeout=timeout), out.decode(errors="replace")


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def system(stubs):
    """env-manager with a private local stack and an orchestrator that uses it; the
    environment names their config files only (the CLI must find the addresses there)."""
    m = EnvManager(stubs)
    o = Daemon("orchestrator", "orchestrator/orchestrator", f"env_manager:\n  address: {m.daemon.grpc_addr}\n")
    o.wait_serving()
    env = clean_env(ENV_MANAGER_CONFIG=str(m.daemon.config), ORCHESTRATOR_CONFIG=str(o.config))
    yield m, o, env
    o.stop()
    m.close()


def test_status_services_and_queue_from_the_config_files(system):
    m, o, env = system
    # Nothing started yet: both daemons answer, but required services are down -> exit 1.
    r = run("status", "--json", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    s = json.loads(r.stdout)
    assert s["env-manager"]["address"] == m.daemon.http_addr and s["orchestrator"]["address"] == o.http_addr
    assert s["env-manager"]["status"] in ("ok", "degraded") and s["orchestrator"]["status"] == "ok"
    assert set(s["services"]) == set(m.doc["services"])
    assert all(isinstance(v["required"], bool) and v["state"] for v in s["services"].values())
    assert any(p.startswith("required service ") for p in s["problems"]) and s["ok"] is False
    classes = s["queue"]["classes"]
    assert classes and all({"executor", "limiter", "limit", "inflight", "queued"} <= set(c) for c in classes.values())
    assert isinstance(s["queue"]["pending"], int)
    human = run("status", env=env)
    assert human.returncode == 1 and "SERVICE" in human.stdout and "CLASS" in human.stdout
    assert "not ok: " in human.stdout and not ANSI.search(human.stdout)

    # services start --json: a JSON object per step, then the result.
    started = run("services", "start", "--json", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    lines = json_lines(started.stdout)
    assert lines[-1] == {"done": True, "ok": True, "message": lines[-1]["message"]}
    steps = {(line["service"], line["status"]) for line in lines[:-1]}
    assert all(("redis", st) in steps for st in ("creating", "starting"))
    assert all(isinstance(line["progress"], int) for line in lines[:-1])

    ok = run("status", "--json", env=env)
    assert ok.returncode == 0, ok.stdout
    s = json.loads(ok.stdout)
    assert s["ok"] is True and s["problems"] == []
    assert all(v["status"] == "running" for v in s["services"].values() if v["required"])
    human = run("status", env=env)
    assert human.returncode == 0 and "both daemons and every required service are up" in human.stdout

    listed = json.loads(run("services", "status", "--json", env=env).stdout)
    assert listed["redis"]["required"] is True and isinstance(listed["redis"]["restarts"], int)
    assert listed["redis"]["ports"] == [m.port("redis")]

    logs = run("logs", "redis", "--tail", "3", "--json", env=env)
    assert logs.returncode == 0, logs.stderr
    entries = json_lines(logs.stdout)
    assert 0 < len(entries) <= 3
    assert all(set(e) == {"time", "timestamp", "stream", "message"} for e in entries)
    assert all(e["stream"] in ("stdout", "stderr") for e in entries)

    stopped = run("services", "stop", "prometheus", "--json", env=env)
    assert stopped.returncode == 0, stopped.stderr
    body = json.loads(stopped.stdout)
    assert body["ok"] is True and "prometheus" in body["services"]


def test_colour_only_on_a_terminal_and_never_with_no_color(system):
    _, _, env = system
    code, out = run_tty("status", env=env)
    assert code in (0, 1) and "\x1b[3" in out, out  # coloured state words
    for args, extra in ((("--no-color", "status"), {}), (("status", "--no-color"), {}), (("status",), {"NO_COLOR": "1"})):
        code, out = run_tty(*args, env=dict(env, **extra))
        assert "DAEMON" in out and not ANSI.search(out), (args, out)
    piped = run("status", env=env)
    assert not ANSI.search(piped.stdout)


def test_services_start_on_a_terminal_redraws_a_live_board(system):
    m, _, env = system
    run("services", "stop", "--json", env=env)
    code, out = run_tty("services", "start", "redis", "redb", env=env)
    assert code == 0, out
    assert re.search(r"\x1b\[\d+A", out), "the board moves the cursor up to redraw itself"
    assert re.search(r"^\s*\d+\.\d+s done: ", ANSI.sub("", out), re.M), out
    plain = run("services", "start", "redis", env=env)
    assert plain.returncode == 0 and re.search(r"^\s*\d+\.\d+s redis\s+\w+", plain.stdout, re.M), plain.stdout


def test_daemon_down_is_named_with_how_to_start_it(tmp_path):
    free = f"127.0.0.1:{_free_port()}"
    for args in (["tasks", "list", "--addr", free], ["services", "status", "--addr", free],
                 ["workflows", "list", "--addr", free], ["pull", "--addr", free]):
        r = run(*args)
        assert r.returncode == 1, args
        assert f"not running: nothing answers on {free}" in r.stderr and "dspy-agent start" in r.stderr, r.stderr
    down = run("status", "--json", "--env-manager-http", free, "--orchestrator-http", free)
    assert down.returncode == 1
    s = json.loads(down.stdout)
    assert s["env-manager"]["status"] == "unreachable" and s["services"] is None and s["queue"] is None
    assert "dspy-agent start" in s["orchestrator"]["error"]
    # ORCHESTRATOR_ADDR is where the task commands look when no flag is given.
    r = run("tasks", "list", env=clean_env(ORCHESTRATOR_ADDR=free))
    assert r.returncode == 1 and free in r.stderr


@pytest.mark.parametrize("args", [
    ["status", "--bogus"], ["tasks", "list", "--limit", "ten"], ["services", "logs"], ["logs", "redis", "--tail", "-1"],
    ["logs", "orchestrator", "--since", "yesterday"], ["config", "init", "--dir"], ["nope"], [],
    ["start", "--timeout", "0"], ["services", "stop", "--timeout", "99999"],
])
def test_bad_usage_exits_2_with_a_message(args):
    r = run(*args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stderr.strip(), args


def test_version_and_help():
    v = run("version")
    assert v.returncode == 0 and re.fullmatch(r"dspy-agent \d+\.\d+\.\d+\n", v.stdout)
    assert run("--version").stdout == v.stdout
    h = run("--help")
    assert h.returncode == 0
    for command in ("status", "start", "stop", "restart", "logs", "pull", "config", "version", "services", "tasks",
                    "workflows", "events", "backup", "restore"):
        assert re.search(rf"^\s+{command}\s", h.stdout, re.M), command


def test_config_show_says_where_each_value_came_from(tmp_path):
    f = tmp_path / "orchestrator.yaml"
    f.write_text("grpc:\n  address: 127.0.0.1:6001\nauth:\n  token: s3cret\n"
                 "kafka:\n  properties:\n    sasl.password: hunter2\n    client.id: me\n")
    env = clean_env(ORCHESTRATOR_CONFIG=str(f), ORCHESTRATOR_HTTP_ADDR="127.0.0.1:6002")
    r = run("config", "show", "--json", env=env)
    assert r.returncode == 0, r.stderr
    o = json.loads(r.stdout)["orchestrator"]
    assert o["file"] == str(f)
    assert o["values"]["grpc.address"] == "127.0.0.1:6001" and o["sources"]["grpc.address"] == "file"
    assert o["values"]["http.address"] == "127.0.0.1:6002"
    assert o["sources"]["http.address"] == "env ORCHESTRATOR_HTTP_ADDR"
    assert o["sources"]["store.max_batch"] == "default" and isinstance(o["values"]["store.max_batch"], int)
    assert o["values"]["auth.token"] == "<redacted>" and "s3cret" not in r.stdout
    assert o["values"]["kafka.properties"]["sasl.password"] == "<redacted>" and "hunter2" not in r.stdout
    assert o["values"]["kafka.properties"]["client.id"] == "me"
    human = run("config", "show", env=env)
    assert human.returncode == 0 and re.search(r"^grpc\.address\s+\"127\.0\.0\.1:6001\"\s+\(file\)", human.stdout, re.M)
    assert "s3cret" not in human.stdout
    # The addresses the other commands use come from the same file.
    r = run("tasks", "list", env=clean_env(ORCHESTRATOR_CONFIG=str(f)))
    assert r.returncode == 1 and "127.0.0.1:6001" in r.stderr

    f.write_text("grpc:\n  address: 127.0.0.1:6001\nstore:\n  max_batch: many\n")
    bad = run("config", "show", env=env)
    assert bad.returncode == 1 and f"{f}:4:" in bad.stderr and "store.max_batch" in bad.stderr


def test_config_init_writes_valid_files_and_keeps_existing_ones(tmp_path):
    d = tmp_path / "etc"
    r = run("config", "init", "--dir", str(d), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    body = json.loads(r.stdout)
    assert body["ok"] is True and body["dir"] == str(d)
    assert [(Path(f["file"]).name, f["action"], f["valid"]) for f in body["files"]] == [
        ("env-manager.yaml", "written", True), ("orchestrator.yaml", "written", True), ("services.yaml", "written", True)]
    assert oct((d / "orchestrator.yaml").stat().st_mode & 0o777) == "0o640"
    ROOT = Path(__file__).resolve().parents[2]
    assert (d / "services.yaml").read_text() == (ROOT / "deploy/config/services.yaml").read_text()
    v = run("config", "validate", "--json", *(str(p) for p in sorted(d.iterdir())))
    assert v.returncode == 0 and json.loads(v.stdout)["ok"] is True, v.stdout
    assert [f["kind"] for f in json.loads(v.stdout)["files"]] == ["env-manager", "orchestrator", "services file"]

    (d / "orchestrator.yaml").write_text("store:\n  sync: sometimes\n")
    again = run("config", "init", "--dir", str(d))
    assert again.returncode == 1  # kept, and it is invalid: said so
    assert "kept     " in again.stdout and "(exists; --force replaces it)" in again.stdout
    assert "store.sync" in again.stdout
    assert (d / "orchestrator.yaml").read_text() == "store:\n  sync: sometimes\n"
    forced = run("config", "init", "--dir", str(d), "--force")
    assert forced.returncode == 0 and forced.stdout.count("written") == 3

    local = run("config", "init", "--dir", str(tmp_path / "local"), "--local", "--json")
    assert local.returncode == 0, local.stdout
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == ["env-manager.yaml", "orchestrator.yaml", "services.local.yaml"]


def test_pull_from_the_local_registry(system):
    m, _, env = system
    ref = f"127.0.0.1:5000/dspy-test/cli-pull-{uuid.uuid4().hex[:8]}:v1"
    root = Path(tempfile.mkdtemp(prefix="dspy-cli-pull-"))
    (root / "blob").write_bytes(os.urandom(1024 * 1024))
    tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
    subprocess.run([DOCKER, "import", "-", ref], input=tar, capture_output=True, check=True, timeout=60)
    docker("push", ref)
    docker("rmi", ref)
    try:
        r = run("pull", ref, "--json", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = json_lines(r.stdout)
        assert lines[-1] == {"done": True, "ok": True, "images": {ref: "complete"}}
        assert all(set(line) == {"image", "status", "progress", "current", "total", "message"} for line in lines[:-1])
        docker("image", "inspect", ref)
        docker("rmi", ref)
        human = run("services", "pull", ref, env=env)
        assert human.returncode == 0 and "done: 1 image(s) pulled" in human.stdout, human.stdout
        missing = "127.0.0.1:5000/dspy-test/missing:none"
        bad = run("pull", missing, "--json", env=env)
        assert bad.returncode == 1
        assert json_lines(bad.stdout)[-1] == {"done": True, "ok": False, "images": {missing: "error"}}
    finally:
        docker("rmi", ref, check=False)


def test_start_services_then_stop_everything_as_json(tmp_path, stubs):
    """`start --services redis --json` brings both daemons and redis (and only what it
    needs) up; `stop --json` stops the services and then the daemons."""
    from test_cli_lifecycle import daemon_env

    env, ports = daemon_env(tmp_path)
    doc = json.loads(env["DSPY_TEST_STACK"])
    env = dict(clean_env(), **{k: v for k, v in env.items() if k.startswith(("DSPY_AGENT_", "ENV_MANAGER_CONFIG",
                                                                               "ORCHESTRATOR_CONFIG"))})
    try:
        r = run("start", "--services", "redis", "--json", env=env, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = json_lines(r.stdout)
        daemons = [line for line in lines if "daemon" in line]
        assert [(d["daemon"], d["status"]) for d in daemons] == [
            ("env-manager", "starting"), ("env-manager", "ready"), ("orchestrator", "starting"), ("orchestrator", "ready")]
        assert lines[-1]["done"] is True and lines[-1]["ok"] is True
        assert {line["service"] for line in lines if "service" in line} == {"redis"}
        s = json.loads(run("status", "--json", env=env).stdout)
        assert s["services"]["redis"]["status"] == "running" and s["services"]["kafka"]["status"] != "running"

        stop = run("stop", "--json", env=env, timeout=180)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        body = json.loads(stop.stdout)
        assert body["ok"] is True and body["services"]["ok"] is True and "redis" in body["services"]["services"]
        assert body["daemons"] == {"orchestrator": "stopped", "env-manager": "stopped"}
        again = json.loads(run("stop", "--json", env=env).stdout)
        assert again["services"] is None and again["daemons"] == {"orchestrator": "not_running",
                                                                 "env-manager": "not_running"}
    finally:
        run("stop", "--force", env=env, timeout=180)
        remove_project(doc["project"])


def test_tasks_submit_batch_from_json_lines_and_an_array(tmp_path):
    d = Daemon("orchestrator", "orchestrator/orchestrator",
               "executors:\n  process:\n    commands:\n      echo: {argv: [/bin/echo], allow_args: true}\n"
               "tasks:\n  classes:\n    cpu_short: {executor: process}\n")
    d.wait_serving()
    try:
        lines = tmp_path / "tasks.jsonl"
        lines.write_text("\n".join(json.dumps({"id": f"cb-{i}", "payload": {"command": "echo", "args": [str(i)]}})
                                   for i in range(2500)) + "\n")
        r = run("tasks", "submit-batch", str(lines), "--addr", d.grpc_addr)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [f"cb-{i}" for i in range(2500)]
        assert "2500 of 2500 task(s) accepted" in r.stderr
        arr = tmp_path / "tasks.json"
        arr.write_text(json.dumps([{"id": "cb-ok", "payload": {"command": "echo"}},
                                   {"id": "cb-bad", "payload": {"command": "rm"}}]))
        r = run("tasks", "submit-batch", str(arr), "--json", "--addr", d.grpc_addr)
        assert r.returncode == 1
        body = json.loads(r.stdout)
        assert body["accepted"] == 1 and body["results"][0] == {"ok": True, "id": "cb-ok"}
        assert body["results"][1]["ok"] is False and body["results"][1]["code"] == "INVALID_ARGUMENT"
        (tmp_path / "bad.json").write_text('{"id": "x"}\nnot json\n')
        bad = run("tasks", "submit-batch", str(tmp_path / "bad.json"), "--addr", d.grpc_addr)
        assert bad.returncode == 2 and "bad.json:2: not JSON" in bad.stderr
    finally:
        d.stop()
