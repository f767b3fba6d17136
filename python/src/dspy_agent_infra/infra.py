"""AgentInfra: both clients behind one async context manager that can also start the
system; SyncAgentInfra: the same for scripts and notebooks without async code."""

from __future__ import annotations

import asyncio
import functools
import inspect
import shutil
import threading
from typing import Any, Awaitable, Iterator, List, Optional, Sequence, TypeVar

import grpc

from ._connection import TLS
from .env_manager import EnvManagerClient
from .errors import InfraError, Unavailable
from .orchestrator import OrchestratorClient, TaskHandle

T = TypeVar("T")


class AgentInfra:
    """`async with AgentInfra.start() as infra:` connects to both daemons (addresses from
    the arguments, else $ORCHESTRATOR_GRPC_ADDR / $ORCHESTRATOR_ADDR and
    $ENV_MANAGER_ADDR, else the defaults), optionally runs `dspy-agent start` first, waits
    until the orchestrator reports healthy, and gives `infra.orchestrator` and
    `infra.env_manager`. Leaving the block closes the connections; the system keeps
    running."""

    def __init__(self, orchestrator_address: Optional[str] = None, env_manager_address: Optional[str] = None, *,
                 timeout: float = 30.0, token: Optional[str] = None, tls: Optional[TLS] = None,
                 start_system: bool = False, services: Optional[Sequence[str]] = None, cli: str = "dspy-agent",
                 connect_timeout: float = 10.0, health_timeout: float = 60.0) -> None:
        self.orchestrator = OrchestratorClient(orchestrator_address, timeout=timeout, token=token, tls=tls)
        self.env_manager = EnvManagerClient(env_manager_address, timeout=timeout, token=token, tls=tls)
        self.start_system = start_system
        self.services = list(services) if services is not None else None
        self.cli = cli
        self.connect_timeout = connect_timeout
        self.health_timeout = health_timeout
        self.start_output = ""

    @classmethod
    def start(cls, orchestrator_address: Optional[str] = None, env_manager_address: Optional[str] = None,
              **kwargs: Any) -> "AgentInfra":
        """The context manager; `start_system=True` runs `dspy-agent start` (through
        systemd when the units are installed) before connecting, `services=[...]` limits
        which services it starts."""
        return cls(orchestrator_address, env_manager_address, **kwargs)

    async def _run_cli_start(self) -> None:
        binary = shutil.which(self.cli) or self.cli
        args = [binary, "start"]
        if self.services is not None:
            args += ["--services", ",".join(self.services)] if self.services else ["--no-services"]
        try:
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT)
        except OSError as e:
            raise InfraError("dspy-agent", "start", f"cannot run {binary}: {e}",
                             hint="install the system (scripts/install.sh) or pass cli= the path of dspy-agent") from None
        out, _ = await proc.communicate()  # the event loop keeps running meanwhile
        self.start_output = out.decode(errors="replace")
        if proc.returncode != 0:
            tail = "\n".join(self.start_output.splitlines()[-15:])
            raise InfraError("dspy-agent", "start", f"exit code {proc.returncode}:\n{tail}",
                             hint="`dspy-agent status` and `dspy-agent logs orchestrator` tell more")

    async def wait_healthy(self, timeout: Optional[float] = None) -> None:
        """Until the orchestrator's Health says healthy; Unavailable after `timeout`."""
        loop = asyncio.get_running_loop()
        limit = self.health_timeout if timeout is None else timeout
        deadline = loop.time() + limit
        last: Any = None
        while True:
            last = await self.orchestrator.health_check()
            if last.get("healthy"):
                return
            if loop.time() >= deadline:
                raise Unavailable("orchestrator", "Health", f"not healthy within {limit:g} s: {last}",
                                  grpc.StatusCode.UNAVAILABLE)
            await asyncio.sleep(0.2)

    async def __aenter__(self) -> "AgentInfra":
        try:
            if self.start_system:
                await self._run_cli_start()
            await asyncio.gather(self.orchestrator.connect(self.connect_timeout),
                                 self.env_manager.connect(self.connect_timeout))
            await self.wait_healthy()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await asyncio.gather(self.orchestrator.close(), self.env_manager.close())


class _Sync:
    """Runs an async object's methods on the background loop and waits for them;
    async iterators become plain iterators; handles come back wrapped too."""

    def __init__(self, target: Any, runner: "SyncAgentInfra") -> None:
        self._target = target
        self._runner = runner

    def __repr__(self) -> str:
        return f"Sync({self._target!r})"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if inspect.isasyncgenfunction(attr):
            @functools.wraps(attr)
            def iterate(*args: Any, **kwargs: Any) -> Iterator[Any]:
                return self._runner._iterate(attr(*args, **kwargs))
            return iterate
        if inspect.iscoroutinefunction(attr):
            @functools.wraps(attr)
            def call(*args: Any, **kwargs: Any) -> Any:
                return self._runner._wrap(self._runner._call(attr(*args, **kwargs)))
            return call
        return attr


class SyncAgentInfra:
    """AgentInfra for code without an event loop of its own (scripts, notebooks):

        with SyncAgentInfra() as infra:
            handle = infra.orchestrator.submit("cpu_short", {"command": "echo"})
            print(handle.result(timeout=60))

    It runs a private event loop in a background thread, so it also works where a loop
    is already running (Jupyter). Arguments as AgentInfra's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dspy-agent-infra", daemon=True)
        self._thread.start()

        async def make() -> AgentInfra:
            return AgentInfra(*args, **kwargs)  # the channels belong to this loop

        self._infra: AgentInfra = self._call(make())
        self.orchestrator = _Sync(self._infra.orchestrator, self)
        self.env_manager = _Sync(self._infra.env_manager, self)
        self._entered = False

    def _call(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, TaskHandle):
            return _Sync(value, self)
        if isinstance(value, list) and value and all(isinstance(v, TaskHandle) for v in value):
            return [_Sync(v, self) for v in value]
        return value

    def _iterate(self, agen: Any) -> Iterator[Any]:
        try:
            while True:
                try:
                    item = self._call(agen.__anext__())
                except StopAsyncIteration:
                    return
                yield self._wrap(item)
        finally:
            self._call(agen.aclose())

    def as_completed(self, handles: List[Any], timeout: Optional[float] = None) -> Iterator[Any]:
        """Handles (from this object's orchestrator) as their tasks finish."""
        raw = [h._target if isinstance(h, _Sync) else h for h in handles]
        return self._iterate(self._infra.orchestrator.as_completed(raw, timeout))

    def __enter__(self) -> "SyncAgentInfra":
        self._call(self._infra.__aenter__())
        self._entered = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._infra.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

