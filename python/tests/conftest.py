"""Fixtures: Python stubs generated from proto/, and both daemons started from the build."""

import os
import signal
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Nothing here forks a process that goes on using gRPC; its fork handlers only risk hangs.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc  # noqa: E402
import pytest

ROOT = Path(__file__).resolve().parents[2]


# A daemon must not outlive a crashed test run: setpriv gives it SIGKILL when pytest
# dies, then execs it (same PID). Not a Python pre-exec hook: that makes Python fork and
# run gRPC's fork handlers, which deadlocked this process once (seen in a CI run).
_DIE_WITH_PARENT = ["/usr/bin/setpriv", "--pdeathsig", "KILL"]


_HANDED_OUT = set()


def _free_port():
    """A free port below the kernel's ephemeral range (32768-60999): an outgoing
    connection cannot take it between this check and the daemon's bind. Never the same
    port twice in one session: a port handed out for a container or a daemon that has not
    bound it yet would otherwise pass the check again (seen in CI: an orchestrator's HTTP
    port already taken)."""
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port in 20000-32000")


@pytest.fixture(scope="session")
def stubs():
    """Generates the contract's Python modules into a temp dir and imports them."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="dspy-pystubs-")
    protos = ["env_manager/v1/env_manager.proto", "orchestrator/v1/orchestrator.proto"]
    grpc_tools_include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        ["protoc", f"-I{ROOT / 'proto'}", f"-I{grpc_tools_include}", f"--python_out={out}", f"--grpc_python_out={out}"]
        + protos
    )
    assert rc == 0, "protoc failed on proto/"
    sys.path.insert(0, out)
    from env_manager.v1 import env_manager_pb2, env_manager_pb2_grpc
    from orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc

    class Stubs:
        em_pb2 = env_manager_pb2
        em_grpc = env_manager_pb2_grpc
        orch_pb2 = orchestrator_pb2
        orch_grpc = orchestrator_pb2_grpc

    return Stubs


class Daemon:
    def __init__(self, name, binary, extra_yaml="", env=None):
        build = os.environ.get("DSPY_BUILD_DIR")
        assert build, "DSPY_BUILD_DIR must point at the CMake build folder (scripts/test.sh sets it)"
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"dspy-py-{name}-"))
        self.config = self.dir / "config.yaml"
        self.extra_yaml = extra_yaml
        self.log = open(self.dir / "daemon.log", "wb")
        self.binary = str(Path(build) / binary)
        self.env = dict(os.environ, **(env or {}))
        self._first_start()

    def _first_start(self):
        self.grpc_addr = f"127.0.0.1:{_free_port()}"
        self.http_addr = f"127.0.0.1:{_free_port()}"
        self.config.write_text(
            f"grpc:\n  address: {self.grpc_addr}\nhttp:\n  address: {self.http_addr}\n"
            + (f"store:\n  dir: {self.dir / 'state'}\n" if self.name == "orchestrator" else "")
            + self.extra_yaml
        )
        self.starts_left = 2  # a port taken by a process outside this session: new ports
        self.proc = subprocess.Popen(_DIE_WITH_PARENT + [self.binary, "--config", str(self.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)

    def restart(self, kill_signal=signal.SIGTERM):
        """Stops the process (SIGTERM, or SIGKILL to simulate a crash) and starts it again."""
        self.proc.send_signal(kill_signal)
        self.proc.wait(timeout=10)
        self.starts_left = 0  # the same addresses after a restart, as the test expects
        self.proc = subprocess.Popen(_DIE_WITH_PARENT + [self.binary, "--config", str(self.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        self.wait_serving()

    def log_text(self):
        return (self.dir / "daemon.log").read_text(errors="replace")

    def channel(self):
        return grpc.insecure_channel(self.grpc_addr)

    def wait_serving(self, timeout=10.0):
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and self.starts_left > 0 and "cannot listen" in self.log_text():
                self.starts_left -= 1
                self.log.write(b"-- (test harness) address in use; new ports\n")
                self.log.flush()
                left = self.starts_left
                self._first_start()
                self.starts_left = left
                deadline = time.monotonic() + timeout
                continue
            assert self.proc.poll() is None, f"{self.name} exited: {(self.dir / 'daemon.log').read_text()}"
            try:
                with self.channel() as ch:
                    resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not serving within {timeout}s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _running(name, binary, extra_yaml=""):
    d = Daemon(name, binary, extra_yaml)
    d.wait_serving()
    return d


@pytest.fixture(scope="module")
def env_manager():
    from envstack import private_stack_yaml

    d = _running("env-manager", "env_manager/env-manager", private_stack_yaml())
    yield d
    d.stop()


@pytest.fixture(scope="module")
def orchestrator():
    d = _running("orchestrator", "orchestrator/orchestrator")
    yield d
    d.stop()
