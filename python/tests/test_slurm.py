"""gpu_slurm tasks on the test environment's real Slurm (slurmctld + slurmd): outcomes
(success, exit 3, time limit, cancel, refusal), hostile payloads, adoption after a
SIGKILL of the orchestrator, one squeue call per tick for 200 jobs (counted through
wrappers on the commands' path), slurmctld stopped and started (a private cluster), a
workflow's training step, and the CLI's view of a job."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from conftest import ROOT, _free_port
from envstack import eventually
from test_orchestrator import Orchestrator, classes_yaml

HERE = Path(__file__).resolve().parent
JOB_NAME = "pytest-slurm"  # jobs a test may leave behind carry it; the fixture cancels them


def slurm_up():
    r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and any(s in r.stdout for s in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="module", autouse=True)
def require_slurm():
    # CI starts Slurm (scripts/test-env.sh up slurm); a missing cluster fails, never skips.
    assert slurm_up(), "Slurm does not answer (sinfo): run scripts/test-env.sh up slurm"


@pytest.fixture(scope="module")
def templates():
    d = Path(tempfile.mkdtemp(prefix="dspy-slurm-templates-"))
    for f in list((ROOT / "deploy/slurm").glob("*.sbatch")) + [HERE / "slurm_templates/probe.sbatch"]:
        shutil.copy(f, d / f.name)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def slurm_yaml(templates, extra="", limit=300, poll_max=1000):
    return classes_yaml(f"""    gpu_slurm:
      executor: slurm
      limiter: {{kind: fixed, initial: {limit}, max: {limit}}}
      retry: {{max_attempts: 1}}
""") + f"""slurm:
  templates_dir: {templates}
  poll_min_ms: 200
  poll_max_ms: {poll_max}
{extra}"""


@pytest.fixture
def orch(stubs, templates):
    made = []

    def make(extra="", **kw):
        o = Orchestrator(stubs, slurm_yaml(templates, extra, **kw))
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()
        # Whatever a test left in Slurm goes (jobs carry the task's output dir).
        subprocess.run(["scancel", f"--name={JOB_NAME}"], capture_output=True, timeout=30)


def submit(o, task_id, **payload):
    return o.http("POST", "/queue/submit", {"id": task_id, "class": "gpu_slurm", "payload": payload})


def job(o, task_id):
    return o.http("GET", f"/slurm/status/{task_id}")


def metric(o, name):
    with urllib.request.urlopen(f"http://{o.daemon.http_addr}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.split()[-1])
    return 0.0


def events_of(o, task_id):
    """The types of the task's stored events, in order (a replay from the start)."""
    got = []
    call = o.stub.StreamEvents(o.pb.StreamEventsRequest(since_timestamp=1), timeout=3)
    try:
        for ev in call:
            if ev.resource_id == task_id:
                got.append(ev.event_type)
    except grpc.RpcError as e:  # the deadline ends the replay-then-live stream
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
    return got


def test_success_exit_code_time_limit_cancel_and_refusal(orch):
    o = orch()
    code, body = submit(o, "ok", command="echo hello from slurm")
    assert code == 200 and body["ok"] and body["status"] == "submitted" and body["slurm_job_id"].isdigit(), body
    assert submit(o, "three", command="echo about to fail; exit 3")[0] == 200
    assert submit(o, "slow", command="sleep 600", time_limit="1", job_name=JOB_NAME)[0] == 200
    assert submit(o, "stop", command="sleep 600", job_name=JOB_NAME)[0] == 200
    code, body = submit(o, "bad-partition", command="true", partition="nosuch")
    assert code == 400 and body["status"] == "refused" and "Invalid partition" in body["error"], body
    code, body = submit(o, "too-big", command="true", mem="99999999")
    assert code == 400 and "Memory specification can not be satisfied" in body["error"], body

    eventually(lambda: job(o, "stop")[1].get("status") == "running", 60, what="job 'stop' running")
    assert o.stub.CancelTask(o.pb.CancelTaskRequest(task_id="stop"), timeout=10).success

    ok = o.wait_final("ok", 60)
    assert ok.status == "completed", ok.error
    assert ok.result["slurm_state"] == "COMPLETED" and ok.result["exit_code"] == "0"
    assert "hello from slurm" in ok.result["output"]
    code, j = job(o, "ok")
    assert code == 200 and j["status"] == "completed" and j["exit_code"] == 0
    assert j["id"] == ok.result["slurm_job_id"]
    for key in ("submit_time", "start_time", "end_time"):
        assert j[key].endswith("Z"), j
    assert Path(j["output_path"]).is_file() and j["output_path"].startswith(str(o.daemon.dir))

    three = o.wait_final("three", 60)
    assert three.status == "failed" and "exit code 3" in three.error and "NonZeroExitCode" in three.error
    assert job(o, "three")[1]["exit_code"] == 3

    stop = o.wait_final("stop", 60)
    assert stop.status == "cancelled", stop.error
    assert job(o, "stop")[1]["slurm_state"] == "CANCELLED"

    bad = o.status("bad-partition")
    assert bad.status == "failed" and "Invalid partition name specified" in bad.error
    assert job(o, "bad-partition")[1]["status"] == "refused"

    # Slurm checks time limits about every 30 s: TIMEOUT comes 60-100 s after the start.
    slow = o.wait_final("slow", 180)
    assert slow.status == "failed" and "TIMEOUT" in slow.error, slow.error
    assert job(o, "slow")[1]["slurm_state"] == "TIMEOUT"

    assert events_of(o, "ok") == ["task_submitted", "task_started", "slurm_job_submitted", "slurm_job_started",
                                  "slurm_job_completed", "task_completed"]
    assert "slurm_job_failed" in events_of(o, "bad-partition")
    assert metric(o, "slurm_jobs_submitted_total") == 4
    assert metric(o, "slurm_jobs_completed_total") == 1
    assert metric(o, "slurm_jobs_failed_total") == 5  # exit 3, time limit, cancelled, two refusals
    code, missing = job(o, "no-such-task")
    assert code == 404 and "error" in missing


def test_hostile_payloads_run_nothing(orch, tmp_path):
    o = orch()
    mark = tmp_path / "pwned"
    evil = {
        "method": f"$(touch {mark})",
        "skill": f"'; touch {mark}; echo '",
        "dataset": f"`touch {mark}`",
        "schedule": f"x\" ; touch {mark} ; \"",
        "trigger_metric": f"${{IFS}}&&touch${{IFS}}{mark}",
    }
    code, body = submit(o, "evil", template="probe", **evil)
    assert code == 200, body
    done = o.wait_final("evil", 60)
    assert done.status == "completed", done.error
    out = done.result["output"]
    for key, label in (("method", "method"), ("skill", "skill"), ("dataset", "dataset"), ("schedule", "schedule"),
                       ("trigger_metric", "trigger")):
        assert f"{label}={evil[key]}\n" in out, out
    assert "task=evil attempt=1" in out
    assert not mark.exists()

    # Option keys, free text with a line break, and template names outside the folder
    # are refused before anything is accepted.
    hostile = [
        {"job_name": f"x\n#SBATCH --wrap=touch {mark}"},
        {"partition": f"debug --wrap=touch {mark}"},
        {"account": "a;b"}, {"qos": "$(id)"}, {"gres": "gpu:1 --wrap=id"}, {"gpus": "1;id"},
        {"nodes": "1 --wrap=id"}, {"ntasks": "1;id"}, {"cpus_per_task": "`id`"}, {"mem": "1G;id"},
        {"time_limit": "1 && id"}, {"array": "1-2;id"}, {"dependency": "afterok:1;id"},
        {"method": f"ok\ntouch {mark}"}, {"template": "../../etc/passwd"},
    ]
    for i, extra in enumerate(hostile):
        code, body = submit(o, f"hostile-{i}", **{"template": "probe", **extra})
        assert code == 400 and "error" in body, (extra, body)
        assert o.http("GET", f"/tasks/hostile-{i}")[0] == 404, extra
    assert not mark.exists()


def test_sigkill_while_a_job_runs_then_the_job_is_adopted_and_finishes_once(orch, tmp_path):
    o = orch()
    runs = tmp_path / "runs"
    code, body = submit(o, "survivor", command=f"echo run >> {runs}; sleep 6; echo done")
    assert code == 200, body
    eventually(lambda: job(o, "survivor")[1].get("status") == "running", 60, what="job running")
    o.daemon.restart(signal.SIGKILL)
    o.reconnect()
    done = o.wait_final("survivor", 90)
    assert done.status == "completed", done.error
    assert done.result["slurm_job_id"] == body["slurm_job_id"]
    assert runs.read_text() == "run\n"  # one job ran, once
    types = events_of(o, "survivor")
    assert types.count("slurm_job_submitted") == 1 and types.count("slurm_job_completed") == 1, types
    assert "adopting Slurm job " + body["slurm_job_id"] in o.daemon.log_text()


def test_200_tracked_jobs_cost_one_squeue_call_per_tick(orch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for cmd in ("sbatch", "squeue", "sacct", "scontrol", "scancel"):
        real = shutil.which(cmd)
        w = bin_dir / cmd
        w.write_text(f'#!/bin/sh\nprintf "%s\\n" "{cmd} $*" >> {calls}\nexec {real} "$@"\n')
        w.chmod(0o755)
    o = orch(extra=f"  bin_dir: {bin_dir}\n", poll_max=500)
    n = 200
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: o.submit(f"many-{i}", cls="gpu_slurm", command="sleep 600",
                                                   job_name=JOB_NAME), range(n)))
    assert all(r.success for r in results)
    eventually(lambda: metric(o, "orchestrator_slurm_tracked_jobs") == n, 120, what=f"{n} jobs tracked")
    assert len([c for c in calls.read_text().splitlines() if c.startswith("sbatch")]) == n

    def window():
        return len(squeue_calls(calls)), metric(o, "orchestrator_slurm_poll_ticks_total")

    calls0, ticks0 = window()
    time.sleep(3)  # a measuring window: several ticks at the 500 ms maximum interval
    calls1, ticks1 = window()
    assert ticks1 - ticks0 >= 3
    # One squeue per tick (a tick in flight at either end may count on one side only).
    assert abs((calls1 - calls0) - (ticks1 - ticks0)) <= 1, (calls1 - calls0, ticks1 - ticks0)
    last = squeue_calls(calls)[-1]
    assert len(last.split(" -j ")[1].split()[0].split(",")) == n  # every tracked job in the one call
    assert not [c for c in calls.read_text().splitlines() if c.startswith(("sacct", "scontrol"))]

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: o.stub.CancelTask(o.pb.CancelTaskRequest(task_id=f"many-{i}"), timeout=10),
                      range(n)))
    eventually(lambda: metric(o, "orchestrator_slurm_tracked_jobs") == 0, 120, what="all cancelled")
    scancels = [c for c in calls.read_text().splitlines() if c.startswith("scancel")]
    assert 1 <= len(scancels) <= n // 4, len(scancels)  # batched per tick, not one per job
    # The tracker lets go of a job before the task's end is recorded: wait for the records.
    eventually(lambda: not [i for i in range(n) if o.status(f"many-{i}").status != "cancelled"], 60,
               what="every task recorded as cancelled")


def squeue_calls(calls):
    return [line for line in calls.read_text().splitlines() if line.startswith("squeue") and " -j " in line]


def test_a_workflow_training_step_runs_as_a_slurm_job(orch):
    o = orch()
    spec = {"name": "train", "nodes": [
        {"id": "train", "name": "train", "type": "training",
         "training": {"method": "grpo", "skill": "math", "template": "probe", "max_steps": 10}}]}
    resp = o.stub.CreateWorkflow(o.pb.CreateWorkflowRequest(spec=json.dumps(spec).encode()), timeout=10)
    assert resp.success, resp.error
    run = o.stub.StartWorkflowRun(o.pb.StartWorkflowRunRequest(workflow_id=resp.workflow_id), timeout=10)
    assert run.success, run.error

    def info():
        return o.stub.GetWorkflowRun(o.pb.GetWorkflowRunRequest(run_id=run.run_id), timeout=10)

    eventually(lambda: info().status in ("succeeded", "failed"), 90, what="training run ended")
    r = info()
    assert r.status == "succeeded", [(s.node_id, s.status, s.error) for s in r.steps]
    step = r.steps[0]
    assert step.result["slurm_state"] == "COMPLETED" and "method=grpo" in step.result["output"]


def test_cli_tasks_show_includes_the_job(orch):
    o = orch()
    code, body = submit(o, "shown", command="exit 0", job_name=JOB_NAME)
    assert code == 200, body
    o.wait_final("shown", 60)
    cli = [str(Path(os.environ["DSPY_BUILD_DIR"]) / "cli/dspy-agent"), "tasks", "show", "shown",
           "--addr", o.daemon.grpc_addr]
    text = subprocess.run(cli, capture_output=True, text=True, timeout=30)
    assert text.returncode == 0, text.stderr
    assert f"slurm job: {body['slurm_job_id']}  COMPLETED  attempt=1  exit=0" in text.stdout, text.stdout
    js = subprocess.run(cli + ["--json"], capture_output=True, text=True, timeout=30)
    shown = json.loads(js.stdout)
    assert shown["slurm_job"]["job_id"] == body["slurm_job_id"] and shown["slurm_job"]["status"] == "completed"


# ---------------------------------------------------------------- slurmctld away
@pytest.fixture(scope="module")
def private_slurm():
    d = Path(tempfile.mkdtemp(prefix="dspy-private-slurm-"))
    ports = [str(_free_port()), str(_free_port())]
    script = [str(ROOT / "scripts/private-slurm.sh")]
    up = subprocess.run(script + ["up", str(d)] + ports, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr

    class Cluster:
        conf = d / "slurm.conf"

        def ctl(self, what):
            r = subprocess.run(script + [what, str(d)] + ports, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr

    yield Cluster()
    subprocess.run(script + ["down", str(d)] + ports, capture_output=True, timeout=120)


def test_slurmctld_stopped_and_started_while_jobs_are_tracked(orch, private_slurm):
    o = orch(extra=f"  conf: {private_slurm.conf}\n  submit_wait_ms: 1000\n  unreachable_deadline_s: 300\n")
    code, body = submit(o, "through", command="sleep 8; echo through")
    assert code == 200, body
    eventually(lambda: job(o, "through")[1].get("status") == "running", 60, what="job running")
    private_slurm.ctl("stop-ctld")
    eventually(lambda: o.http("GET", "/health")[1]["components"]["slurm"] != "ok", 30, what="health shows Slurm away")
    assert o.http("GET", "/health")[1]["status"] == "degraded"
    assert o.status("through").status == "running"
    # Submitted while slurmctld is away: it waits (no job id yet) and goes once it is back.
    code, later = submit(o, "later", command="echo later")
    assert code == 202 and later["status"] == "queued", later
    assert job(o, "later")[1]["status"] == "submitting"
    private_slurm.ctl("start-ctld")
    through = o.wait_final("through", 120)
    assert through.status == "completed", through.error
    assert through.result["slurm_job_id"] == body["slurm_job_id"]
    assert o.wait_final("later", 120).status == "completed"
    eventually(lambda: o.http("GET", "/health")[1]["components"]["slurm"] == "ok", 30, what="health ok again")


def test_slurmctld_away_past_the_deadline_fails_the_tasks_with_that_reason(orch, private_slurm):
    o = orch(extra=f"  conf: {private_slurm.conf}\n  unreachable_deadline_s: 3\n")
    code, body = submit(o, "stranded", command="sleep 30", job_name=JOB_NAME)
    assert code == 200, body
    private_slurm.ctl("stop-ctld")
    try:
        t = o.wait_final("stranded", 60)
        assert t.status == "failed" and "could not be reached" in t.error, t.error
        assert job(o, "stranded")[1]["status"] == "unreachable"
    finally:
        private_slurm.ctl("start-ctld")
        subprocess.run(["scancel", body["slurm_job_id"]], env=dict(os.environ, SLURM_CONF=str(private_slurm.conf)),
                       capture_output=True, timeout=30)
