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

# They install build/release whatever DSPY_BUILD_DIR says: with two passes, only the release one runs them.
pytestmark = pytest.mark.release_pass

IMAGE = "dspy-test/systemd:bookworm"


def sh(*args, timeout=300):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


# The container's env-manager shares the host's Docker with whatever runs there (the
# demo's stack is project dspy-agent): its stack gets a project of its own, so nothing it
# starts, stops or adopts is anyone else's.
CONFIGS = """cat >/etc/dspy-agent/services.yaml <<'YAML'
project: {project}
network: {project}
services:
  probe:
    image: dspy-test/busybox:latest
    command: [sh, -c, "echo probe up; exec sleep 3600"]
    healthcheck: {{kind: exec, command: [sh, -c, "true"], interval: 1s}}
    required: true
YAML
cat >/etc/dspy-agent/env-manager.yaml <<'YAML'
services:
  file: /etc/dspy-agent/services.yaml
tasks:
  commands:
    hello: {{image: "dspy-test/busybox:latest", argv: [sh, -c, 'echo "container says hi"']}}
YAML
cat >/etc/dspy-agent/orchestrator.yaml <<'YAML'
executors:
  process:
    commands:
      whoami: {{argv: [/bin/sh, -c, 'echo "process as $(id -un)"']}}
tasks:
  classes:
    cpu_short: {{executor: process}}
    gpu: {{executor: container, workload_class: cpu_short}}
YAML"""


@pytest.fixture(scope="module")
def machine():
    built = sh("bash", str(ROOT / "scripts/systemd-image.sh"), timeout=900)
    assert built.returncode == 0, built.stderr
    name = f"dspy-systemd-{uuid.uuid4().hex[:8]}"
    project = f"dspy-sd-{uuid.uuid4().hex[:8]}"
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
bash /src/scripts/install.sh --build /src/build/release
{CONFIGS.format(project=project)}
dspy-agent config validate""")
        assert setup.returncode == 0, setup.stdout + setup.stderr
        yield ex, project
    finally:
        sh("docker", "rm", "-f", name)
        ids = sh("docker", "ps", "-aq", "--filter", f"label=dev.dspy-agent.project={project}").stdout.split()
        if ids:
            sh("docker", "rm", "-f", *ids)
        sh("docker", "network", "rm", project)


def main_pid(ex, unit):
    return int(ex(f"systemctl show -p MainPID --value {unit}").stdout.strip() or 0)


def test_the_target_starts_both_daemons_ready_and_sandboxed(machine):
    ex, _ = machine
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
    ex, _ = machine
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


def test_upgrade_under_systemd_switches_and_rolls_back_a_release_that_does_not_start(machine):
    ex, _ = machine
    assert ex("systemctl start dspy-agent.target").returncode == 0
    pids = (main_pid(ex, "dspy-env-manager"), main_pid(ex, "dspy-orchestrator"))
    good = ex("bash /src/scripts/upgrade.sh --build /src/build/release --release good --timeout 60", timeout=300)
    assert good.returncode == 0, good.stdout + good.stderr
    assert ex("readlink /usr/local/lib/dspy-agent/current").stdout.strip().endswith("/good")
    # Both daemons were restarted after the switch, so they run the new release's binaries
    # (docker exec has no CAP_SYS_PTRACE to read another user's /proc/PID/exe).
    after = (main_pid(ex, "dspy-env-manager"), main_pid(ex, "dspy-orchestrator"))
    assert all(a not in (0, b) for a, b in zip(after, pids)), (pids, after)
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


def test_a_rollback_under_systemd_puts_back_the_store_a_failed_release_migrated(machine):
    """The failed release migrates the store (a copy first, as ours do) before it fails;
    the previous release refuses a newer store, so the rollback restores the copy, owned
    by the daemon's user so that it can write it."""
    ex, _ = machine
    assert ex("systemctl start dspy-agent.target").returncode == 0
    previous = ex("readlink /usr/local/lib/dspy-agent/current").stdout.strip()
    # A shell stand-in: the schema version is the big-endian word at offset 60 of the
    # database header (no sqlite3 in this image); the daemon left no WAL when it stopped.
    made = ex(r"""set -e
mkdir -p /var/tmp/mig/orchestrator /var/tmp/mig/env_manager /var/tmp/mig/cli
cp /src/build/release/env_manager/env-manager /var/tmp/mig/env_manager/
cp /src/build/release/cli/dspy-agent /var/tmp/mig/cli/
cat >/var/tmp/mig/orchestrator/orchestrator <<'SH'
#!/bin/sh
[ "$1" = --version ] && { echo "orchestrator 9.9.9"; exit 0; }
db=/var/lib/dspy-agent/orchestrator/orchestrator.db
[ -s "$db-wal" ] && { echo "a WAL is left: not a stopped store" >&2; exit 2; }
v=$(od -An -tu1 -j60 -N4 "$db" | awk '{print $1*16777216+$2*65536+$3*256+$4}')
cp "$db" "$db.before-schema-$v"
printf "\000\000\000\$(printf %03o $((v + 1)))" | dd of="$db" bs=1 seek=60 conv=notrunc status=none
echo "migrated the store to $((v + 1)), then failed" >&2
exit 1
SH
chmod +x /var/tmp/mig/orchestrator/orchestrator""")
    assert made.returncode == 0, made.stderr
    r = ex("bash /src/scripts/upgrade.sh --build /var/tmp/mig --release migrating --timeout 15", timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "migrated the store in /var/lib/dspy-agent/orchestrator from schema" in r.stderr, r.stderr
    assert "rolled back" in r.stderr, r.stderr
    assert ex("readlink /usr/local/lib/dspy-agent/current").stdout.strip() == previous
    eventually(lambda: ex("systemctl is-active dspy-env-manager dspy-orchestrator").stdout.split() ==
               ["active", "active"], 60, what="the previous release runs again on the restored store")
    store = ex("ls -l /var/lib/dspy-agent/orchestrator/").stdout
    assert "before-restore-" in store, store
    assert ex("stat -c %U /var/lib/dspy-agent/orchestrator/orchestrator.db").stdout.strip() == "dspy-agent"
    # It writes to the restored store: a task is accepted and runs.
    t = ex("dspy-agent tasks submit cpu_short --id sd-after-rollback --wait command=whoami", timeout=120)
    assert t.returncode == 0 and "process as dspy-agent" in t.stdout, t.stdout + t.stderr


def test_the_cli_runs_the_system_through_systemd_services_and_tasks_included(machine):
    """Inside the sandbox: `dspy-agent restart` goes through the target, starts a service
    (a container on the host's Docker, health-checked with docker exec), and a process
    task and a container task (env-manager ExecuteTask) run to completion."""
    ex, project = machine
    try:
        r = ex("dspy-agent restart --timeout 60", timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "starting dspy-agent.target (systemd)" in r.stdout and "done: 1/1 services up" in r.stdout, r.stdout
        status = ex("dspy-agent status --json")
        assert status.returncode == 0, status.stdout
        assert '"probe"' in status.stdout and '"ok": true' in status.stdout
        p = ex("dspy-agent tasks submit cpu_short --id sd-process --wait command=whoami", timeout=120)
        assert p.returncode == 0 and "stdout: process as dspy-agent" in p.stdout, p.stdout + p.stderr
        c = ex("dspy-agent tasks submit gpu --id sd-container --wait command=hello", timeout=180)
        assert c.returncode == 0 and "container says hi" in c.stdout, c.stdout + c.stderr
        logs = ex("dspy-agent logs orchestrator --tail 0 --since 10m")  # journald under systemd
        assert logs.returncode == 0 and "serving gRPC" in logs.stdout, logs.stdout
        stop = ex("dspy-agent stop --json", timeout=300)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert '"probe"' in stop.stdout
        assert ex("systemctl is-active dspy-env-manager dspy-orchestrator").stdout.split() == ["inactive", "inactive"]
        assert not sh("docker", "ps", "-q", "--filter", f"label=dev.dspy-agent.project={project}").stdout.strip()
    finally:
        ex("systemctl start dspy-agent.target")
