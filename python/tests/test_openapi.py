"""docs/openapi.yaml against the daemons: every route the daemons serve (read from their
route registrations) is in the file and every path in the file is served; each
operation's example request, sent in the file's order to the real daemons, answers
with a documented status and a body that has the documented required fields."""

import json
import re
import urllib.error
import urllib.parse
import urllib.request

import yaml

from conftest import ROOT
from test_orchestrator import Orchestrator, classes_yaml

SPEC = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
METHODS = ("get", "post", "put", "delete", "patch")


def served(folders):
    """(METHOD, path template with {x}) of every route registered in these folders."""
    out = set()
    for folder in folders:
        for f in (ROOT / folder).rglob("*.cc"):
            text = f.read_text()
            for method, pattern in re.findall(r'route\(\s*"([A-Z]+)",\s*"([^"]+)"', text):
                out.add((method, re.sub(r"\([^)]*\)", "{x}", pattern)))
            for pattern in re.findall(r'routeStream\(\s*"([^"]+)"', text):  # streamed answers are GETs
                out.add(("GET", re.sub(r"\([^)]*\)", "{x}", pattern)))
    return out


def documented(daemon):
    out = set()
    for path, item in SPEC["paths"].items():
        if daemon in item.get("x-daemons", []):
            for m in METHODS:
                if m in item:
                    out.add((m.upper(), re.sub(r"\{[^}]+\}", "{x}", path)))
    return out


def test_every_served_route_is_documented_and_every_documented_one_served():
    assert served(["orchestrator", "common"]) == documented("orchestrator")
    assert served(["env_manager", "common"]) == documented("env-manager")


def resolve(schema):
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def call(base, method, path, example, saved):
    params = {k: saved.get(v, v) for k, v in example.get("params", {}).items()}
    for k, v in params.items():
        path = path.replace("{" + k + "}", urllib.parse.quote(str(v), safe=""))
    url = base + path + ("?" + urllib.parse.urlencode(example["query"]) if "query" in example else "")
    data = json.dumps(example["body"]).encode() if "body" in example else None
    req = urllib.request.Request(url, data=data, method=method.upper(),
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            ctype = r.headers.get("Content-Type", "")
            # A stream does not end by itself: its first line is enough.
            return r.status, ctype, r.readline() if ctype.startswith("text/event-stream") else r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def test_every_operation_answers_as_documented(stubs, env_manager):
    o = Orchestrator(stubs, classes_yaml())
    try:
        bases = {"orchestrator": f"http://{o.daemon.http_addr}", "env-manager": f"http://{env_manager.http_addr}"}
        ops = []
        for path, item in SPEC["paths"].items():
            for m in METHODS:
                if m in item:
                    ops.append((item[m]["x-order"], path, m, item))
        ops.sort(key=lambda t: t[0])
        saved = {}
        checked = 0
        for _, path, method, item in ops:
            op = item[method]
            for daemon in item["x-daemons"]:
                status, ctype, body = call(bases[daemon], method, path, op["x-example"], saved)
                where = f"{method.upper()} {path} on {daemon}"
                assert str(status) in op["responses"], f"{where}: {status} is not documented ({body[:200]!r})"
                content = op["responses"][str(status)].get("content", {})
                if "application/json" in content:
                    assert ctype.startswith("application/json"), f"{where}: content type {ctype}"
                    doc = json.loads(body)
                    schema = resolve(content["application/json"]["schema"])
                    missing = [k for k in schema.get("required", []) if k not in doc]
                    assert not missing, f"{where}: missing {missing} in {doc}"
                    if path == "/workflows/{id}/runs" and method == "post":
                        saved["@run"] = doc["id"]
                elif "text/plain" in content:
                    assert ctype.startswith("text/plain"), f"{where}: content type {ctype}"
                checked += 1
        assert checked == sum(len(i["x-daemons"]) * sum(m in i for m in METHODS) for i in SPEC["paths"].values())
    finally:
        o.close()
