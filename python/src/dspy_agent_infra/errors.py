"""Typed errors: each says which daemon, which call, what went wrong and what to do."""

from __future__ import annotations

from typing import Optional

import grpc

_HINTS = {
    grpc.StatusCode.UNAVAILABLE: "is it running? `dspy-agent status` tells; `dspy-agent start` starts it",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the call took longer than its deadline; pass a larger timeout or check "
                                       "the daemon's load (`dspy-agent status`)",
    grpc.StatusCode.UNAUTHENTICATED: "set the token (token= or $DSPY_AGENT_TOKEN) to the daemon's auth.token",
    grpc.StatusCode.INVALID_ARGUMENT: "fix the argument named in the message",
    grpc.StatusCode.NOT_FOUND: "check the id or name (list_tasks, get_workflow_run, get_services_status list them)",
    grpc.StatusCode.ALREADY_EXISTS: "use another id, or the same request to retry idempotently",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "the queue is full; retry later or raise the class's max_queued",
    grpc.StatusCode.FAILED_PRECONDITION: "the object is not in a state that allows this (e.g. already finished)",
    grpc.StatusCode.UNIMPLEMENTED: "the daemon is older than this client",
}


class InfraError(Exception):
    """A call to a daemon failed. `daemon`, `call`, `code` (grpc.StatusCode or None)
    and `details` say what; `hint` what to do."""

    def __init__(self, daemon: str, call: str, details: str, code: Optional[grpc.StatusCode] = None,
                 hint: Optional[str] = None) -> None:
        self.daemon = daemon
        self.call = call
        self.code = code
        self.details = details
        self.hint = hint if hint is not None else _HINTS.get(code, "") if code is not None else ""
        where = f"{daemon} {call}"
        text = f"{where} failed: {details}" + (f" ({code.name})" if code is not None else "")
        super().__init__(text + (f"; {self.hint}" if self.hint else ""))


class Unavailable(InfraError):
    """The daemon could not be reached (after the retry policy's attempts)."""


class DeadlineExceeded(InfraError):
    """The call's deadline passed."""


class InvalidArgument(InfraError):
    """The daemon refused an argument."""


class NotFound(InfraError):
    """No such task, workflow or run."""


class AlreadyExists(InfraError):
    """The id is taken by a different request."""


class Unauthenticated(InfraError):
    """A token is missing or wrong."""


class QueueFull(InfraError):
    """The task class's queue is full (RESOURCE_EXHAUSTED or UNAVAILABLE with a queue message)."""


class FailedPrecondition(InfraError):
    """The object's state does not allow the call."""


class SubmitRefused(InfraError):
    """Some tasks of a batch were refused: `accepted` are the handles of the stored
    ones (in order), `refused` lists (index, task id, message) of the others."""

    def __init__(self, accepted: list, refused: list) -> None:
        self.accepted = accepted
        self.refused = refused
        first = refused[0]
        super().__init__("orchestrator", "SubmitTasks",
                         f"{len(refused)} of {len(accepted) + len(refused)} task(s) refused; the first, #{first[0]} "
                         f"({first[1]}): {first[2]}", hint="fix those tasks and submit them again")


class TaskFailed(Exception):
    """A task ended failed or cancelled; `result` is its TaskResult."""

    def __init__(self, result: "object") -> None:
        self.result = result
        status = getattr(result, "status", "?")
        error = getattr(result, "error", "")
        super().__init__(f"task {getattr(result, 'task_id', '?')} {status}" + (f": {error}" if error else ""))


_BY_CODE = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: QueueFull,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
}


def from_rpc_error(daemon: str, call: str, address: str, err: grpc.RpcError) -> InfraError:
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or str(err)
    if code == grpc.StatusCode.UNAVAILABLE:
        if "max_queued" in details:
            return QueueFull(daemon, call, details, code)
        details = f"nothing usable answers on {address}: {details}"
    cls = _BY_CODE.get(code, InfraError)
    return cls(daemon, call, details, code)
