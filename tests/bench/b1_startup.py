#!/usr/bin/env python3
"""B1: cold start of the nine-service local stack until every service is healthy.

Compares, in one run on one machine:
  env-manager  StartServices over gRPC, from the call to the closing summary;
  floor        the longest dependency chain of (raw Docker create+start latency of that
               service's container through the Engine API, measured now) + (the
               service's own start delay);
  compose      docker-compose up -d on an equivalent compose file (healthchecks inside
               the containers, depends_on: service_healthy), until Docker reports all
               nine healthy.
Each run starts from no containers (images are local). Prints a table and writes
build/bench/b1_startup.json. Usage: b1_startup.py [--runs N]"""

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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "python" / "tests"))
sys.path.insert(0, str(HERE))
from docker_engine import engine, free_port  # noqa: E402
from envstack import containers, docker, local_stack, remove_project, write_stack  # noqa: E402

BUILD = Path(os.environ.get("DSPY_BUILD_DIR", ROOT / "build" / "release"))


def delay_of(svc):
    return float(svc.get("environment", {}).get("START_DELAY", 0))


def floor_seconds(doc, network):
    """Raw create+start latency per service (same image, command, env, ports, network),
    then the longest dependency chain of latency + start delay."""
    raw = {}
    for name, svc in doc["services"].items():
        body = {"Image": svc["image"], "Env": [f"{k}={v}" for k, v in svc.get("environment", {}).items()],
                "HostConfig": {"NetworkMode": network, "PortBindings": {}}, "ExposedPorts": {}}
        if "command" in svc:
            body["Cmd"] = svc["command"]
        for p in svc.get("ports", []):
            ip, host, cont = p.split(":")
            body["ExposedPorts"][f"{cont}/tcp"] = {}
            body["HostConfig"]["PortBindings"][f"{cont}/tcp"] = [{"HostIp": ip, "HostPort": host}]
        t0 = time.perf_counter()
        st, data = engine("POST", "/containers/create", body)
        assert st == 201, data
        cid = json.loads(data)["Id"]
        st, data = engine("POST", f"/containers/{cid}/start")
        assert st == 204, data
        raw[name] = time.perf_counter() - t0
        engine("DELETE", f"/containers/{cid}?force=1")
    memo = {}

    def chain(name):
        if name not in memo:
            svc = doc["services"][name]
            deps = svc.get("depends_on", {})
            memo[name] = raw[name] + delay_of(svc) + max((chain(d) for d in deps), default=0.0)
        return memo[name]

    return max(chain(n) for n in doc["services"]), raw


def run_env_manager(doc, stubs_dir):
    sys.path.insert(0, stubs_dir)
    import grpc
    from env_manager.v1 import env_manager_pb2 as pb, env_manager_pb2_grpc as rpc

    work = Path(tempfile.mkdtemp(prefix="dspy-b1-"))
    stack = write_stack(work, doc)
    port = free_port()
    cfg = work / "em.yaml"
    cfg.write_text(f"grpc: {{address: 127.0.0.1:{port}}}\nhttp: {{address: 127.0.0.1:{free_port()}}}\n"
                   f"services: {{file: {stack}}}\nlifecycle: {{max_concurrent: 9}}\n")
    proc = subprocess.Popen([str(BUILD / "env_manager/env-manager"), "--config", str(cfg)],
                            stdout=open(work / "log", "wb"), stderr=subprocess.STDOUT)
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(ch).result(timeout=10)
        stub = rpc.EnvManagerServiceStub(ch)
        t0 = time.perf_counter()
        last = None
        for u in stub.StartServices(pb.StartServicesRequest(), timeout=120):
            last = u
        took = time.perf_counter() - t0
        assert last.status == "completed" and last.message.startswith("9/9"), last.message
        rss = int(open(f"/proc/{proc.pid}/status").read().split("VmRSS:")[1].split()[0]) * 1024
        return took, rss
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def compose_file(doc, interval):
    services = {}
    for name, svc in doc["services"].items():
        hc = svc["healthcheck"]
        port = hc["port"]
        if hc["kind"] == "redis":
            test = ["CMD", "/usr/bin/redis-cli", "-p", str(port), "ping"]
        elif hc["kind"] == "http":
            test = ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}{hc['path']}"]
        else:
            test = ["CMD-SHELL", f"nc -w 1 127.0.0.1 {port} </dev/null"]
        out = {"image": svc["image"], "environment": svc.get("environment", {}),
               "healthcheck": {"test": test, "interval": interval, "timeout": "1s", "retries": 300},
               "networks": ["default"]}
        if "command" in svc:
            out["command"] = [part.replace("$", "$$") for part in svc["command"]]  # no compose interpolation
        if svc.get("ports"):
            out["ports"] = svc["ports"]
        if svc.get("depends_on"):
            out["depends_on"] = {d: {"condition": "service_healthy"} for d in svc["depends_on"]}
        services[name] = out
    return {"version": "2.4", "services": services}


def run_compose(doc, interval):
    import yaml

    work = Path(tempfile.mkdtemp(prefix="dspy-b1-compose-"))
    f = work / "docker-compose.yml"
    f.write_text(yaml.safe_dump(compose_file(doc, interval), sort_keys=False))
    project = doc["project"] + "-compose"
    base = ["docker-compose", "-p", project, "-f", str(f)]
    env = dict(os.environ, DOCKER_HOST="unix:///var/run/docker.sock", COMPOSE_INTERACTIVE_NO_CLI="1")
    t0 = time.perf_counter()
    subprocess.run(base + ["up", "-d"], check=True, capture_output=True, env=env, timeout=300)
    while True:
        ids = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}").split()
        states = [docker("inspect", "-f", "{{.State.Health.Status}}", i) for i in ids] if ids else []
        if len(states) == 9 and all(s == "healthy" for s in states):
            break
        if time.perf_counter() - t0 > 300:
            raise RuntimeError("compose stack not healthy in 300 s")
        time.sleep(0.05)
    took = time.perf_counter() - t0
    subprocess.run(base + ["down", "-v", "-t", "1"], check=True, capture_output=True, env=env, timeout=300)
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from grpc_tools import protoc

    stubs = tempfile.mkdtemp(prefix="dspy-b1-stubs-")
    protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={stubs}", f"--grpc_python_out={stubs}",
                 "env_manager/v1/env_manager.proto"])
    ours, floors, compose1s, compose100 = [], [], [], []
    rss = 0
    for i in range(args.runs):
        doc = local_stack()
        try:
            docker("network", "create", doc["network"])
            floor, raw = floor_seconds(doc, doc["network"])
            floors.append(floor)
            docker("network", "rm", doc["network"])
            took, rss = run_env_manager(doc, stubs)
            ours.append(took)
        finally:
            remove_project(doc["project"])
        compose1s.append(run_compose(local_stack(), "1s"))
        compose100.append(run_compose(local_stack(), "100ms"))
        print(f"run {i + 1}: env-manager {ours[-1]:.2f}s, floor {floor:.2f}s, "
              f"compose(1s) {compose1s[-1]:.2f}s, compose(100ms) {compose100[-1]:.2f}s", flush=True)
    med = statistics.median
    result = {
        "benchmark": "B1 startup, nine-service local stack",
        "runs": args.runs,
        "env_manager_s": ours, "floor_s": floors, "compose_1s_interval_s": compose1s,
        "compose_100ms_interval_s": compose100,
        "median": {"env_manager_s": med(ours), "floor_s": med(floors), "overhead_s": med(ours) - med(floors),
                   "compose_1s_interval_s": med(compose1s), "compose_100ms_interval_s": med(compose100),
                   "speedup_vs_best_compose": min(med(compose1s), med(compose100)) / med(ours)},
        "env_manager_rss_bytes_after_start": rss,
        "machine": {"cores": os.cpu_count(), "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
    }
    out = BUILD / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "b1_startup.json").write_text(json.dumps(result, indent=2))
    m = result["median"]
    print(f"\n{'':28}{'median':>10}")
    print(f"{'env-manager (ours)':28}{m['env_manager_s']:>9.2f}s")
    print(f"{'floor (critical path)':28}{m['floor_s']:>9.2f}s")
    print(f"{'overhead over floor':28}{m['overhead_s'] * 1000:>8.0f}ms")
    print(f"{'docker-compose, 1s checks':28}{m['compose_1s_interval_s']:>9.2f}s")
    print(f"{'docker-compose, 100ms checks':28}{m['compose_100ms_interval_s']:>9.2f}s")
    print(f"{'speedup vs best compose':28}{m['speedup_vs_best_compose']:>9.2f}x")
    print(f"env-manager RSS after start: {rss / 1e6:.1f} MB; JSON: {out / 'b1_startup.json'}")


if __name__ == "__main__":
    main()
