"""A 28-service compose file (compose file format 2.4, so Debian's docker-compose 1.29
runs it too) built from the local images: several dependency chains with
service_healthy, a fan-out, a one-shot job others wait for (service_completed_successfully),
compose healthchecks, two extra networks with aliases, named, bind and anonymous
volumes, env_file and .env interpolation, labels, working_dir, user, hostname,
entrypoint, ports (fixed and Docker-picked, on loopback), expose, mem_limit, cpus and pids_limit.
Used by test_compose.py and tests/bench/b1_28_compose.py."""

from pathlib import Path

import yaml

LISTEN = ('sleep "$${START_DELAY:-0}"; mkdir -p /www; echo ok > /www/health; '
          'echo "listening on $$PORT"; exec httpd -f -p "$$PORT" -h /www')
HTTP_TEST = "wget -q -O /dev/null http://127.0.0.1:$$PORT/health"
TCP_TEST = "nc -w 1 127.0.0.1 $$PORT </dev/null"


def _listener(delay, port, check="http", **extra):
    svc = {
        "image": "dspy-test/busybox:latest",
        "command": ["sh", "-c", LISTEN],
        "environment": {"START_DELAY": str(delay), "PORT": str(port)},
        "healthcheck": {"test": HTTP_TEST if check == "http" else TCP_TEST, "interval": "1s", "timeout": "1s",
                        "retries": 30},
        "stop_grace_period": "1s",  # httpd as PID 1 ignores SIGTERM: do not wait 10 s for each
    }
    svc.update(extra)
    return svc


def healthy(*names):
    return {n: {"condition": "service_healthy"} for n in names}


def services():
    s = {}
    s["redis"] = {
        "image": "dspy-test/redis:latest",
        "ports": ["127.0.0.1:${REDIS_PORT}:6379"],
        "volumes": ["redis_data:/data"],
        "healthcheck": {"test": ["CMD", "/usr/bin/redis-cli", "-p", "6379", "ping"], "interval": "1s",
                        "timeout": "1s", "retries": 30},
        "labels": {"dev.example.tier": "data"},
        "mem_limit": "256m",
        "restart": "on-failure",
    }
    s["db"] = _listener(0.4, 5432, "tcp", volumes=["db_data:/var/lib/db", "./seed:/seed:ro"],
                        labels=["dev.example.tier=data"], networks={"default": None, "back": {"aliases": ["database"]}})
    s["migrate"] = {
        "image": "dspy-test/busybox:latest",
        "entrypoint": ["sh", "-c"],
        "command": ['echo "migrating ${APP_ENV:-dev}"; sleep 0.3; echo done'],
        "user": "65534:65534",
        "working_dir": "/tmp",
        "depends_on": healthy("db"),
        "restart": "no",
    }
    prev = None
    for i in range(1, 6):  # a chain of five
        deps = healthy(prev) if prev else {"migrate": {"condition": "service_completed_successfully"}}
        s[f"api-{i}"] = _listener(0.2, 8000 + i, depends_on=deps, env_file=["app.env"])
        prev = f"api-{i}"
    prev = "redis"
    for i in range(1, 5):  # a chain of four beside it
        s[f"worker-{i}"] = _listener(0.3, 7000 + i, "tcp", depends_on=healthy(prev), pids_limit=200,
                                     networks=["back"])
        prev = f"worker-{i}"
    for i in range(1, 7):  # a fan-out
        s[f"cache-{i}"] = _listener(0.1 * i, 6400 + i, "tcp", depends_on=healthy("redis"), cpus=0.5,
                                    volumes=[f"/var/cache/app{i}"])
    s["gateway"] = _listener(0.2, 8080, depends_on=healthy("api-5", "worker-4"),
                             ports=["127.0.0.1:${GATEWAY_PORT}:8080/tcp"],
                             networks={"default": None, "front": {"aliases": ["edge", "www"]}, "back": None},
                             hostname="gateway-host")
    s["search"] = _listener(0.5, 9200, expose=["9200", "9300"])
    s["search-indexer"] = _listener(0.2, 9201, depends_on=healthy("search"))
    s["scheduler"] = _listener(0.2, 8500, "tcp", depends_on={"migrate": {"condition": "service_completed_successfully"},
                                                             "redis": {"condition": "service_healthy"}})
    s["notifier"] = _listener(0.1, 8501, "tcp", depends_on=["scheduler"])
    s["metrics"] = _listener(0.3, 9090, ports=["127.0.0.1:${METRICS_PORT}:9090"])
    s["log-shipper"] = _listener(0.1, 9091, "tcp", depends_on=["metrics"], environment=[
        "START_DELAY=0.1", "PORT=9091", "SHIP_TO=metrics:9090"])
    s["auth"] = _listener(0.3, 8600, depends_on=healthy("db"), networks=["default", "back"])
    s["billing"] = _listener(0.2, 8601, depends_on=healthy("auth", "db"), mem_limit="64m")
    s["frontend"] = _listener(0.2, 3000, depends_on=healthy("gateway", "auth"), ports=["127.0.0.1::3000"],
                              networks=["front", "default"])
    assert len(s) == 28, len(s)
    return s


def write(directory, ports):
    """Writes docker-compose.yml, .env (the ports) and app.env into `directory`;
    `ports` maps REDIS_PORT, GATEWAY_PORT, METRICS_PORT to free host ports."""
    d = Path(directory)
    (d / "seed").mkdir(exist_ok=True)
    (d / "seed" / "schema.sql").write_text("-- seed\n")
    (d / ".env").write_text("".join(f"{k}={v}\n" for k, v in ports.items()) + "APP_ENV=test\n")
    (d / "app.env").write_text("# shared by the api chain\nLOG_LEVEL=info\nFEATURE_FLAGS=\"a,b\"\n")
    doc = {"version": "2.4", "services": services(),
           "networks": {"front": {"driver": "bridge"}, "back": {}},
           "volumes": {"redis_data": {}, "db_data": {}}}
    path = d / "docker-compose.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def dependencies(doc_services):
    out = {}
    for name, svc in doc_services.items():
        deps = svc.get("depends_on", {})
        out[name] = list(deps) if isinstance(deps, (list, dict)) else []
    return out
