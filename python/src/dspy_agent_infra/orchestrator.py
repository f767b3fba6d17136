"""OrchestratorClient: the orchestrator's gRPC API for async agent code.

The old client's methods keep their names, arguments and return shapes (health_check,
submit_task, stream_task_results, get_task_status, get_metrics, stream_events); the
rest are additions: task handles, batch submission, as_completed, cancel and list,
workflows."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._connection import TLS, Connection, env_address
from ._pb.orchestrator.v1 import orchestrator_pb2 as pb
from ._pb.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from .errors import AlreadyExists, InfraError, InvalidArgument, QueueFull, SubmitRefused, TaskFailed

DEFAULT_ADDRESS = "127.0.0.1:50052"
FINAL = frozenset({"completed", "failed", "cancelled"})


def default_address() -> str:
    """$ORCHESTRATOR_GRPC_ADDR (the old client's), else $ORCHESTRATOR_ADDR, else 127.0.0.1:50052."""
    return env_address(("ORCHESTRATOR_GRPC_ADDR", "ORCHESTRATOR_ADDR"), DEFAULT_ADDRESS)


def encode_payload(payload: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """The wire payload: string values as they are; every other value (lists, dicts,
    numbers, booleans, None) as JSON in the object under `payload_json`, which the
    orchestrator merges into the payload. Never Python repr text."""
    out: Dict[str, str] = {}
    structured: Dict[str, Any] = {}
    for key, value in (payload or {}).items():
        key = str(key)
        if key == "payload_json":
            given = json.loads(value) if isinstance(value, str) else value
            if not isinstance(given, dict):
                raise TypeError("payload_json must be a JSON object (a dict, or its JSON text)")
            structured = {**given, **structured}
        elif isinstance(value, str):
            out[key] = value
        else:
            structured[key] = value
    if structured:
        out["payload_json"] = json.dumps(structured, separators=(",", ":"), allow_nan=False)
    return out


@dataclass
class TaskResult:
    """A task's state as the result stream or GetTaskStatus reports it."""

    task_id: str
    status: str
    result: Dict[str, str] = field(default_factory=dict)
    error: str = ""
    duration_ms: float = 0.0
    completed_at: int = 0
    attempts: int = 0
    task_class: str = ""

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @staticmethod
    def from_pb(r: Any) -> "TaskResult":
        return TaskResult(r.task_id, r.status, dict(r.result), r.error, r.duration_ms, r.completed_at, r.attempts,
                          getattr(r, "class"))


class TaskHandle:
    """A submitted task. `await handle.result()` waits for its end. Cancelling the
    coroutine that waits cancels nothing on the server; `await handle.cancel()` does."""

    def __init__(self, client: "OrchestratorClient", task_id: str) -> None:
        self._client = client
        self.task_id = task_id
        self._final: Optional[TaskResult] = None

    def __repr__(self) -> str:
        return f"TaskHandle({self.task_id!r}, {self._final.status if self._final else 'waiting'})"

    def done(self) -> bool:
        """True once this handle has seen the task's end."""
        return self._final is not None

    async def result(self, timeout: Optional[float] = None, *, raise_on_failure: bool = True) -> TaskResult:
        """The final TaskResult. Raises TaskFailed when the task failed or was cancelled
        (unless raise_on_failure=False) and asyncio.TimeoutError after `timeout` seconds."""
        if self._final is None:
            final = await asyncio.wait_for(self._client._wait_final(self.task_id), timeout)
            self._final = final
        if raise_on_failure and not self._final.ok:
            raise TaskFailed(self._final)
        return self._final

    async def status(self) -> Dict[str, Any]:
        return await self._client.get_task_status(self.task_id)

    async def cancel(self) -> Dict[str, Any]:
        """Cancels the task on the server (queued or running)."""
        return await self._client.cancel_task(self.task_id)


@dataclass
class TaskSpec:
    """One task of a batch: submit_many([TaskSpec("cpu_short", {...}), ...])."""

    task_class: str = "cpu_short"
    payload: Optional[Mapping[str, Any]] = None
    task_id: Optional[str] = None
    priority: int = 0
    workflow_id: Optional[str] = None


def _info(t: Any) -> Dict[str, Any]:
    return {"task_id": t.task_id, "class": getattr(t, "class"), "status": t.status, "priority": t.priority,
            "workflow_id": t.workflow_id, "attempts": t.attempts, "payload": dict(t.payload),
            "result": dict(t.result), "error": t.error, "submitted_at_ms": t.submitted_at_ms,
            "started_at_ms": t.started_at_ms, "finished_at_ms": t.finished_at_ms}


def _run(r: Any) -> Dict[str, Any]:
    return {"run_id": r.run_id, "workflow_id": r.workflow_id, "workflow_version": r.workflow_version,
            "status": r.status, "idempotency_key": r.idempotency_key, "input": dict(r.input), "error": r.error,
            "created_at_ms": r.created_at_ms, "updated_at_ms": r.updated_at_ms, "finished_at_ms": r.finished_at_ms,
            "steps": [{"node_id": s.node_id, "name": s.name, "type": s.type, "status": s.status,
                       "attempts": s.attempts, "task_id": s.task_id, "started_at_ms": s.started_at_ms,
                       "finished_at_ms": s.finished_at_ms, "result": dict(s.result), "error": s.error}
                      for s in r.steps]}


class OrchestratorClient:
    """Async client of the orchestrator (grpc.aio). Use `async with
    OrchestratorClient() as client:` or `await client.connect()` ... `await client.close()`.

    Every unary call has a deadline (`timeout`, default 30 s; streams take a `timeout=`
    of their own and otherwise last until they end or the caller stops); UNAVAILABLE is retried
    by the channel's retry policy (5 attempts, 0.1-2 s backoff); other failures raise
    an InfraError subclass naming the daemon, the call and what to do."""

    def __init__(self, address: Optional[str] = None, *, timeout: float = 30.0, token: Optional[str] = None,
                 tls: Optional[TLS] = None, retry: bool = True) -> None:
        self.address = address or default_address()
        self._conn = Connection("orchestrator", "orchestrator.v1.OrchestratorService", self.address,
                                timeout=timeout, token=token, tls=tls, retry=retry)
        self.stub = pb_grpc.OrchestratorServiceStub(self._conn.channel)
        self.channel = self._conn.channel

    async def connect(self, timeout: Optional[float] = None) -> None:
        """Waits until the channel is connected; Unavailable after `timeout`."""
        await self._conn.wait_ready(timeout)

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> "OrchestratorClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ---- the old client's methods (same names, arguments and return shapes) ----

    async def health_check(self) -> Dict[str, Any]:
        """{"healthy", "version", "services"}; {"healthy": False, "error"} when the call
        fails (as the old client)."""
        try:
            r = await self._conn.unary("Health", self.stub.Health, pb.HealthRequest())
        except InfraError as e:
            return {"healthy": False, "error": str(e)}
        return {"healthy": r.healthy, "version": r.version, "services": dict(r.services)}

    async def submit_task(self, task_id: str, task_class: str = "cpu_short",
                          payload: Optional[Mapping[str, Any]] = None, priority: int = 0,
                          workflow_id: Optional[str] = None) -> Dict[str, Any]:
        """{"success", "task_id", "error"}. A refusal by the orchestrator (bad argument,
        taken id, full queue) is {"success": False, "task_id", "error"} as before; a
        daemon that cannot be reached raises Unavailable (the old client hid it in the
        dict)."""
        req = pb.SubmitTaskRequest(id=task_id, payload=encode_payload(payload), priority=priority,
                                   workflow_id=workflow_id or "")
        setattr(req, "class", task_class)
        try:
            r = await self._conn.unary("SubmitTask", self.stub.SubmitTask, req)
        except (InvalidArgument, AlreadyExists, QueueFull) as e:
            return {"success": False, "task_id": task_id, "error": e.details}
        return {"success": r.success, "task_id": r.task_id, "error": r.error}

    async def stream_task_results(self, task_ids: Optional[Sequence[str]] = None, include_completed: bool = True,
                                  timeout: Optional[float] = None) -> AsyncIterator[Dict[str, Any]]:
        """Dicts {"task_id", "status", "result", "error", "duration_ms", "completed_at"}
        (plus "attempts", "class"). With task_ids the stream ends once every named task
        is finished; without, it runs until the caller stops iterating."""
        req = pb.StreamTaskResultsRequest(task_ids=list(task_ids or []), include_completed=include_completed)
        async for r in self._conn.stream("StreamTaskResults", self.stub.StreamTaskResults, req, timeout):
            yield {"task_id": r.task_id, "status": r.status, "result": dict(r.result), "error": r.error,
                   "duration_ms": r.duration_ms, "completed_at": r.completed_at, "attempts": r.attempts,
                   "class": getattr(r, "class")}

    async def get_task_status(self, task_id: str) -> Dict[str, Any]:
        """{"task_id", "status", "result", "result_payload", "error"} (plus "task", the
        whole record). NotFound for an unknown id."""
        r = await self._conn.unary("GetTaskStatus", self.stub.GetTaskStatus, pb.GetTaskStatusRequest(task_id=task_id))
        result = dict(r.result)
        out: Dict[str, Any] = {"task_id": r.task_id, "status": r.status, "result": result, "result_payload": result,
                               "error": r.error}
        if r.HasField("task"):
            out["task"] = _info(r.task)
        if r.HasField("slurm_job"):
            j = r.slurm_job
            out["slurm_job"] = {"job_id": j.job_id, "status": j.status, "slurm_state": j.slurm_state,
                                "attempt": j.attempt, "exit_code": j.exit_code, "reason": j.reason, "error": j.error,
                                "output_path": j.output_path, "nodes": j.nodes, "template": j.template_name}
        return out

    async def get_metrics(self, metric_names: Optional[Sequence[str]] = None) -> Dict[str, float]:
        """{name: value}; every name when none are given."""
        r = await self._conn.unary("GetMetrics", self.stub.GetMetrics,
                                   pb.GetMetricsRequest(metric_names=list(metric_names or [])))
        return dict(r.metrics)

    async def stream_events(self, event_types: Optional[Sequence[str]] = None, since_timestamp: int = 0,
                            timeout: Optional[float] = None) -> AsyncIterator[Dict[str, Any]]:
        """Dicts {"event_type", "resource_id", "data", "timestamp"} (plus "timestamp_ns",
        "event_id", "sequence", "source"): stored events since the time first, then live
        ones until the caller stops iterating."""
        req = pb.StreamEventsRequest(event_types=list(event_types or []), since_timestamp=since_timestamp)
        async for e in self._conn.stream("StreamEvents", self.stub.StreamEvents, req, timeout):
            yield {"event_type": e.event_type, "resource_id": e.resource_id, "data": dict(e.data),
                   "timestamp": e.timestamp, "timestamp_ns": e.timestamp_ns, "event_id": e.event_id,
                   "sequence": e.sequence, "source": e.source}

    # ---- additions: tasks ----

    async def cancel_task(self, task_id: str) -> Dict[str, Any]:
        """{"success", "status", "error"}: the task's status after the request."""
        r = await self._conn.unary("CancelTask", self.stub.CancelTask, pb.CancelTaskRequest(task_id=task_id))
        return {"success": r.success, "status": r.status, "error": r.error}

    async def list_tasks(self, status: Optional[str] = None, task_class: Optional[str] = None,
                         workflow_id: Optional[str] = None, limit: int = 100,
                         page_token: str = "") -> Dict[str, Any]:
        """{"items": [task...], "next_page_token"} in submission order."""
        req = pb.ListTasksRequest(status=status or "", workflow_id=workflow_id or "", page_size=limit,
                                  page_token=page_token)
        setattr(req, "class", task_class or "")
        r = await self._conn.unary("ListTasks", self.stub.ListTasks, req)
        return {"items": [_info(t) for t in r.tasks], "next_page_token": r.next_page_token}

    async def submit(self, task_class: str = "cpu_short", payload: Optional[Mapping[str, Any]] = None, *,
                     task_id: Optional[str] = None, priority: int = 0,
                     workflow_id: Optional[str] = None) -> TaskHandle:
        """Submits a task (durable when this returns) and gives its handle. Raises the
        typed error when the orchestrator refuses it."""
        task_id = task_id or f"task-{uuid.uuid4().hex}"
        req = pb.SubmitTaskRequest(id=task_id, payload=encode_payload(payload), priority=priority,
                                   workflow_id=workflow_id or "")
        setattr(req, "class", task_class)
        r = await self._conn.unary("SubmitTask", self.stub.SubmitTask, req)
        if not r.success:
            raise InfraError("orchestrator", "SubmitTask", r.error or "refused")
        return TaskHandle(self, r.task_id or task_id)

    async def submit_many(self, tasks: Iterable[Union[TaskSpec, Mapping[str, Any]]], concurrency: int = 4,
                          batch_size: int = 1000) -> List[TaskHandle]:
        """Submits many tasks with SubmitTasks, `batch_size` per call (the orchestrator
        stores a batch in shared group commits), up to `concurrency` calls in flight;
        the handles come back in the order given. When some are refused, raises
        SubmitRefused after all were tried: `.accepted` holds the handles of the stored
        ones, `.refused` (index, task id, message) the others."""
        specs = [t if isinstance(t, TaskSpec) else TaskSpec(**t) for t in tasks]
        requests = []
        for spec in specs:
            req = pb.SubmitTaskRequest(id=spec.task_id or f"task-{uuid.uuid4().hex}",
                                       payload=encode_payload(spec.payload), priority=spec.priority,
                                       workflow_id=spec.workflow_id or "")
            setattr(req, "class", spec.task_class)
            requests.append(req)
        size = max(1, min(batch_size, 10000))
        chunks = [requests[i:i + size] for i in range(0, len(requests), size)]
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(chunk: List[Any]) -> List[Any]:
            async with gate:
                r = await self._conn.unary("SubmitTasks", self.stub.SubmitTasks, pb.SubmitTasksRequest(tasks=chunk))
                return list(r.results)

        outcomes = [o for chunk in await asyncio.gather(*(one(c) for c in chunks)) for o in chunk]
        handles: List[TaskHandle] = []
        refused: List[Tuple[int, str, str]] = []
        for i, (req, o) in enumerate(zip(requests, outcomes)):
            if o.success:
                handles.append(TaskHandle(self, o.task_id))
            else:
                refused.append((i, req.id, f"{o.error} ({o.code})"))
        if refused:
            raise SubmitRefused(handles, refused)
        return handles

    async def _wait_final(self, task_id: str) -> TaskResult:
        req = pb.StreamTaskResultsRequest(task_ids=[task_id], include_completed=True)
        async for r in self._conn.stream("StreamTaskResults", self.stub.StreamTaskResults, req):
            if r.task_id == task_id and r.status in FINAL:
                return TaskResult.from_pb(r)
        raise InfraError("orchestrator", "StreamTaskResults", f"the stream ended before task {task_id} finished")

    async def as_completed(self, handles: Iterable[TaskHandle],
                           timeout: Optional[float] = None) -> AsyncIterator[TaskHandle]:
        """Yields each handle once its task has finished, in the order they finish (one
        result stream for all of them). asyncio.TimeoutError after `timeout` seconds."""
        pending: Dict[str, List[TaskHandle]] = {}
        for h in handles:
            if h.done():
                yield h
            else:
                pending.setdefault(h.task_id, []).append(h)
        if not pending:
            return
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        req = pb.StreamTaskResultsRequest(task_ids=list(pending), include_completed=True)
        stream = self._conn.stream("StreamTaskResults", self.stub.StreamTaskResults, req)
        try:
            while pending:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    raise asyncio.TimeoutError(f"{len(pending)} task(s) not finished within {timeout} s")
                try:
                    r = await asyncio.wait_for(stream.__anext__(), left)
                except StopAsyncIteration:
                    raise InfraError("orchestrator", "StreamTaskResults",
                                     f"the stream ended with {len(pending)} task(s) unfinished") from None
                if r.status in FINAL and r.task_id in pending:
                    final = TaskResult.from_pb(r)
                    for h in pending.pop(r.task_id):
                        h._final = final
                        yield h
        finally:
            await stream.aclose()

    # ---- additions: workflows ----

    async def create_workflow(self, spec: Union[Mapping[str, Any], str, bytes], workflow_id: str = "",
                              name: str = "", description: str = "") -> Dict[str, Any]:
        """Stores a workflow (the contract's JSON as a dict, or JSON/YAML text); a known
        id stores a new version. {"success", "workflow_id", "error"}."""
        data = json.dumps(spec).encode() if isinstance(spec, Mapping) else spec.encode() if isinstance(spec, str) else spec
        r = await self._conn.unary("CreateWorkflow", self.stub.CreateWorkflow,
                                   pb.CreateWorkflowRequest(id=workflow_id, name=name, description=description,
                                                            spec=data))
        return {"success": r.success, "workflow_id": r.workflow_id, "error": r.error}

    async def start_workflow_run(self, workflow_id: str, input: Optional[Mapping[str, Any]] = None,
                                 idempotency_key: str = "") -> Dict[str, Any]:
        """Starts a run (durable when this returns). {"success", "run_id", "error"}.
        Non-string input values go as JSON text."""
        values = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (input or {}).items()}
        r = await self._conn.unary("StartWorkflowRun", self.stub.StartWorkflowRun,
                                   pb.StartWorkflowRunRequest(workflow_id=workflow_id, idempotency_key=idempotency_key,
                                                              input=values))
        return {"success": r.success, "run_id": r.run_id, "error": r.error}

    async def stream_workflow_status(self, run_id: str,
                                     timeout: Optional[float] = None) -> AsyncIterator[Dict[str, Any]]:
        """{"run_id", "status", "current_step", "steps_completed", "total_steps",
        "output", "error"} now and on every step change; ends when the run ends."""
        req = pb.StreamWorkflowStatusRequest(run_id=run_id)
        async for u in self._conn.stream("StreamWorkflowStatus", self.stub.StreamWorkflowStatus, req, timeout):
            yield {"run_id": u.run_id, "status": u.status, "current_step": u.current_step,
                   "steps_completed": u.steps_completed, "total_steps": u.total_steps, "output": dict(u.output),
                   "error": u.error}

    async def get_workflow_run(self, run_id: str) -> Dict[str, Any]:
        """The whole run record with its steps."""
        r = await self._conn.unary("GetWorkflowRun", self.stub.GetWorkflowRun, pb.GetWorkflowRunRequest(run_id=run_id))
        return _run(r)

    async def cancel_workflow_run(self, run_id: str) -> Dict[str, Any]:
        """{"success", "status", "error"}: the run's status after the request."""
        r = await self._conn.unary("CancelWorkflowRun", self.stub.CancelWorkflowRun,
                                   pb.CancelWorkflowRunRequest(run_id=run_id))
        return {"success": r.success, "status": r.status, "error": r.error}


def orchestrator_client(address: Optional[str] = None, **kwargs: Any) -> OrchestratorClient:
    """The old helper: `async with orchestrator_client() as client:` connects and closes."""
    return OrchestratorClient(address, **kwargs)
