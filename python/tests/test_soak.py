"""Soak (issue 17): both daemons under mixed load for DSPY_SOAK_SECONDS (60 in the test
command; `bash scripts/soak.sh` runs the 10-minute version): process tasks from four
submitters, a workflow run every two seconds, container tasks through env-manager,
events relayed to the real Kafka broker and read live over StreamEvents, and a service
container killed (and restarted by env-manager) at regular intervals. Every 2 s it
samples each daemon's RSS, open descriptors and threads and the size of the store's
SQLite WAL; at the end the later samples must be flat against the earlier ones, and
nothing may be lost (every task and run finished, the outbox drained to Kafka).
Samples go to .state/artifacts/soak-<pid>.csv."""

import csv
import json
import os
import statistics
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from envstack import ROOT, EnvManager, docker, eventually
from test_orchestrator import Orchestrator, classes_yaml
from test_workflows import create, node, edges

SECONDS = float(os.environ.get("DSPY_SOAK_SECONDS", "60"))
SAMPLE_EVERY = 2.0
# Sanitizer builds keep freed memory in quarantine (ASan: up to 256 MB), so their RSS
# says nothing about leaks (LeakSanitizer checks those at exit); their descriptors,
# threads and WAL are still checked.
SANITIZED = any(part in os.environ.get("DSPY_BUILD_DIR", "") for part in ("asan", "tsan"))


def proc_sample(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def wal_mb(store_dir):
    return sum(p.stat().st_size for p in Path(store_dir).glob("*.db-wal")) / (1024 * 1024)


def metrics_text(o):
    return urllib.request.urlopen(f"http://{o.daemon.http_addr}/metrics", timeout=10).read().decode()


def metric(o, name):
    for line in metrics_text(o).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def flat(samples, key, slack):
    """The median of the last third against the median of the third after warm-up."""
    n = len(samples)
    early = [s[key] for s in samples[n // 3: 2 * n // 3]]
    late = [s[key] for s in samples[2 * n // 3:]]
    return statistics.median(early), statistics.median(late), statistics.median(late) <= statistics.median(early) + slack


@pytest.mark.soak
@pytest.mark.release_pass
def test_soak_mixed_load_keeps_memory_descriptors_threads_and_wal_flat(stubs):
    assert os.environ.get("KAFKA_BROKERS"), "the soak needs the test Kafka broker (scripts/test-env.sh up)"
    m = EnvManager(stubs)
    o = Orchestrator(stubs, classes_yaml("""    box:
      executor: container
      workload_class: cpu_short
      limiter: {kind: fixed, initial: 2, max: 2}
      retry: {max_attempts: 3, initial_interval_ms: 200}
""") + f"env_manager:\n  address: {m.daemon.grpc_addr}\n")
    stop = threading.Event()
    errors, submitted, runs, boxes, seen_events, kills = [], [], [], [], [0], [0]
    lock = threading.Lock()
    try:
        assert m.start(["redis", "redb"])[-1].status == "completed"
        wid = create(o, {"name": "soak", "nodes": [node("a", "echo", ["a"]), node("b", "echo", ["b"]),
                                                  node("c", "echo", ["${steps.a.exit_code}"])],
                         "edges": edges(("a", "c"), ("b", "c"))})

        def guarded(fn):
            def run():
                try:
                    fn()
                except Exception as e:  # reported at the end; the soak itself keeps going
                    errors.append(f"{fn.__name__}: {e!r}")
            return run

        def submitter(k):
            def submit_tasks():
                i = 0
                while not stop.is_set():
                    tid = f"soak-{k}-{i}"
                    o.submit(tid, command="echo", args=json.dumps([tid]))
                    with lock:
                        submitted.append(tid)
                    i += 1
                    stop.wait(0.1)
            submit_tasks.__name__ = f"submitter{k}"
            return submit_tasks

        def workflow_runs():
            while not stop.is_set():
                r = o.stub.StartWorkflowRun(o.pb.StartWorkflowRunRequest(workflow_id=wid), timeout=10)
                assert r.success, r.error
                runs.append(r.run_id)
                stop.wait(2)

        def container_tasks():
            i = 0
            while not stop.is_set():
                boxes.append(o.submit(f"soak-box-{i}", cls="box", command="greet").task_id)
                i += 1
                stop.wait(5)

        def events_reader():
            call = o.stub.StreamEvents(o.pb.StreamEventsRequest(since_timestamp=1))
            stop_reader = threading.Thread(target=lambda: (stop.wait(), call.cancel()), daemon=True)
            stop_reader.start()
            try:
                for _ in call:
                    seen_events[0] += 1
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.CANCELLED:
                    raise

        def service_kills():
            every = 60 if SECONDS >= 300 else max(10, SECONDS / 4)
            while not stop.wait(every):
                cid = m.status(["redb"])["redb"].container_id
                docker("kill", cid)
                kills[0] += 1

        workers = [threading.Thread(target=guarded(f), daemon=True)
                   for f in [submitter(k) for k in range(4)] + [workflow_runs, container_tasks, events_reader, service_kills]]
        for w in workers:
            w.start()
        samples, t0 = [], time.monotonic()
        store = o.daemon.dir / "state"
        while time.monotonic() - t0 < SECONDS:
            row = {"t": round(time.monotonic() - t0, 1), "tasks": len(submitted), "runs": len(runs),
                   "events_read": seen_events[0], "wal_mb": round(wal_mb(store), 2)}
            for name, d in (("orch", o.daemon), ("em", m.daemon)):
                for k, v in proc_sample(d.proc.pid).items():
                    row[f"{name}_{k}"] = round(v, 1) if isinstance(v, float) else v
            samples.append(row)
            if errors:
                break
            time.sleep(SAMPLE_EVERY)  # the sampling period
        stop.set()
        for w in workers:
            w.join(30)
        assert not errors, errors

        artifacts = ROOT / ".state/artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        out = artifacts / f"soak-{os.getpid()}.csv"
        with out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(samples[0]))
            writer.writeheader()
            writer.writerows(samples)

        # Nothing lost: every task, container task and run finished well; the outbox drained.
        for t in submitted:
            assert o.wait_final(t, 120).status == "completed", t
        for b in boxes:
            assert o.wait_final(b, 120).status == "completed"
        for r in runs:
            eventually(lambda: o.stub.GetWorkflowRun(o.pb.GetWorkflowRunRequest(run_id=r), timeout=10).status
                       in ("succeeded", "failed"), 120, what=f"run {r} ended")
            assert o.stub.GetWorkflowRun(o.pb.GetWorkflowRunRequest(run_id=r), timeout=10).status == "succeeded"
        eventually(lambda: (lambda v: v == 0 or None)(metric(o, "orchestrator_outbox_pending_events")), 120,
                   interval=0.5, what="every event delivered to Kafka (outbox empty): "
                   + " ".join(line for line in metrics_text(o).splitlines() if line.startswith("orchestrator_outbox")
                              or line.startswith("orchestrator_events")))
        assert kills[0] >= 1
        # Every kill was noticed and the service restarted in place (healthy again).
        restarted = eventually(lambda: (lambda s: s if s.status == "running" and int(s.health_checks["restarts"]) >= kills[0]
                                        else None)(m.status(["redb"])["redb"]), 60, what="redb restarted after each kill")
        restarts = int(restarted.health_checks["restarts"])

        assert len(samples) >= 12, "too few samples to judge"
        checks = {}
        for d in ("orch", "em"):
            checks[f"{d}_fds"] = flat(samples, f"{d}_fds", 16)
            checks[f"{d}_threads"] = flat(samples, f"{d}_threads", 12)
            if not SANITIZED:
                checks[f"{d}_rss_mb"] = flat(samples, f"{d}_rss_mb", max(8, 0.1 * samples[len(samples) // 3][f"{d}_rss_mb"]))
        wal_max = max(s["wal_mb"] for s in samples)
        summary = ", ".join(f"{k} {a:g} -> {b:g}" for k, (a, b, _) in checks.items())
        print(f"soak {SECONDS:.0f} s: {len(submitted)} tasks, {len(runs)} workflow runs, {len(boxes)} container "
              f"tasks, {seen_events[0]} events read live, redb killed {kills[0]}x and restarted {restarts}x, 0 lost; {summary}; "
              f"WAL max {wal_max:.1f} MB; samples in {out}")
        grew = {k: (a, b) for k, (a, b, ok) in checks.items() if not ok}
        assert not grew, f"grew under steady load (median middle third -> last third): {grew}"
        assert wal_max < 64, f"the WAL reached {wal_max:.1f} MB: checkpoints are not keeping up"
        assert samples[-1]["wal_mb"] <= max(8, 2 * statistics.median(s["wal_mb"] for s in samples))
    finally:
        stop.set()
        o.close()
        m.close()
