"""The orchestrator's web page (/ui/) in a real browser: Debian's chromium, headless,
driven by Selenium through Debian's chromedriver, against the real daemons, a real
env-manager and Docker. Every view loads; a workflow step turns running then succeeded
without a reload; cancel from the page cancels the run; a `docker kill`ed service goes
down and comes back in the services view; with auth.token the page asks for the token
and the API refuses calls without it. Screenshots of each view go to
.state/artifacts/ui/ (DSPY_ARTIFACTS overrides)."""

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from envstack import EnvManager, docker, eventually
from test_orchestrator import Orchestrator, classes_yaml
from test_workflows import create, edges, node, start

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("DSPY_ARTIFACTS", ROOT / ".state" / "artifacts")) / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), \
        "chromium and chromium-driver are missing: run scripts/install-deps.sh"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="dspy-chromium-")
    # The machine has no internet: without the background-networking switches chromium
    # keeps trying Google's hosts.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver._dspy_profile = profile
    return driver


def _quit(driver):
    driver.quit()
    shutil.rmtree(driver._dspy_profile, ignore_errors=True)


def wait(driver, condition, timeout=30, what="condition"):
    """Polls `condition(driver)` until it is truthy (Selenium's wait: a poll with a deadline)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        shot(driver, "failed-" + what.replace(" ", "-")[:60])
        raise AssertionError(f"{what}: not seen within {timeout}s; page log: {console(driver)}")


def console(driver):
    try:
        return [e["message"] for e in driver.get_log("browser")][-10:]
    except Exception:  # noqa: BLE001 - the log is only a diagnostic
        return []


def shot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def text_of(driver, css):
    els = driver.find_elements("css selector", css)
    return els[0].text if els else None


def cls_of(driver, css):
    els = driver.find_elements("css selector", css)
    return (els[0].get_attribute("class") or "") if els else ""


def http(o, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{o.daemon.http_addr}{path}", data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def stack(stubs):
    """A private env-manager (its own stack, redis started) and an orchestrator linked to it."""
    m = EnvManager(stubs)
    o = None
    try:
        m.start(["redis", "kafka"])  # kafka waits for zookeeper: a timeline with a dependency
        o = Orchestrator(stubs, classes_yaml() + f"env_manager:\n  address: {m.daemon.grpc_addr}\n")
        yield m, o
    finally:
        if o:
            o.close()
        m.close()


@pytest.fixture
def browser():
    d = _browser()
    yield d
    _quit(d)


def open_page(driver, o, fragment):
    driver.get(f"http://{o.daemon.http_addr}/ui/#{fragment}")
    wait(driver, lambda d: text_of(d, "#live") == "live", 15, "the live stream connected")


def test_the_page_is_served_from_the_binary_with_its_assets(stack):
    _, o = stack
    status, body = http(o, "GET", "/ui/")
    assert status == 200 and b"<title>dspy-agent</title>" in body
    status, body = http(o, "GET", "/ui/app.js")
    assert status == 200 and b"/ui/api/events" in body
    assert http(o, "GET", "/ui/app.css")[0] == 200
    assert http(o, "GET", "/ui/nothing.js")[0] == 404
    assert http(o, "GET", "/ui/api/events/recent?limit=0")[0] == 400
    assert http(o, "GET", "/ui/api/events?after=x")[0] == 400


def test_services_say_why_when_env_manager_does_not_answer(stubs):
    from conftest import _free_port
    o = Orchestrator(stubs, classes_yaml() + f"env_manager:\n  address: 127.0.0.1:{_free_port()}\n")
    try:
        status, body = http(o, "GET", "/ui/api/services")
        assert status == 503
        assert "did not answer GetServicesStatus" in json.loads(body)["error"]
    finally:
        o.close()


def test_each_view_loads_with_live_data(stack, browser):
    m, o = stack
    # Tasks: one that prints, one that fails.
    ok = o.submit(cls="cpu_short", command="echo", args=json.dumps(["hello from the page test"])).task_id
    bad = o.submit(cls="cpu_short", command="fail").task_id
    o.wait_final(ok)
    o.wait_final(bad)
    wid = create(o, {"name": "ui-views", "nodes": [node("a", "echo", ["a"]), node("b", "echo", ["b"]),
                                                  node("c", "echo", ["c"])],
                     "edges": edges(("a", "b"), ("a", "c"))})
    run = start(o, wid)

    open_page(browser, o, "services")
    wait(browser, lambda d: text_of(d, '#services-table tr[data-service="redis"] .svc-state') == "healthy", 20,
         "redis healthy in the services view")
    assert text_of(browser, '#services-table tr[data-service="kafka"] .svc-state') == "healthy"
    assert text_of(browser, '#services-table tr[data-service="prometheus"] .svc-state') == "stopped"
    shot(browser, "services")

    browser.get(f"http://{o.daemon.http_addr}/ui/#tasks")
    wait(browser, lambda d: text_of(d, f'#tasks-table tr[data-task="{ok}"] .task-status') == "completed", 15,
         "the completed task in the table")
    assert text_of(browser, f'#tasks-table tr[data-task="{bad}"] .task-status') == "failed"
    # Filters: failed only.
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element("css selector", "#task-status")).select_by_visible_text("failed")
    wait(browser, lambda d: not d.find_elements("css selector", f'#tasks-table tr[data-task="{ok}"]'), 10,
         "the filter hides completed tasks")
    assert browser.find_elements("css selector", f'#tasks-table tr[data-task="{bad}"]')
    browser.find_element("css selector", f'#tasks-table tr[data-task="{bad}"]').click()
    wait(browser, lambda d: "exit code 3" in (text_of(d, "#task-error") or ""), 10, "the failed task's error")
    assert "broken" in text_of(browser, "#task-stderr")
    assert browser.find_elements("css selector", "#task-retry")
    shot(browser, "task-detail")
    Select(browser.find_element("css selector", "#task-status")).select_by_visible_text("all")
    browser.get(f"http://{o.daemon.http_addr}/ui/#tasks/{ok}")
    wait(browser, lambda d: "hello from the page test" in (text_of(d, "#task-output") or ""), 10,
         "the task's output tail")
    shot(browser, "tasks")

    browser.get(f"http://{o.daemon.http_addr}/ui/#workflows/{run}")
    wait(browser, lambda d: text_of(d, "#run-status") == "succeeded", 20, "the run succeeded")
    for step in "abc":
        assert "state-succeeded" in cls_of(browser, f'#dag g[data-node="{step}"]')
    assert len(browser.find_elements("css selector", "#dag path.edge")) == 2
    assert browser.find_elements("css selector", f'li[data-run="{run}"]')
    shot(browser, "workflow-run")

    browser.get(f"http://{o.daemon.http_addr}/ui/#timeline")
    wait(browser, lambda d: (text_of(d, '#timeline-table tr[data-service="redis"] .ready') or "").startswith("+"),
         10, "redis's ready time in the timeline")
    tls = {name: s.last_start for name, s in m.status(["redis", "zookeeper", "kafka"]).items()}
    for tl in tls.values():
        assert tl.requested_at_ms <= tl.created_at_ms <= tl.started_at_ms <= tl.first_probe_at_ms <= tl.ready_at_ms
        assert tl.created_at_ms and tl.outcome == "healthy"
    assert tls["kafka"].created_at_ms >= tls["zookeeper"].ready_at_ms  # it waited for its dependency
    assert browser.find_elements("css selector", '#timeline-table tr[data-service="kafka"] .seg.wait')
    shot(browser, "timeline")

    browser.get(f"http://{o.daemon.http_addr}/ui/#events")
    wait(browser, lambda d: d.find_elements("css selector", '#events-list li[data-type="workflow_completed"]'), 10,
         "the workflow's events in the tail")
    assert browser.find_elements("css selector", '#events-list li[data-type="task_failed"]')
    shot(browser, "events")


def test_a_running_step_turns_succeeded_without_a_reload(stack, browser):
    _, o = stack
    gate = Path(tempfile.mkdtemp(prefix="dspy-ui-gate-")) / "go"
    # The step waits for a file the test creates, so the page must show it running first.
    wid = create(o, {"name": "ui-live", "nodes": [
        node("first", "echo", ["1"]),
        node("slow", "sh", [f"while [ ! -e {gate} ]; do sleep 0.05; done; echo done"]),
        node("last", "echo", ["3"])], "edges": edges(("first", "slow"), ("slow", "last"))})
    run = start(o, wid)
    open_page(browser, o, f"workflows/{run}")
    browser.execute_script("window.__noReload = 'still here'")
    wait(browser, lambda d: "state-running" in cls_of(d, '#dag g[data-node="slow"]'), 20, "the step running")
    assert text_of(browser, '#steps-table tr[data-step="slow"] .step-status') == "running"
    assert "state-succeeded" in cls_of(browser, '#dag g[data-node="first"]')
    shot(browser, "workflow-running")
    gate.touch()
    wait(browser, lambda d: "state-succeeded" in cls_of(d, '#dag g[data-node="slow"]'), 20, "the step succeeded")
    wait(browser, lambda d: text_of(d, "#run-status") == "succeeded", 20, "the run succeeded")
    assert "state-succeeded" in cls_of(browser, '#dag g[data-node="last"]')
    assert browser.execute_script("return window.__noReload") == "still here", "the page was reloaded"


def test_cancel_from_the_page_cancels_the_run(stack, browser):
    _, o = stack
    wid = create(o, {"name": "ui-cancel", "nodes": [node("long", "nap", ["60"]), node("after", "echo", ["x"])],
                     "edges": edges(("long", "after"))})
    run = start(o, wid)
    open_page(browser, o, f"workflows/{run}")
    wait(browser, lambda d: "state-running" in cls_of(d, '#dag g[data-node="long"]'), 20, "the long step running")
    browser.find_element("css selector", "#run-cancel").click()
    eventually(lambda: json.loads(http(o, "GET", f"/workflow-runs/{run}")[1])["status"] == "cancelled", 15,
               what="the run cancelled on the server")
    wait(browser, lambda d: text_of(d, "#run-status") == "cancelled", 10, "the page shows the run cancelled")
    assert browser.find_element("css selector", "#run-cancel").get_attribute("disabled") is not None
    after = json.loads(http(o, "GET", f"/workflow-runs/{run}")[1])
    assert {s["node_id"]: s["status"] for s in after["steps"]}["after"] != "succeeded"


def test_the_services_view_shows_a_killed_service_go_down_and_come_back(stack, browser):
    m, o = stack
    open_page(browser, o, "services")
    cell = '#services-table tr[data-service="redis"] .svc-state'
    wait(browser, lambda d: text_of(d, cell) == "healthy", 20, "redis healthy")
    # Every state the cell shows from now on, recorded by the page itself.
    browser.execute_script("""
      window.__seen = [];
      const tbody = document.querySelector('#services-table tbody');
      new MutationObserver(() => {
        const c = document.querySelector('#services-table tr[data-service="redis"] .svc-state');
        if (c && window.__seen[window.__seen.length - 1] !== c.textContent) window.__seen.push(c.textContent);
      }).observe(tbody, {childList: true, subtree: true, characterData: true});
    """)
    container = m.status(["redis"])["redis"].container_id
    docker("kill", container)
    wait(browser, lambda d: any(s != "healthy" for s in d.execute_script("return window.__seen")), 20,
         "redis shown down after docker kill")
    shot(browser, "services-killed")
    wait(browser, lambda d: (d.execute_script("return window.__seen") or [""])[-1] == "healthy", 60,
         "redis shown healthy again")
    seen = browser.execute_script("return window.__seen")
    first_down = min(i for i, s in enumerate(seen) if s != "healthy")
    assert "healthy" in seen[first_down:], seen
    wait(browser, lambda d: int(text_of(d, '#services-table tr[data-service="redis"] td.num') or 0) >= 1, 10,
         "the restart counted in the view")


def test_with_a_token_the_page_asks_for_it_and_the_api_refuses_without(stubs, browser):
    o = Orchestrator(stubs, classes_yaml() + "auth:\n  token: s3cret-ui\n")
    try:
        assert http(o, "GET", "/ui/")[0] == 200  # the page itself is public
        for path in ("/tasks", "/ui/api/events/recent", "/ui/api/events", "/workflows"):
            assert http(o, "GET", path)[0] == 401, path
        assert http(o, "GET", "/tasks", token="wrong")[0] == 401
        browser.get(f"http://{o.daemon.http_addr}/ui/#tasks")
        wait(browser, lambda d: d.find_element("css selector", "#token-form").is_displayed(), 10, "the token form")
        assert not browser.find_element("css selector", "#view-tasks").is_displayed()
        shot(browser, "token")
        box = browser.find_element("css selector", "#token-input")
        box.send_keys("wrong")
        browser.find_element("css selector", "#token-submit").click()
        wait(browser, lambda d: text_of(d, "#token-error") == "the token was refused", 10, "a wrong token refused")
        box = browser.find_element("css selector", "#token-input")
        box.clear()
        box.send_keys("s3cret-ui")
        browser.find_element("css selector", "#token-submit").click()
        wait(browser, lambda d: text_of(d, "#live") == "live", 10, "the stream connected with the token")
        assert browser.find_element("css selector", "#view-tasks").is_displayed()
        status, body = http(o, "POST", "/queue/submit",
                            {"class": "cpu_short", "payload": {"command": "echo", "args": '["with token"]'}},
                            token="s3cret-ui")
        assert status == 200, body
        tid = json.loads(body)["id"]
        wait(browser, lambda d: text_of(d, f'#tasks-table tr[data-task="{tid}"] .task-status') == "completed", 15,
             "a task submitted after loading appears live")
    finally:
        o.close()
