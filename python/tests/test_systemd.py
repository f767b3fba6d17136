"""The systemd units under a real systemd: this machine's PID 1 is not systemd, so a
Debian 12 container (scripts/systemd-image.sh: debootstrap, systemd as PID 1) boots,
scripts/install.sh installs the build there, and `systemctl start dspy-agent.target`
must bring both daemons to READY (Type=notify) with the units' sandboxing on; reload
sends SIGHUP; a SIGKILLed daemon is restarted by systemd; upgrade.sh rolls back a release
whose orchestrator cannot start. env-manager reaches the host's Docker through the
bind-mounted socket (a stand-in docker.service satisfies its Requires=)."""

import os
import subprocess
import time
import uuid

import pytest

from conftest import ROOT
from envstack import eventually

IMAGE = "dspy-test/systemd:bookworm"


def sh(*args, timeout=300):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def machine():
    built = sh("bash", str(ROOT / "scripts/systemd-image.sh"), timeout=900)
    assert built.returncode == 0, built.stderr
    name = f"dspy-systemd-{uuid.uuid4().hex[:8]}"
    gid = os.stat("/var/run/docker.sock").st_gid
    run = sh("docker", "run", "-d", "--name", name, "--cap-add", "SYS_ADMIN",
             "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
             "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", f"{ROOT}:/src:ro", IMAGE)
    assert run.returncode == 0, run.stderr

    def ex(command, timeout=120):
        return sh("docker", "exec", name, "bash", "-c", command, timeout=timeout)

    try:
        eventually(lambda: ex("systemctl is-system-running").stdout.strip() in ("running", "degraded"), 60,
                   what="systemd up in the container")
        setup = ex(f"""set -e
groupadd --gid {gid} docker
printf '[Unit]\\nDescription=stand-in for dockerd (the host engine is on the bind-mounted socket)\\n[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n' >/etc/systemd/system/docker.service
bash /src/scripts/install.sh --build /src/build/release""")
        assert setup.returncode == 0, setup.stdout + setup.stderr
        yield ex
    finally:
        sh("docker", "rm", "-f", name)


def main_pid(ex, unit):
    return int(ex(f"systemctl show -p MainPID --value {unit}").stdout.strip() or 0)


def test_the_target_starts_both_daemons_ready_and_sandboxed(machine):
    ex = machine
    r = ex("systemctl start dspy-agent.target")
    assert r.returncode == 0, r.stderr
    assert ex("systemctl is-active dspy-env-manager dspy-orchestrator").stdout.split() == ["active", "active"]
    # Type=notify: active means READY=1 arrived; STATUS= is the daemon's own text.
    assert ex("systemctl show -p StatusText --value dspy-orchestrator").stdout.strip() == "serving"
    assert '"health":"ok"' in ex("curl -fsS 127.0.0.1:9097/health").stdout
    em = ex("curl -fsS 127.0.0.1:50101/health").stdout
    assert '"health":"ok"' in em and "reachable" in em  # Docker through the docker group only
    # Its own user, not root; no capabilities.
    pid = main_pid(ex, "dspy-orchestrator")
    status = ex(f"cat /proc/{pid}/status").stdout
    assert "CapEff:\t0000000000000000" in status
    assert ex(f"ps -o user= -p {pid}").stdout.strip() == "dspy-agent"


def test_reload_sends_sighup_and_a_killed_daemon_is_restarted(machine):
    ex = machine
    assert ex("systemctl start dspy-agent.target").returncode == 0
    before = main_pid(ex, "dspy-orchestrator")
    assert ex("systemctl reload dspy-orchestrator").returncode == 0
    eventually(lambda: "reload" in ex("journalctl -u dspy-orchestrator --no-pager -n 20").stdout, 30,
               what="the reload in the journal")
    assert main_pid(ex, "dspy-orchestrator") == before  # reloaded, not restarted
    ex(f"kill -9 {before}")
    eventually(lambda: main_pid(ex, "dspy-orchestrator") not in (0, before) and
               ex("systemctl is-active dspy-orchestrator").stdout.strip() == "active", 60,
               what="systemd restarted the killed orchestrator")


def test_upgrade_under_systemd_rolls_back_a_release_that_does_not_start(machine):
    ex = machine
    assert ex("systemctl start dspy-agent.target").returncode == 0
    previous = ex("readlink /usr/local/lib/dspy-agent/current").stdout.strip()
    made = ex("""set -e
mkdir -p /var/tmp/bad/orchestrator /var/tmp/bad/env_manager /var/tmp/bad/cli
cp /src/build/release/env_manager/env-manager /var/tmp/bad/env_manager/
cp /src/build/release/cli/dspy-agent /var/tmp/bad/cli/
printf '#!/bin/sh\\n[ "$1" = --version ] && { echo "orchestrator 9.9.9"; exit 0; }\\nexit 1\\n' >/var/tmp/bad/orchestrator/orchestrator
chmod +x /var/tmp/bad/orchestrator/orchestrator""")
    assert made.returncode == 0, made.stderr
    r = ex("bash /src/scripts/upgrade.sh --build /var/tmp/bad --release broken --timeout 15", timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "rolled back" in r.stderr, r.stderr
    assert ex("readlink /usr/local/lib/dspy-agent/current").stdout.strip() == previous
    eventually(lambda: ex("systemctl is-active dspy-env-manager dspy-orchestrator").stdout.split() ==
               ["active", "active"], 60, what="the previous release runs again")
    assert '"health":"ok"' in ex("curl -fsS 127.0.0.1:9097/health").stdout
