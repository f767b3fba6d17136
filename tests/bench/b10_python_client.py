#!/usr/bin/env python3
"""B10: what the Python package costs over raw grpc.aio stubs, in one run against one
orchestrator (release build, a `noop` class so the executor costs nothing):

  round trip  submit + wait for the final result, one task at a time: the package's
              `await (await c.submit(...)).result()` vs raw stubs (SubmitTask, then
              StreamTaskResults for that id until it is final), interleaved in rounds so
              drift hits both alike; p50/p99 and the ratio (target <= 1.2x);
  batch       N submissions: `submit_many` (SubmitTasks, 1,000 per call, 4 calls in
              flight) vs the same raw SubmitTasks calls; tasks/s and the ratio; and,
              for reference, N raw single SubmitTask calls with 64 in flight.
Writes build/release/bench/b10_python_client.json. Usage: b10_python_client.py [--rounds R] [--batch N]"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc.aio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = Path(os.environ.get("DSPY_BUILD_DIR", ROOT / "build" / "release"))
sys.path.insert(0, str(ROOT / "python" / "tests"))

from dspy_agent_infra import OrchestratorClient, TaskSpec  # noqa: E402
from dspy_agent_infra._pb.orchestrator.v1 import orchestrator_pb2 as pb  # noqa: E402
from dspy_agent_infra._pb.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

CONFIG = """grpc:
  address: {addr}
http:
  address: {http}
store:
  dir: {dir}/store
tasks:
  classes:
    fast:
      executor: noop
      limiter: {{kind: fixed, initial: 64, max: 64}}
"""


def free_port():
    from conftest import _free_port

    return _free_port()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def raw_round_trip(stub):
    req = pb.SubmitTaskRequest(id=f"raw-{uuid.uuid4().hex}")
    setattr(req, "class", "fast")
    await stub.SubmitTask(req, timeout=30)
    async for r in stub.StreamTaskResults(pb.StreamTaskResultsRequest(task_ids=[req.id], include_completed=True)):
        if r.status in ("completed", "failed", "cancelled"):
            return


async def package_round_trip(client):
    await (await client.submit("fast")).result()


async def main(rounds, batch):
    tmp = Path(tempfile.mkdtemp(prefix="dspy-b10-"))
    addr, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    (tmp / "orch.yaml").write_text(CONFIG.format(addr=addr, http=http, dir=tmp))
    log = open(tmp / "orchestrator.log", "wb")
    daemon = subprocess.Popen([str(BUILD / "orchestrator/orchestrator"), "--config", str(tmp / "orch.yaml")],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        client = OrchestratorClient(addr)
        await client.connect(timeout=30)
        channel = grpc.aio.insecure_channel(addr)
        await channel.channel_ready()
        stub = pb_grpc.OrchestratorServiceStub(channel)
        for _ in range(50):  # warm both paths up
            await raw_round_trip(stub)
            await package_round_trip(client)

        raw, pkg = [], []
        for _ in range(rounds):  # interleaved: one of each per round
            t0 = time.perf_counter()
            await raw_round_trip(stub)
            t1 = time.perf_counter()
            await package_round_trip(client)
            t2 = time.perf_counter()
            raw.append((t1 - t0) * 1e6)
            pkg.append((t2 - t1) * 1e6)

        gate = asyncio.Semaphore(64)

        def request(prefix):
            req = pb.SubmitTaskRequest(id=f"{prefix}-{uuid.uuid4().hex}")
            setattr(req, "class", "fast")
            return req

        async def raw_submit(i):
            async with gate:
                await stub.SubmitTask(request("raws"), timeout=30)

        t0 = time.perf_counter()
        await asyncio.gather(*(raw_submit(i) for i in range(batch)))
        raw_single = batch / (time.perf_counter() - t0)

        batch_gate = asyncio.Semaphore(4)

        async def raw_batch_call(chunk):
            async with batch_gate:
                r = await stub.SubmitTasks(pb.SubmitTasksRequest(tasks=chunk), timeout=60)
                assert r.accepted == len(chunk)

        t0 = time.perf_counter()  # building the requests is part of both sides' time
        chunks = [[request("rawb") for _ in range(min(1000, batch - i))] for i in range(0, batch, 1000)]
        await asyncio.gather(*(raw_batch_call(c) for c in chunks))
        raw_batch = batch / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        handles = await client.submit_many([TaskSpec("fast") for _ in range(batch)])
        pkg_batch = len(handles) / (time.perf_counter() - t0)
        finished = 0
        async for _ in client.as_completed(handles, timeout=300):
            finished += 1
        assert finished == batch

        out = {
            "rounds": rounds, "batch": batch,
            "round_trip_raw_us": {"p50": statistics.median(raw), "p99": pct(raw, 99)},
            "round_trip_package_us": {"p50": statistics.median(pkg), "p99": pct(pkg, 99)},
            "round_trip_ratio_p50": statistics.median(pkg) / statistics.median(raw),
            "single_raw_tasks_per_s": raw_single,
            "batch_raw_tasks_per_s": raw_batch, "batch_package_tasks_per_s": pkg_batch,
            "batch_ratio": raw_batch / pkg_batch,
        }
        await channel.close()
        await client.close()
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    dest = BUILD / "bench" / "b10_python_client.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    ok = out["round_trip_ratio_p50"] <= 1.2
    print(f"round trip p50: package {out['round_trip_package_us']['p50']:.0f} us vs raw "
          f"{out['round_trip_raw_us']['p50']:.0f} us = {out['round_trip_ratio_p50']:.2f}x "
          f"({'within' if ok else 'OVER'} the 1.2x target); batch: {pkg_batch:.0f} tasks/s "
          f"(raw SubmitTasks {raw_batch:.0f}/s, raw single SubmitTask x64 {raw_single:.0f}/s)")
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--batch", type=int, default=5000)
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.rounds, a.batch)))
