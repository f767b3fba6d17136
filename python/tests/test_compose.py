"""env-manager reading docker-compose files, against a real Docker and Debian's
docker-compose 1.29: the local stack written as a compose file starts as
services.local.yaml does; a 28-service compose file started by env-manager and by
docker-compose gives containers configured alike, field by field for what the file
sets; bad files are refused before anything starts."""

import json
import os
import re
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
import yaml

import compose28
from conftest import Daemon
from conftest import _free_port as free_port
from envstack import ROOT, docker, inspect, local_stack, remove_project, write_stack

COMPOSE = "/usr/bin/docker-compose"
CLI_REL = "cli/dspy-agent"


def build_dir():
    return Path(os.environ["DSPY_BUILD_DIR"])


def cleanup(project):
    for label in (f"dev.dspy-agent.project={project}", f"com.docker.compose.project={project}"):
        ids = docker("ps", "-aq", "--filter", f"label={label}", check=False).split()
        if ids:
            docker("rm", "-f", *ids, check=False)
    for kind in ("network", "volume"):
        names = docker(kind, "ls", "-q", "--filter", f"name={project}_", check=False).split()
        if names:
            docker(kind, "rm", *names, check=False)


def by_service(label_key, project):
    ids = docker("ps", "-aq", "--no-trunc", "--filter", f"label={label_key.split('.service')[0]}.project={project}").split()
    out = {}
    for i in ids:
        j = inspect(i)
        out[j["Config"]["Labels"][label_key]] = j
    return out


def started_at(j):
    # RFC 3339 with nanoseconds; microseconds are enough for ordering.
    t = re.sub(r"(\.\d{6})\d*", r"\1", j["State"]["StartedAt"]).replace("Z", "+00:00")
    return datetime.fromisoformat(t).timestamp()


class EnvManagerOn:
    """One env-manager whose services.file is `path`, started for a test."""

    def __init__(self, stubs, path, extra=""):
        self.pb = stubs.em_pb2
        self.daemon = Daemon("env-manager", "env_manager/env-manager",
                             f"services:\n  file: {path}\n{extra}"
                             "lifecycle:\n  max_concurrent: 28\n  health_timeout_seconds: 120\n")
        self.daemon.wait_serving()
        self.channel = self.daemon.channel()
        self.stub = stubs.em_grpc.EnvManagerServiceStub(self.channel)

    def start(self):
        return list(self.stub.StartServices(self.pb.StartServicesRequest(), timeout=300))

    def status(self):
        return self.stub.GetServicesStatus(self.pb.GetServicesStatusRequest(), timeout=30).services

    def close(self):
        try:
            self.stub.StopServices(self.pb.StopServicesRequest(timeout_seconds=1), timeout=120)
        finally:
            self.channel.close()
            self.daemon.stop()


def twin_compose_doc():
    """deploy/config/services.local.compose.yml as compose would load it, with kafka
    swapped for the busybox listener as envstack.local_stack() does."""
    doc = yaml.safe_load((ROOT / "deploy/config/services.local.compose.yml").read_text())
    listener = doc["services"]["zookeeper"]["command"]
    kafka = doc["services"]["kafka"]
    kafka.update(image="dspy-test/busybox:latest", command=listener,
                 environment={"START_DELAY": "1.5", "PORT": "9092", "HEALTH_PATH": "/health"})
    return doc


def test_the_local_stack_as_a_compose_file_starts_like_services_local_yaml(stubs):
    native = local_stack()
    work = Path(tempfile.mkdtemp(prefix="dspy-twin-"))
    native_path = write_stack(work, native)
    project = "dspy-twin-" + native["project"].rsplit("-", 1)[1]
    twin = twin_compose_doc()
    ports = {v: str(free_port()) for v in ("REDIS_PORT", "REDB_PORT", "OLLAMA_PORT", "ROUTER_PORT", "ZOOKEEPER_PORT",
                                          "KAFKA_PORT", "PROMETHEUS_PORT")}
    (work / ".env").write_text("".join(f"{k}={v}\n" for k, v in ports.items()))
    twin_path = work / "docker-compose.yml"
    twin_path.write_text(yaml.safe_dump(twin, sort_keys=False))

    runs = {}
    try:
        for kind, path, extra, project_name, label in (
                ("native", native_path, "", native["project"], "dev.dspy-agent.service"),
                ("compose", twin_path, f"  compose_project: {project}\n", project, "dev.dspy-agent.service")):
            em = EnvManagerOn(stubs, path, extra)
            try:
                final = em.start()[-1]
                assert final.status == "completed", final.message
                assert final.message.startswith("9/9"), final.message
                status = {n: dict(s.health_checks) for n, s in em.status().items()}
                runs[kind] = (by_service(label, project_name), status)
            finally:
                em.close()
        (nat, nat_status), (cmp_, cmp_status) = runs["native"], runs["compose"]
        assert sorted(nat) == sorted(cmp_) == sorted(native["services"])
        for name, spec in native["services"].items():
            a, b = nat[name], cmp_[name]
            assert a["Config"]["Image"] == b["Config"]["Image"], name
            assert a["Config"]["Cmd"] == b["Config"]["Cmd"], name
            assert sorted(a["Config"]["Env"] or []) == sorted(b["Config"]["Env"] or []), name
            # Same container ports, published on loopback (the host ports are each run's own).
            def bound(j):
                return {k: [p["HostIp"] for p in v] for k, v in (j["HostConfig"]["PortBindings"] or {}).items()}
            assert bound(a) == bound(b), name
            assert sorted(m["Destination"] for m in a["Mounts"]) == sorted(m["Destination"] for m in b["Mounts"]), name
            for j in (a, b):
                nets = j["NetworkSettings"]["Networks"]
                assert len(nets) == 1 and name in next(iter(nets.values()))["Aliases"], name
            # Our own probe kinds (x-dspy.probe) and the required flags (x-dspy.required).
            assert nat_status[name]["kind"] == cmp_status[name]["kind"], name
            assert nat_status[name]["required"] == cmp_status[name]["required"], name
            # Compose's healthcheck is Docker's own in the compose run only.
            assert b["Config"]["Healthcheck"]["Test"][0] in ("CMD", "CMD-SHELL"), name
            assert "Healthcheck" not in a["Config"] or a["Config"]["Healthcheck"] is None, name
        # Order from Docker's own timestamps: a service waiting for a healthy dependency
        # started after that dependency started plus its start delay.
        for run in (nat, cmp_):
            for name, spec in native["services"].items():
                for dep in spec.get("depends_on", {}):
                    delay = float(native["services"][dep].get("environment", {}).get("START_DELAY", 0))
                    assert started_at(run[name]) >= started_at(run[dep]) + delay, (name, dep)
    finally:
        remove_project(native["project"])
        cleanup(project)


def configured(j, name, spec):
    """What a compose file sets, as Docker reports it, in a form both runs share."""
    c, h = j["Config"], j["HostConfig"]

    def volume_name(m):
        if m["Type"] != "volume":
            return m["Source"]
        return "<anonymous>" if re.fullmatch(r"[0-9a-f]{64}", m["Name"]) else m["Name"]

    aliases = {}
    for net, v in j["NetworkSettings"]["Networks"].items():
        declared = set()
        nets = spec.get("networks")
        if isinstance(nets, dict):
            for key, val in nets.items():
                if (val or {}).get("aliases"):
                    declared |= set(val["aliases"])
        aliases[net] = sorted(a for a in (v["Aliases"] or []) if a in declared | {name})
    out = {
        "image": c["Image"], "cmd": c["Cmd"], "entrypoint": c["Entrypoint"], "env": sorted(c["Env"] or []),
        "labels": {k: v for k, v in (c["Labels"] or {}).items()
                   if not k.startswith(("com.docker.compose.", "dev.dspy-agent."))},
        "working_dir": c["WorkingDir"], "user": c["User"], "healthcheck": c.get("Healthcheck"),
        "exposed": sorted(c.get("ExposedPorts") or {}),
        "ports": {k: sorted((p["HostIp"], p["HostPort"]) for p in v) for k, v in (h["PortBindings"] or {}).items()},
        "memory": h["Memory"], "nano_cpus": h["NanoCpus"], "pids": h.get("PidsLimit") or 0,
        "mounts": sorted((m["Type"], volume_name(m), m["Destination"], m["RW"]) for m in j["Mounts"]),
        "aliases": aliases,
    }
    if "hostname" in spec:
        out["hostname"] = c["Hostname"]
    return out


def wait_compose_healthy(project, count, timeout=300):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").split()
        if len(ids) == count:
            states = [inspect(i)["State"] for i in ids]
            done = all((s.get("Health") or {}).get("Status") == "healthy" or
                       (s["Status"] == "exited" and s["ExitCode"] == 0 and "Health" not in s) for s in states)
            if done:
                return
        time.sleep(0.2)
    raise AssertionError(f"compose project {project} not healthy within {timeout}s")


def test_a_28_service_compose_file_gives_the_same_containers_as_docker_compose(stubs):
    work = Path(tempfile.mkdtemp(prefix="dspy-c28-"))
    ports = {"REDIS_PORT": free_port(), "GATEWAY_PORT": free_port(), "METRICS_PORT": free_port()}
    path = compose28.write(work, ports)
    project = "dspyc28" + os.urandom(3).hex()
    env = dict(os.environ, DOCKER_HOST="unix:///var/run/docker.sock", COMPOSE_INTERACTIVE_NO_CLI="1")
    base = [COMPOSE, "-p", project, "-f", str(path)]
    spec = yaml.safe_load(path.read_text())["services"]
    try:
        # docker-compose first, then env-manager on the same file and project (so the
        # same network and volume names), one after the other (the same host ports).
        r = subprocess.run(base + ["up", "-d"], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr
        wait_compose_healthy(project, 28)
        theirs = {n: configured(j, n, spec[n]) for n, j in by_service("com.docker.compose.service", project).items()}
        theirs_restart = {n: j["HostConfig"]["RestartPolicy"]["Name"]
                          for n, j in by_service("com.docker.compose.service", project).items()}
        r = subprocess.run(base + ["down", "-v", "-t", "1"], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr

        em = EnvManagerOn(stubs, path, f"  compose_project: {project}\n")
        try:
            final = em.start()[-1]
            assert final.status == "completed", final.message
            assert final.message.startswith("28/28"), final.message
            ours_raw = by_service("dev.dspy-agent.service", project)
            ours = {n: configured(j, n, spec[n]) for n, j in ours_raw.items()}
            states = {n: s.status for n, s in em.status().items()}
        finally:
            em.close()
        assert sorted(ours) == sorted(theirs) and len(ours) == 28
        for name in spec:
            for field in theirs[name]:
                assert ours[name][field] == theirs[name][field], f"{name}.{field}: ours {ours[name][field]!r}, " \
                                                                 f"compose {theirs[name][field]!r}"
        # The one-shot job completed in both; env-manager restarts by itself, so it does
        # not hand Docker a restart policy (docs/api.md lists this difference).
        assert ours_raw["migrate"]["State"]["ExitCode"] == 0 and ours_raw["migrate"]["State"]["Status"] == "exited"
        assert states["migrate"] in ("completed", "stopped")
        assert theirs_restart["redis"] == "on-failure"
        assert ours_raw["redis"]["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
        # Every depends_on edge held, by Docker's own start times.
        for name, s in spec.items():
            for dep in compose28.dependencies(spec)[name]:
                assert started_at(ours_raw[name]) >= started_at(ours_raw[dep]), (name, dep)
    finally:
        subprocess.run(base + ["down", "-v", "-t", "1"], capture_output=True, env=env, timeout=600)
        cleanup(project)


def test_a_bad_compose_file_is_refused_at_start_with_file_line_and_key(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  a:\n    image: x\n    privileged: true\n")
    cfg = tmp_path / "em.yaml"
    cfg.write_text(f"grpc: {{address: 127.0.0.1:{free_port()}}}\nhttp: {{address: 127.0.0.1:{free_port()}}}\n"
                   f"services: {{file: {bad}}}\n")
    r = subprocess.run([str(build_dir() / "env_manager/env-manager"), "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert f"{bad}:4:5" in r.stderr + r.stdout and "services.a.privileged" in r.stderr + r.stdout
    # With the option the key is a warning, and `config validate` agrees with the daemon.
    cli = str(build_dir() / CLI_REL)
    r = subprocess.run([cli, "config", "validate", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "services.a.privileged" in r.stdout + r.stderr
    cfg.write_text(cfg.read_text().replace("services: {file:", "services: {compose_unsupported: warn, file:"))
    r = subprocess.run([cli, "config", "validate", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_services_import_prints_yaml_that_env_manager_reads_back(tmp_path):
    cli = str(build_dir() / CLI_REL)
    src = ROOT / "deploy/config/services.local.compose.yml"
    r = subprocess.run([cli, "services", "import", str(src), "--project", "imported"], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, REDIS_PORT="16379"))
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert doc["project"] == "imported" and doc["network"] == "imported_default"
    assert doc["services"]["redis"]["ports"] == ["127.0.0.1:16379:6379/tcp"]
    assert doc["services"]["redis"]["healthcheck"]["kind"] == "redis"
    assert doc["services"]["ollama"]["required"] is False
    out = tmp_path / "services.yaml"
    out.write_text(r.stdout)
    r = subprocess.run([cli, "config", "validate", str(out), "--json"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["ok"] is True
    # A file env-manager would refuse: exit 2, the message on stderr, nothing on stdout.
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  a:\n    image: x\n    depends_on: [b]\n")
    r = subprocess.run([cli, "services", "import", str(bad)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stdout == ""
    assert f"{bad}:4:18" in r.stderr and "unknown service 'b'" in r.stderr
