"""One gRPC channel to one daemon: address, TLS, bearer token, deadlines, the retry
policy for transient failures, and turning grpc errors into typed ones."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, AsyncGenerator, Callable, List, Optional, Sequence, Tuple

import grpc
import grpc.aio

from .errors import InfraError, Unavailable, from_rpc_error

# UNAVAILABLE is retried: the daemon restarting, a connection reset, a full queue. The
# calls are safe to repeat: task ids are chosen by the client and a repeated submit of
# the same request is answered with success; reads change nothing.
RETRY_POLICY = {
    "maxAttempts": 5,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


@dataclass(frozen=True)
class TLS:
    """TLS for a daemon whose config sets tls.*: the CA that signed its certificate
    (PEM bytes; None = the system's), and a client certificate and key for mTLS."""

    root_certificates: Optional[bytes] = None
    certificate_chain: Optional[bytes] = None
    private_key: Optional[bytes] = None
    server_name: Optional[str] = None  # when the certificate names another host

    @staticmethod
    def from_files(ca: Optional[str] = None, cert: Optional[str] = None, key: Optional[str] = None,
                   server_name: Optional[str] = None) -> "TLS":
        def read(path: Optional[str]) -> Optional[bytes]:
            if path is None:
                return None
            with open(path, "rb") as f:
                return f.read()
        return TLS(read(ca), read(cert), read(key), server_name)


def env_address(names: Sequence[str], default: str) -> str:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


class Connection:
    def __init__(self, daemon: str, service: str, address: str, *, timeout: float, token: Optional[str],
                 tls: Optional[TLS], retry: bool, options: Sequence[Tuple[str, Any]] = ()) -> None:
        self.daemon = daemon
        self.address = address
        self.timeout = timeout
        token = token if token is not None else os.environ.get("DSPY_AGENT_TOKEN") or None
        self._metadata: Tuple[Tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        opts: List[Tuple[str, Any]] = [("grpc.max_receive_message_length", 16 * 1024 * 1024),
                                       ("grpc.keepalive_time_ms", 30000)]
        if retry:
            config = {"methodConfig": [{"name": [{"service": service}], "retryPolicy": RETRY_POLICY}]}
            opts += [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config))]
        else:
            opts += [("grpc.enable_retries", 0)]
        if tls is not None and tls.server_name:
            opts.append(("grpc.ssl_target_name_override", tls.server_name))
        opts += list(options)
        if tls is None:
            self.channel = grpc.aio.insecure_channel(address, options=opts)
        else:
            creds = grpc.ssl_channel_credentials(tls.root_certificates, tls.private_key, tls.certificate_chain)
            self.channel = grpc.aio.secure_channel(address, creds, options=opts)

    async def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Connects, or raises Unavailable after `timeout` (default: the call timeout)."""
        import asyncio

        limit = self.timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(self.channel.channel_ready(), limit)
        except asyncio.TimeoutError:
            raise Unavailable(self.daemon, "connect", f"nothing answers on {self.address} within {limit:g} s",
                              grpc.StatusCode.UNAVAILABLE) from None

    async def close(self) -> None:
        await self.channel.close()

    def error(self, call: str, err: grpc.RpcError) -> InfraError:
        return from_rpc_error(self.daemon, call, self.address, err)

    async def unary(self, call: str, method: Callable[..., Any], request: Any, timeout: Optional[float] = None) -> Any:
        """A unary call with the deadline and token; grpc errors become InfraError."""
        try:
            return await method(request, timeout=self.timeout if timeout is None else timeout,
                                metadata=self._metadata)
        except grpc.aio.AioRpcError as err:
            raise self.error(call, err) from None

    async def stream(self, call: str, method: Callable[..., Any], request: Any,
                     timeout: Optional[float] = None) -> AsyncGenerator[Any, None]:
        """A server stream (no deadline unless given: streams last as long as wanted)."""
        rpc = method(request, timeout=timeout, metadata=self._metadata)
        try:
            async for message in rpc:
                yield message
        except grpc.aio.AioRpcError as err:
            raise self.error(call, err) from None
        finally:
            rpc.cancel()
