"""The observability kit against a real Prometheus (Debian's package): it loads
deploy/prometheus's alert rules, scrapes both real daemons, and every query of the
Grafana dashboard (deploy/grafana) returns data once tasks, a failure and a Slurm job
have run."""

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, _DIE_WITH_PARENT, _free_port
from envstack import eventually
from test_orchestrator import Orchestrator, classes_yaml

DASHBOARD = ROOT / "deploy/grafana/dspy-agent-dashboard.json"
ALERTS = ROOT / "deploy/prometheus/dspy-agent-alerts.yml"


def query(addr, expr):
    url = f"http://{addr}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture
def prometheus():
    d = Path(tempfile.mkdtemp(prefix="dspy-prometheus-"))
    procs = []

    def start(targets):
        shutil.copy(ALERTS, d / ALERTS.name)
        jobs = "".join(f"  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n"
                       for job, addr in targets.items())
        (d / "prometheus.yml").write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                          f"rule_files:\n  - {ALERTS.name}\nscrape_configs:\n{jobs}")
        addr = f"127.0.0.1:{_free_port()}"
        log = open(d / "prometheus.log", "wb")
        procs.append(subprocess.Popen(_DIE_WITH_PARENT + [
            "prometheus", f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address={addr}"], stdout=log, stderr=subprocess.STDOUT))
        eventually(lambda: _ready(addr), 30, what="prometheus ready")
        return addr

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=30)
    shutil.rmtree(d, ignore_errors=True)


def _ready(addr):
    try:
        with urllib.request.urlopen(f"http://{addr}/-/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_prometheus_scrapes_both_daemons_and_every_dashboard_query_has_data(stubs, env_manager, prometheus, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copy(ROOT / "deploy/slurm/command.sbatch", templates)
    o = Orchestrator(stubs, classes_yaml("""    gpu_slurm:
      executor: slurm
      limiter: {kind: fixed, initial: 4, max: 4}
      retry: {max_attempts: 1}
""") + f"slurm:\n  templates_dir: {templates}\n  poll_min_ms: 200\n")
    try:
        for i in range(5):
            assert o.submit(f"obs-ok-{i}", command="echo", args='["x"]').success
        assert o.submit("obs-fail", command="fail").success
        assert o.submit("obs-slurm", cls="gpu_slurm", command="echo from slurm").success
        for t in [f"obs-ok-{i}" for i in range(5)] + ["obs-fail"]:
            o.wait_final(t)
        assert o.wait_final("obs-slurm", 90).status == "completed"

        addr = prometheus({"dspy-env-manager": env_manager.http_addr, "dspy-orchestrator": o.daemon.http_addr})
        eventually(lambda: len([r for r in query(addr, "up") if r["value"][1] == "1"]) == 2, 30,
                   what="both daemons scraped")
        with urllib.request.urlopen(f"http://{addr}/api/v1/rules", timeout=10) as r:
            rules = [rule["name"] for g in json.loads(r.read())["data"]["groups"] for rule in g["rules"]]
        assert "DspyDaemonDown" in rules and "DspySlurmUnreachable" in rules and len(rules) == 9

        exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
        assert len(exprs) >= 20

        def without_data():
            return [e for e in exprs if not query(addr, e)]

        last = []

        def all_have_data():
            last[:] = without_data()
            return not last

        try:
            eventually(all_have_data, 30, what="every dashboard query returns data")
        except AssertionError:
            raise AssertionError(f"dashboard queries without data: {last}")
    finally:
        o.close()
