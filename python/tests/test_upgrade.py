"""scripts/upgrade.sh on an installation in a staging root whose daemons were started by
`dspy-agent start` (no systemd here): a good release is switched to and its daemons run;
a release whose orchestrator cannot start is rolled back by itself, and the previous
release runs again."""

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT
from test_cli_lifecycle import daemon_env


def exe_of(pid_file):
    return os.readlink(f"/proc/{int(Path(pid_file).read_text())}/exe")


def test_upgrade_switches_and_rolls_back_a_release_that_does_not_become_healthy(tmp_path):
    build = Path(os.environ["DSPY_BUILD_DIR"])
    root = tmp_path / "root"
    env, ports = daemon_env(tmp_path)
    cli = root / "opt/dspy/bin/dspy-agent"
    current = root / "opt/dspy/lib/dspy-agent/current"
    pid_file = tmp_path / "run/orchestrator.pid"

    def script(name, *args):
        return subprocess.run(["bash", str(ROOT / "scripts" / name), "--root", str(root), "--prefix", "/opt/dspy",
                               *args], capture_output=True, text=True, timeout=300, env=env)

    # A release whose orchestrator reports a version and then cannot start.
    bad = tmp_path / "bad"
    for sub, binary in (("env_manager", "env-manager"), ("cli", "dspy-agent")):
        (bad / sub).mkdir(parents=True)
        shutil.copy(build / sub / binary, bad / sub / binary)
    (bad / "orchestrator").mkdir()
    (bad / "orchestrator/orchestrator").write_text(
        '#!/bin/sh\n[ "$1" = --version ] && { echo "orchestrator 9.9.9"; exit 0; }\necho "broken release" >&2\nexit 1\n')
    (bad / "orchestrator/orchestrator").chmod(0o755)

    try:
        r = script("install.sh", "--build", str(build), "--release", "rel-a")
        assert r.returncode == 0, r.stderr
        start = subprocess.run([str(cli), "start", "--no-services"], capture_output=True, text=True, timeout=120, env=env)
        assert start.returncode == 0, start.stdout + start.stderr
        assert "/releases/rel-a/" in exe_of(pid_file)

        good = script("upgrade.sh", "--build", str(build), "--release", "rel-b")
        assert good.returncode == 0, good.stderr
        assert os.readlink(current) == "releases/rel-b"
        assert "/releases/rel-b/" in exe_of(pid_file)
        assert (root / "opt/dspy/lib/dspy-agent/releases/rel-a").is_dir()  # kept beside the new one

        failed = script("upgrade.sh", "--build", str(bad), "--release", "rel-c", "--timeout", "15")
        assert failed.returncode == 1, failed.stderr
        assert "rolling back to rel-b" in failed.stderr and "rolled back: rel-b runs again" in failed.stderr
        assert os.readlink(current) == "releases/rel-b"
        assert "/releases/rel-b/" in exe_of(pid_file)
        status = subprocess.run([str(cli), "status", "--orchestrator-http", f"127.0.0.1:{ports[3]}",
                                 "--env-manager-http", f"127.0.0.1:{ports[1]}", "--json"],
                                capture_output=True, text=True, timeout=60, env=env)
        assert json.loads(status.stdout)["orchestrator"]["status"] == "ok", status.stdout
    finally:
        subprocess.run([str(cli), "stop", "--keep-services", "--force"], capture_output=True, timeout=120, env=env)
