"""EnvManagerClient: env-manager's gRPC API (the backing services' containers, task
containers, image pulls, logs) for async code."""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, Mapping, Optional, Sequence

from ._connection import TLS, Connection, env_address
from ._pb.env_manager.v1 import env_manager_pb2 as pb
from ._pb.env_manager.v1 import env_manager_pb2_grpc as pb_grpc

DEFAULT_ADDRESS = "127.0.0.1:50100"


def default_address() -> str:
    """$ENV_MANAGER_ADDR, else $ENV_MANAGER_GRPC_ADDR, else 127.0.0.1:50100."""
    return env_address(("ENV_MANAGER_ADDR", "ENV_MANAGER_GRPC_ADDR"), DEFAULT_ADDRESS)


def _status(s: Any) -> Dict[str, Any]:
    hc = dict(s.health_checks)
    u = s.resource_usage
    return {"name": s.name, "status": s.status, "state": hc.get("state", s.status),
            "required": hc.get("required", "true") == "true", "container_id": s.container_id,
            "ports": list(s.ports), "health_checks": hc, "started_at": s.started_at,
            "resource_usage": {"cpu_percent": u.cpu_percent, "memory_bytes": u.memory_bytes,
                               "network_rx_bytes": u.network_rx_bytes, "network_tx_bytes": u.network_tx_bytes}}


class EnvManagerClient:
    """Async client of env-manager. Unary calls have a deadline (`timeout`, default
    30 s; start/stop/restart get `long_timeout`, default 600 s); UNAVAILABLE is retried;
    failures raise InfraError subclasses."""

    def __init__(self, address: Optional[str] = None, *, timeout: float = 30.0, long_timeout: float = 600.0,
                 token: Optional[str] = None, tls: Optional[TLS] = None, retry: bool = True) -> None:
        self.address = address or default_address()
        self.long_timeout = long_timeout
        self._conn = Connection("env-manager", "env_manager.v1.EnvManagerService", self.address, timeout=timeout,
                                token=token, tls=tls, retry=retry)
        self.stub = pb_grpc.EnvManagerServiceStub(self._conn.channel)
        self.channel = self._conn.channel

    async def connect(self, timeout: Optional[float] = None) -> None:
        await self._conn.wait_ready(timeout)

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> "EnvManagerClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def start_services(self, service_names: Optional[Sequence[str]] = None) -> AsyncIterator[Dict[str, Any]]:
        """Progress {"service_name", "status", "message", "progress"} as it happens; the
        last one has service_name "" and status "completed" or "failed"."""
        req = pb.StartServicesRequest(service_names=list(service_names or []))
        async for u in self._conn.stream("StartServices", self.stub.StartServices, req, timeout=self.long_timeout):
            yield {"service_name": u.service_name, "status": u.status, "message": u.message, "progress": u.progress}

    async def start_services_and_wait(self, service_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Starts them and returns the final update ({"status": "completed"|"failed", ...})."""
        last: Dict[str, Any] = {}
        async for u in self.start_services(service_names):
            last = u
        return last

    async def stop_services(self, service_names: Optional[Sequence[str]] = None,
                            timeout_seconds: int = 0) -> Dict[str, Any]:
        """{"success", "service_results": {name: result}}; dependents are stopped first."""
        r = await self._conn.unary("StopServices", self.stub.StopServices,
                                   pb.StopServicesRequest(service_names=list(service_names or []),
                                                          timeout_seconds=timeout_seconds), timeout=self.long_timeout)
        return {"success": r.success, "service_results": dict(r.service_results)}

    async def restart_service(self, service_name: str, timeout_seconds: int = 0) -> Dict[str, Any]:
        r = await self._conn.unary("RestartService", self.stub.RestartService,
                                   pb.RestartServiceRequest(service_name=service_name, timeout_seconds=timeout_seconds),
                                   timeout=self.long_timeout)
        return {"success": r.success, "message": r.message}

    async def get_services_status(self, service_names: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, Any]]:
        """{name: {"status", "state", "required", "container_id", "ports", "health_checks",
        "started_at", "resource_usage"}}."""
        r = await self._conn.unary("GetServicesStatus", self.stub.GetServicesStatus,
                                   pb.GetServicesStatusRequest(service_names=list(service_names or [])))
        return {name: _status(s) for name, s in sorted(r.services.items())}

    async def stream_health(self, service_names: Optional[Sequence[str]] = None,
                            interval_seconds: int = 0) -> AsyncIterator[Dict[str, Any]]:
        req = pb.StreamHealthRequest(service_names=list(service_names or []), interval_seconds=interval_seconds)
        async for h in self._conn.stream("StreamHealth", self.stub.StreamHealth, req):
            yield {"service_name": h.service_name, "healthy": h.healthy, "message": h.message,
                   "timestamp": h.timestamp, "details": dict(h.details)}

    async def get_resource_availability(self, workload_class: str = "cpu_short") -> Dict[str, Any]:
        r = await self._conn.unary("GetResourceAvailability", self.stub.GetResourceAvailability,
                                   pb.GetResourceAvailabilityRequest(workload_class=workload_class))
        hw = r.hardware
        return {"available": r.available, "capacity": r.capacity, "in_use": r.in_use,
                "hardware": {"cpu_cores": hw.cpu_cores, "memory_bytes": hw.memory_bytes,
                             "gpus": [{"index": g.index, "name": g.name, "memory_bytes": g.memory_bytes,
                                       "utilization_percent": g.utilization_percent} for g in hw.gpus]}}

    async def execute_task(self, task_id: str, workload_class: str, payload: Optional[Mapping[str, str]] = None,
                           timeout_seconds: int = 0) -> Dict[str, Any]:
        """Runs an allowlisted command in an isolated task container: {"success",
        "result", "error", "latency_ms"}."""
        req = pb.ExecuteTaskRequest(task_id=task_id, workload_class=workload_class,
                                    payload={str(k): str(v) for k, v in (payload or {}).items()},
                                    timeout_seconds=timeout_seconds)
        limit = max(self._conn.timeout, timeout_seconds + 30.0) if timeout_seconds else self.long_timeout
        r = await self._conn.unary("ExecuteTask", self.stub.ExecuteTask, req, timeout=limit)
        return {"success": r.success, "result": dict(r.result), "error": r.error, "latency_ms": r.latency_ms}

    async def pull_images(self, image_names: Optional[Sequence[str]] = None) -> AsyncIterator[Dict[str, Any]]:
        """Progress {"image_name", "status", "current", "total", "progress_percent",
        "message"}; status "complete" or "error" ends each image."""
        req = pb.PullImagesRequest(image_names=list(image_names or []))
        async for p in self._conn.stream("PullImages", self.stub.PullImages, req, timeout=self.long_timeout):
            yield {"image_name": p.image_name, "status": p.status, "current": p.current, "total": p.total,
                   "progress_percent": p.progress_percent, "message": p.message}

    async def stream_logs(self, service_name: str, follow: bool = False, tail: int = 0,
                          since_timestamp: int = 0) -> AsyncIterator[Dict[str, Any]]:
        """{"service_name", "container_id", "stream", "message", "timestamp",
        "timestamp_ns"}; without follow the stream ends at the log's end."""
        req = pb.StreamLogsRequest(service_name=service_name, follow=follow, tail=tail, since_timestamp=since_timestamp)
        async for e in self._conn.stream("StreamLogs", self.stub.StreamLogs, req):
            yield {"service_name": e.service_name, "container_id": e.container_id, "stream": e.stream,
                   "message": e.message, "timestamp": e.timestamp, "timestamp_ns": e.timestamp_ns}
