"""Helpers for env-manager integration tests: a private copy of the local nine-service
stack (kafka as a busybox listener) on free ports (so tests never collide with each other, a demo, or the test Kafka
broker), and small Docker CLI wrappers."""

import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from conftest import Daemon
from conftest import _free_port as free_port
from contract import SERVICE_STATUS_WORDS

ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"


def local_stack(changes=None):
    """The local stack with a unique project/network and fresh host ports.
    `changes` maps service name -> dict merged into its definition."""
    doc = yaml.safe_load((ROOT / "deploy/config/services.local.yaml").read_text())
    tag = uuid.uuid4().hex[:8]
    used = set()

    def distinct_port():
        while True:
            p = free_port()
            if p not in used:
                used.add(p)
                return p

    # The demo's kafka is a real broker (a JVM); these tests exercise env-manager, not
    # Kafka, so they run the busybox listener on its port, as the rest of the stack.
    kafka = doc["services"]["kafka"]
    kafka["image"] = "dspy-test/busybox:latest"
    kafka["command"] = doc["services"]["zookeeper"]["command"]
    kafka["environment"] = {"START_DELAY": "1.5", "PORT": "9092", "HEALTH_PATH": "/health"}
    doc["project"] = f"dspy-test-{tag}"
    doc["network"] = f"dspy-test-{tag}"
    for name, svc in doc["services"].items():
        ports = []
        for p in svc.get("ports", []):
            ip, _, container = p.split(":")
            ports.append(f"{ip}:{distinct_port()}:{container}")
        if ports:
            svc["ports"] = ports
        # Volumes are per project so that tests do not share data.
        svc["volumes"] = [f"{doc['project']}-{v}" if not v.startswith("/") else v for v in svc.get("volumes", [])]
        for key, value in (changes or {}).get(name, {}).items():
            if isinstance(value, dict) and isinstance(svc.get(key), dict):
                svc[key] = {**svc[key], **value}
            else:
                svc[key] = value
    return doc


def write_stack(directory, doc):
    path = Path(directory) / "services.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def private_stack_yaml(directory=None):
    """env-manager config lines naming a private copy of the local stack (nothing of it
    is started): an env-manager with the built-in stack would adopt the containers of a
    demo running on this machine's Docker, as both use the project dspy-agent."""
    directory = directory or tempfile.mkdtemp(prefix="dspy-stack-")
    return f"services:\n  file: {write_stack(directory, local_stack())}\n"


def docker(*args, check=True):
    r = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr}")
    return r.stdout.strip()


def containers(project, all_=True):
    out = docker("ps", *(["-a"] if all_ else []), "-q", "--no-trunc", "--filter", f"label=dev.dspy-agent.project={project}")
    return [c for c in out.splitlines() if c]


def inspect(container):
    return json.loads(docker("inspect", container))[0]


def remove_project(project):
    ids = containers(project)
    if ids:
        docker("rm", "-f", *ids, check=False)
    docker("network", "rm", project, check=False)
    vols = docker("volume", "ls", "-q", "--filter", f"name={project}-", check=False)
    if vols:
        docker("volume", "rm", "-f", *vols.split(), check=False)


def eventually(condition, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")


TASKS_YAML = """
tasks:
  classes:
    cpu_short: {capacity: 2, cpus: 0.5, memory: 64m, timeout_seconds: 30}
  commands:
    greet: {image: "dspy-test/busybox:latest", argv: [sh, -c, 'echo "hello $WHO"; echo warn >&2']}
    fail: {image: "dspy-test/busybox:latest", argv: [sh, -c, 'echo bad >&2; exit 4']}
    nap: {image: "dspy-test/busybox:latest", argv: [sleep], allow_args: true}
    net: {image: "dspy-test/busybox:latest", argv: [sh, -c, 'ip -o link | grep -v " lo:" | wc -l']}
"""


class EnvManager:
    """One env-manager daemon managing one private stack."""

    def __init__(self, stubs, changes=None, extra_yaml="", health_timeout=30, docker_host=None):
        self.stubs = stubs
        self.docker_host = docker_host  # a private engine (PrivateDocker), else the machine's
        self.doc = local_stack(changes)
        self.project = self.doc["project"]
        self.dir = Path(tempfile.mkdtemp(prefix="dspy-em-"))
        self.stack_path = write_stack(self.dir, self.doc)
        self.daemon = Daemon("env-manager", "env_manager/env-manager",
                             f"services:\n  file: {self.stack_path}\n"
                             f"lifecycle:\n  health_timeout_seconds: {health_timeout}\n"
                             + TASKS_YAML + extra_yaml,
                             env={"DOCKER_HOST": docker_host} if docker_host else None)
        self.daemon.wait_serving()
        self.channel = self.daemon.channel()
        self.stub = stubs.em_grpc.EnvManagerServiceStub(self.channel)
        self.pb = stubs.em_pb2

    def start(self, names=()):
        return list(self.stub.StartServices(self.pb.StartServicesRequest(service_names=list(names)), timeout=120))

    def status(self, names=()):
        services = self.stub.GetServicesStatus(self.pb.GetServicesStatusRequest(service_names=list(names)),
                                               timeout=30).services
        # Every answer any test sees is checked against the old clients' vocabulary.
        for name, st in services.items():
            assert st.status in SERVICE_STATUS_WORDS, f"{name}: status {st.status!r} is not an old client's word"
        return services

    def port(self, service):
        return int(self.doc["services"][service]["ports"][0].split(":")[1])

    def close(self):
        self.channel.close()
        self.daemon.stop()
        if not self.docker_host:  # a private engine is deleted whole by its owner
            remove_project(self.project)


class PrivateDocker:
    """A Docker engine of the test's own (scripts/private-docker.sh): stopping or
    restarting it never touches the machine's Docker or anyone's containers."""

    def __init__(self, images=("dspy-test/busybox:latest", "dspy-test/redis:latest")):
        # Short: containerd's unix socket lives below it.
        self.dir = tempfile.mkdtemp(prefix="dspy-dk-", dir="/tmp")
        self.host = f"unix://{self.dir}/docker.sock"
        self._run("up", *images)

    def _run(self, cmd, *args):
        subprocess.run(["bash", str(ROOT / "scripts/private-docker.sh"), cmd, self.dir, *args],
                       check=True, timeout=180)

    def stop(self):
        self._run("stop")

    def start(self):
        self._run("start")

    def docker(self, *args):
        r = subprocess.run([DOCKER, "-H", self.host, *args], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"docker -H {self.host} {' '.join(args)} failed: {r.stderr}")
        return r.stdout.strip()

    def close(self):
        self._run("down")
