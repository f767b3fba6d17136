#!/usr/bin/env python3
"""B1-28: cold start of a 28-service compose file until every service is healthy (or,
for the one-shot job, has exited 0). One file (python/tests/compose28.py), in one run:

  env-manager     services.file = the compose file; StartServices over gRPC, from the
                  call to its closing summary;
  docker-compose  `docker-compose up -d` (Debian's 1.29) on the same file, until Docker
                  reports every container healthy (or the job exited 0);
  floor           per service, alone on the machine: the Engine API's create+start call,
                  then the file's own health command run by exec in a bare loop until it
                  passes (the job: until it exits); summed along the longest dependency
                  chain of the file.

Each run starts from no containers (images are local). Prints a table and writes
build/bench/b1_28_compose.json. Usage: b1_28_compose.py [--runs N]"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "python" / "tests"))
sys.path.insert(0, str(HERE))
from docker_engine import engine, free_port  # noqa: E402
import compose28  # noqa: E402

BUILD = Path(os.environ.get("DSPY_BUILD_DIR", ROOT / "build" / "release"))
COMPOSE_ENV = dict(os.environ, DOCKER_HOST="unix:///var/run/docker.sock", COMPOSE_INTERACTIVE_NO_CLI="1")


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


def cleanup(project):
    ids = sh("docker", "ps", "-aq", "--filter", f"label=dev.dspy-agent.project={project}").split()
    ids += sh("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").split()
    ids += sh("docker", "ps", "-aq", "--filter", f"label=dspy-b1-28={project}").split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    for kind in ("network", "volume"):
        names = sh("docker", kind, "ls", "-q", "--filter", f"name={project}_").split()
        if names:
            subprocess.run(["docker", kind, "rm", *names], capture_output=True)


def resolved(path, project):
    """The file as env-manager reads it (interpolated, merged), via `services import`."""
    out = sh(str(BUILD / "cli/dspy-agent"), "services", "import", str(path), "--project", project)
    return yaml.safe_load(out)


def floor_seconds(doc, project):
    """Per service alone: create+start, then its health command by exec until it passes
    (the job: until it exits). The longest chain of those along depends_on."""
    network = doc["network"]
    sh("docker", "network", "create", network)
    own = {}
    try:
        for name, svc in doc["services"].items():
            body = {"Image": svc["image"], "Env": [f"{k}={v}" for k, v in svc.get("environment", {}).items()],
                    "Labels": {"dspy-b1-28": project},
                    "HostConfig": {"NetworkMode": network}}
            if svc.get("command"):
                body["Cmd"] = svc["command"]
            if svc.get("entrypoint"):
                body["Entrypoint"] = svc["entrypoint"]
            if svc.get("user"):
                body["User"] = svc["user"]
            if svc.get("working_dir"):
                body["WorkingDir"] = svc["working_dir"]
            st, data = engine("POST", "/containers/create", body)
            assert st == 201, data
            cid = json.loads(data)["Id"]
            t0 = time.perf_counter()
            st, data = engine("POST", f"/containers/{cid}/start")
            assert st == 204, data
            check = svc.get("healthcheck", {}).get("command")
            while True:
                if check:
                    st, data = engine("POST", f"/containers/{cid}/exec",
                                      {"Cmd": check, "AttachStdout": True, "AttachStderr": True})
                    eid = json.loads(data)["Id"]
                    engine("POST", f"/exec/{eid}/start", {"Detach": False, "Tty": False})
                    st, data = engine("GET", f"/exec/{eid}/json")
                    if json.loads(data)["ExitCode"] == 0:
                        break
                else:
                    st, data = engine("GET", f"/containers/{cid}/json")
                    if not json.loads(data)["State"]["Running"]:
                        break
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError(f"{name}: no passing probe in 60 s")
            own[name] = time.perf_counter() - t0
            engine("DELETE", f"/containers/{cid}?force=1&v=1")
    finally:
        subprocess.run(["docker", "network", "rm", network], capture_output=True)
    memo = {}

    def chain(n):
        if n not in memo:
            deps = doc["services"][n].get("depends_on", {})
            memo[n] = own[n] + max((chain(d) for d in deps), default=0.0)
        return memo[n]

    return max(chain(n) for n in doc["services"]), own


def run_env_manager(path, project, stubs_dir):
    sys.path.insert(0, stubs_dir)
    import grpc
    from env_manager.v1 import env_manager_pb2 as pb, env_manager_pb2_grpc as rpc

    work = Path(tempfile.mkdtemp(prefix="dspy-b1-28-"))
    port = free_port()
    cfg = work / "em.yaml"
    cfg.write_text(f"grpc: {{address: 127.0.0.1:{port}}}\nhttp: {{address: 127.0.0.1:{free_port()}}}\n"
                   f"services: {{file: {path}, compose_project: {project}}}\n"
                   "lifecycle: {max_concurrent: 28, health_timeout_seconds: 300}\n")
    proc = subprocess.Popen([str(BUILD / "env_manager/env-manager"), "--config", str(cfg)],
                            stdout=open(work / "log", "wb"), stderr=subprocess.STDOUT)
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(ch).result(timeout=10)
        stub = rpc.EnvManagerServiceStub(ch)
        t0 = time.perf_counter()
        last = None
        for u in stub.StartServices(pb.StartServicesRequest(), timeout=600):
            last = u
        took = time.perf_counter() - t0
        assert last.status == "completed" and last.message.startswith("28/28"), last.message
        rss = int(open(f"/proc/{proc.pid}/status").read().split("VmRSS:")[1].split()[0]) * 1024
        stub.StopServices(pb.StopServicesRequest(timeout_seconds=1), timeout=300)
        return took, rss
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def run_compose(path, project):
    base = ["docker-compose", "-p", project, "-f", str(path)]
    t0 = time.perf_counter()
    subprocess.run(base + ["up", "-d"], check=True, capture_output=True, env=COMPOSE_ENV, timeout=600)
    flt = json.dumps({"label": [f"com.docker.compose.project={project}"]})
    from urllib.parse import quote
    while True:
        st, data = engine("GET", f"/containers/json?all=1&filters={quote(flt)}")
        cs = json.loads(data)
        done = len(cs) == 28 and all("(healthy)" in c["Status"] or
                                     (c["State"] == "exited" and c["Status"].startswith("Exited (0)")) for c in cs)
        if done:
            break
        if time.perf_counter() - t0 > 600:
            raise RuntimeError("compose stack not healthy in 600 s")
        time.sleep(0.05)
    took = time.perf_counter() - t0
    subprocess.run(base + ["down", "-v", "-t", "1"], check=True, capture_output=True, env=COMPOSE_ENV, timeout=600)
    return took


def settle():
    """Waits for the load of the previous step to pass (1-minute load below 1.5, at most 60 s)."""
    deadline = time.monotonic() + 60
    while os.getloadavg()[0] > 1.5 and time.monotonic() < deadline:
        time.sleep(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from grpc_tools import protoc

    stubs = tempfile.mkdtemp(prefix="dspy-b1-28-stubs-")
    protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={stubs}", f"--grpc_python_out={stubs}",
                 "env_manager/v1/env_manager.proto"])
    ours, theirs, floors = [], [], []
    rss = 0
    own = {}
    for i in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="dspy-b1-28-file-"))
        path = compose28.write(work, {"REDIS_PORT": free_port(), "GATEWAY_PORT": free_port(),
                                      "METRICS_PORT": free_port()})
        project = f"dspyb128{os.getpid()}r{i}"
        try:
            settle()
            floor, own = floor_seconds(resolved(path, project), project)
            floors.append(floor)
            cleanup(project)
            settle()
            took, rss = run_env_manager(path, project, stubs)
            ours.append(took)
            cleanup(project)
            settle()
            theirs.append(run_compose(path, project))
        finally:
            cleanup(project)
        print(f"run {i + 1}: env-manager {ours[-1]:.2f}s, floor {floors[-1]:.2f}s, docker-compose {theirs[-1]:.2f}s",
              flush=True)
    med = statistics.median
    result = {
        "benchmark": "B1-28 startup, 28-service compose file",
        "runs": args.runs, "env_manager_s": ours, "floor_s": floors, "docker_compose_s": theirs,
        "floor_per_service_s_last_run": own,
        "median": {"env_manager_s": med(ours), "floor_s": med(floors), "overhead_s": med(ours) - med(floors),
                   "docker_compose_s": med(theirs), "speedup_vs_compose": med(theirs) / med(ours)},
        "env_manager_rss_bytes_after_start": rss,
        "docker_compose": sh("docker-compose", "version", "--short").strip(),
        "machine": {"cores": os.cpu_count(), "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
    }
    out = BUILD / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "b1_28_compose.json").write_text(json.dumps(result, indent=2))
    m = result["median"]
    print(f"\n{'':28}{'median':>10}")
    print(f"{'env-manager (ours)':28}{m['env_manager_s']:>9.2f}s")
    print(f"{'floor (critical path)':28}{m['floor_s']:>9.2f}s")
    print(f"{'overhead over floor':28}{m['overhead_s'] * 1000:>8.0f}ms")
    print(f"{'docker-compose ' + result['docker_compose']:28}{m['docker_compose_s']:>9.2f}s")
    print(f"{'speedup vs compose':28}{m['speedup_vs_compose']:>9.2f}x")
    print(f"env-manager RSS after start: {rss / 1e6:.1f} MB; JSON: {out / 'b1_28_compose.json'}")


if __name__ == "__main__":
    main()
