#!/usr/bin/env python3
"""B7: Slurm submission and tracking cost with N tracked jobs (default 1,000).

In one run on one machine, against the test environment's Slurm:
  baseline     a bare loop of sbatch --parsable (one after the other), jobs/s;
  orchestrator N gpu_slurm tasks submitted over gRPC (16 clients) until every one has
               its Slurm job id, jobs/s;
  tracking     with all N jobs tracked and a fixed 1 s tick (poll_min = poll_max = 1000
               ms): Slurm commands per tick, counted by wrappers on the commands' path
               (target: exactly one squeue per tick, nothing else), and the
               orchestrator's CPU over the window from /proc (its own threads, and the
               Slurm commands it ran, which are its children), target < 5 % of a core.
The jobs sleep (most stay PENDING on a small node) and are cancelled at the end.
Writes build/release/bench/b7_slurm.json. Usage: b7_slurm.py [--jobs N] [--window S]"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "python" / "tests"))
BUILD = Path(os.environ.get("DSPY_BUILD_DIR", ROOT / "build" / "release"))
JOB_NAME = "dspy-b7"
TICK = os.sysconf("SC_CLK_TCK")


def stubs(tmp):
    from grpc_tools import protoc

    inc = Path(protoc.__file__).parent / "_proto"
    tmp.mkdir(parents=True, exist_ok=True)
    assert protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{inc}", f"--python_out={tmp}", f"--grpc_python_out={tmp}",
                        "orchestrator/v1/orchestrator.proto"]) == 0
    sys.path.insert(0, str(tmp))
    from orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
    return orchestrator_pb2, orchestrator_pb2_grpc


def cpu_seconds(pid):
    """(own utime+stime, reaped children's cutime+cstime) in seconds."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK


def metric(http, name):
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--baseline", type=int, default=200, help="sbatch calls in the bare loop")
    ap.add_argument("--window", type=float, default=30.0, help="seconds of steady tracking measured")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dspy-b7-"))
    pb, rpc = stubs(tmp / "stubs")
    import grpc

    # Bare sbatch loop: the floor of one submission.
    t0 = time.monotonic()
    for _ in range(args.baseline):
        subprocess.run(["sbatch", "--parsable", f"--job-name={JOB_NAME}", "--output=/dev/null", "--wrap", "sleep 900"],
                       check=True, capture_output=True)
    bare = args.baseline / (time.monotonic() - t0)
    subprocess.run(["scancel", f"--name={JOB_NAME}"], check=False)

    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    calls = tmp / "calls"
    for cmd in ("sbatch", "squeue", "sacct", "scontrol", "scancel"):
        w = bin_dir / cmd
        w.write_text(f'#!/bin/sh\nprintf "%s\\n" "{cmd}" >> {calls}\nexec {shutil.which(cmd)} "$@"\n')
        w.chmod(0o755)
    (tmp / "templates").mkdir()
    shutil.copy(ROOT / "deploy/slurm/command.sbatch", tmp / "templates")
    grpc_addr, http_addr = "127.0.0.1:25752", "127.0.0.1:25797"
    (tmp / "orch.yaml").write_text(f"""grpc:
  address: {grpc_addr}
http:
  address: {http_addr}
store:
  dir: {tmp / 'state'}
tasks:
  classes:
    gpu_slurm:
      executor: slurm
      limiter: {{kind: fixed, initial: {args.jobs}, max: {args.jobs}}}
      retry: {{max_attempts: 1}}
slurm:
  templates_dir: {tmp / 'templates'}
  bin_dir: {bin_dir}
  poll_min_ms: 1000
  poll_max_ms: 1000
""")
    log = open(tmp / "orchestrator.log", "wb")
    proc = subprocess.Popen([str(BUILD / "orchestrator/orchestrator"), "--config", str(tmp / "orch.yaml")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://{http_addr}/health", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "orchestrator did not start"
                time.sleep(0.05)
        ch = grpc.insecure_channel(grpc_addr)
        stub = rpc.OrchestratorServiceStub(ch)

        def submit(i):
            req = pb.SubmitTaskRequest(id=f"b7-{i}", payload={"command": "sleep 900", "job_name": JOB_NAME})
            setattr(req, "class", "gpu_slurm")
            assert stub.SubmitTask(req, timeout=60).success

        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(submit, range(args.jobs)))
        while metric(http_addr, "slurm_jobs_submitted_total") < args.jobs:
            assert time.monotonic() - t0 < 600, "submissions did not finish"
            time.sleep(0.05)
        orch_rate = args.jobs / (time.monotonic() - t0)
        while metric(http_addr, "orchestrator_slurm_tracked_jobs") < args.jobs:
            time.sleep(0.1)
        time.sleep(2.5)  # past the burst's short ticks: the interval is at its 1 s maximum

        def counts():
            c = {}
            for line in calls.read_text().splitlines():
                c[line] = c.get(line, 0) + 1
            return c

        c0, k0, cpu0, w0 = counts(), metric(http_addr, "orchestrator_slurm_poll_ticks_total"), cpu_seconds(proc.pid), \
            time.monotonic()
        time.sleep(args.window)
        c1, k1, cpu1, w1 = counts(), metric(http_addr, "orchestrator_slurm_poll_ticks_total"), cpu_seconds(proc.pid), \
            time.monotonic()
        last_tick = metric(http_addr, "orchestrator_slurm_last_tick_seconds")
        ticks = k1 - k0
        per_tick = {cmd: (c1.get(cmd, 0) - c0.get(cmd, 0)) / ticks for cmd in ("squeue", "sacct", "scontrol", "scancel",
                                                                               "sbatch")}
        wall = w1 - w0
        own = (cpu1[0] - cpu0[0]) / wall * 100
        children = (cpu1[1] - cpu0[1]) / wall * 100
        result = {
            "jobs": args.jobs, "bare_sbatch_jobs_per_s": round(bare, 1),
            "orchestrator_jobs_per_s": round(orch_rate, 1), "ratio_to_bare": round(orch_rate / bare, 2),
            "window_s": round(wall, 1), "ticks": ticks, "ticks_per_s": round(ticks / wall, 2),
            "calls_per_tick": per_tick, "last_tick_s": last_tick,
            # A tick's squeue is counted when it starts, the tick when it ends: one in
            # flight at the window's edge shows as calls = ticks + 1.
            "squeue_calls": c1.get("squeue", 0) - c0.get("squeue", 0), "other_calls":
                sum(c1.get(k, 0) - c0.get(k, 0) for k in ("sacct", "scontrol", "scancel", "sbatch")),
            "orchestrator_cpu_pct_of_core": round(own, 2), "slurm_commands_cpu_pct_of_core": round(children, 2),
            "rss_mb": round(int(Path(f"/proc/{proc.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024, 1),
        }
        print(json.dumps(result, indent=2))
        out = BUILD / "bench"
        out.mkdir(parents=True, exist_ok=True)
        (out / "b7_slurm.json").write_text(json.dumps(result, indent=2))
        ch.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run(["scancel", f"--name={JOB_NAME}"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
