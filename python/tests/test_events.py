"""StreamEvents against the real orchestrator: live events, replay from a time, type
filters, bad input (unknown types, a future time), a client that reads too slowly, and
the events' shape (the contract's fields plus id, sequence, source)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from envstack import eventually
from test_orchestrator import Orchestrator, classes_yaml


def events_yaml(extra=""):
    return classes_yaml() + extra


@pytest.fixture
def orch(stubs):
    made = []

    def make(extra=""):
        o = Orchestrator(stubs, events_yaml(extra))
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


def collect(o, want, request, timeout=20):
    """Reads StreamEvents until `want(events)` holds; returns the events."""
    got = []
    call = o.stub.StreamEvents(request, timeout=timeout)
    for ev in call:
        got.append(ev)
        if want(got):
            call.cancel()
            break
    return got


def test_live_events_follow_a_task_in_order(orch):
    o = orch()
    got = []
    start = time.time_ns()  # replay from now, then live: no race with the stream's start

    def reader():
        call = o.stub.StreamEvents(o.pb.StreamEventsRequest(since_timestamp_ns=start), timeout=30)
        for ev in call:
            if ev.resource_id == "live-1":
                got.append(ev)
            if len(got) == 3:
                call.cancel()
                return

    t = threading.Thread(target=reader)
    t.start()
    o.submit("live-1", command="echo", args='["hi"]')
    t.join(30)
    assert [e.event_type for e in got] == ["task_submitted", "task_started", "task_completed"]
    assert [e.sequence for e in got] == [1, 2, 3]
    assert len({e.event_id for e in got}) == 3
    assert all(e.source == "orchestrator" and e.data["resource_id"] == "live-1" for e in got)
    assert got[0].timestamp == got[0].timestamp_ns // 1_000_000_000
    assert got[0].timestamp_ns <= got[1].timestamp_ns <= got[2].timestamp_ns
    assert got[2].data["class"] == "cpu_short" and got[2].data["status"] == "completed"


def test_replay_from_a_time_then_live_with_a_type_filter(orch):
    o = orch()
    o.submit("old-1", command="echo", args='["a"]')
    o.wait_final("old-1")
    cut = time.time_ns()
    o.submit("new-1", command="echo", args='["b"]')
    o.wait_final("new-1")
    # Replay from before everything: both tasks' completions, in order.
    got = collect(o, lambda evs: len(evs) >= 2,
                  o.pb.StreamEventsRequest(event_types=["task_completed"], since_timestamp=1))
    assert [e.resource_id for e in got[:2]] == ["old-1", "new-1"]
    # Replay from the cut (nanoseconds): only the later task; then live events follow.
    seen = []

    def reader():
        call = o.stub.StreamEvents(o.pb.StreamEventsRequest(event_types=["task_*"], since_timestamp_ns=cut),
                                   timeout=30)
        for ev in call:
            seen.append((ev.resource_id, ev.event_type))
            if ("new-2", "task_completed") in seen:
                call.cancel()
                return

    t = threading.Thread(target=reader)
    t.start()
    eventually(lambda: ("new-1", "task_completed") in seen, 10, what="the replay reached new-1")
    o.submit("new-2", command="echo", args='["c"]')
    t.join(30)
    assert not any(r == "old-1" for r, _ in seen)
    assert seen[:3] == [("new-1", "task_submitted"), ("new-1", "task_started"), ("new-1", "task_completed")]
    assert ("new-2", "task_completed") in seen


def test_workflow_events_carry_the_run_id(orch):
    o = orch()
    spec = b'{"name": "ev", "nodes": [{"id": "r", "type": "reward", "reward": {"metric": "m"}}], "edges": []}'
    wf = o.stub.CreateWorkflow(o.pb.CreateWorkflowRequest(id="wf-ev", spec=spec), timeout=10)
    assert wf.success
    run = o.stub.StartWorkflowRun(o.pb.StartWorkflowRunRequest(workflow_id="wf-ev"), timeout=10)
    got = collect(o, lambda evs: any(e.event_type == "workflow_completed" for e in evs),
                  o.pb.StreamEventsRequest(event_types=["workflow_*"], since_timestamp=1))
    types = [e.event_type for e in got]
    assert types == ["workflow_started", "workflow_step_started", "workflow_reward", "workflow_step_completed",
                     "workflow_completed"]
    assert all(e.resource_id == run.run_id for e in got)
    assert [e.sequence for e in got] == [1, 2, 3, 4, 5]
    assert got[2].data["metric"] == "m"


def test_bad_filters_and_times_are_refused_with_a_reason(orch):
    o = orch()
    with pytest.raises(grpc.RpcError) as err:
        list(o.stub.StreamEvents(o.pb.StreamEventsRequest(event_types=["task_done"]), timeout=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'task_done'" in err.value.details() and "known:" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        list(o.stub.StreamEvents(o.pb.StreamEventsRequest(since_timestamp=int(time.time()) + 3600), timeout=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "in the future" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        list(o.stub.StreamEvents(o.pb.StreamEventsRequest(since_timestamp=-5), timeout=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Nothing changed: the daemon still serves and streams.
    o.submit("after-bad", command="echo", args='["x"]')
    assert o.wait_final("after-bad").status == "completed"


FAST_CLASS = """    fast:
      executor: noop
      limiter: {kind: fixed, initial: 32, max: 32}
"""


def test_a_client_that_reads_too_slowly_is_cut_off_not_buffered_forever(stubs):
    o = Orchestrator(stubs, classes_yaml(FAST_CLASS) + "events:\n  stream_buffer: 100\n")
    try:
        call = o.stub.StreamEvents(o.pb.StreamEventsRequest(since_timestamp_ns=time.time_ns()), timeout=120)
        # The client reads nothing while 2,000 tasks make 6,000 events: more than gRPC's
        # flow-control window and the stream's 100-event buffer can hold.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: o.submit(f"burst-{i}", cls="fast"), range(2000)))
        eventually(lambda: o.status("burst-1999").status == "completed", 30, what="the burst finished")
        with pytest.raises(grpc.RpcError) as err:
            for _ in call:
                pass
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "since_timestamp_ns=" in err.value.details()
        # The daemon is fine, and a new stream replays what the slow one missed.
        got = collect(o, lambda evs: len(evs) >= 2000,
                      o.pb.StreamEventsRequest(event_types=["task_completed"], since_timestamp=1), timeout=60)
        assert len({e.resource_id for e in got}) == 2000
    finally:
        o.close()


def test_cli_events_replays_filters_and_prints_json_lines(orch):
    import json
    import os
    import subprocess
    from pathlib import Path

    o = orch()
    o.submit("cli-ev", command="echo", args='["z"]')
    o.wait_final("cli-ev")
    cli = [str(Path(os.environ["DSPY_BUILD_DIR"]) / "cli/dspy-agent"), "events", "--addr", o.daemon.grpc_addr]

    def run(*args):
        return subprocess.run(cli + list(args), capture_output=True, text=True, timeout=30)

    r = run("--since", "1h", "--json", "-t", "task_completed")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(e["type"], e["data"]["resource_id"], e["sequence"]) for e in lines] == [("task_completed", "cli-ev", 3)]
    assert lines[0]["timestamp"].endswith("Z") and len(lines[0]["event_id"]) == 36
    text = run("--since", "1h")
    assert text.returncode == 0
    assert [line.split()[1] for line in text.stdout.splitlines()] == ["task_submitted", "task_started",
                                                                       "task_completed"]
    bad = run("-t", "task_done")
    assert bad.returncode == 1 and "'task_done'" in bad.stderr
    assert run("--since", "yesterday").returncode == 2
