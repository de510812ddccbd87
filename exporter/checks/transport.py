"""HTTP plumbing for checks: clients, per-phase timings, TLS expiry, bounded bodies, error mapping.

A check sees what a new visitor sees: by default every check gets its own client, so DNS, TCP and
TLS are part of what is measured. DNS is resolved here (not inside the socket library) so that
`resolve` is its own phase.
"""

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

import httpcore
import httpx

from exporter.checks.base import CheckContext, CheckResult, Reason
from exporter.config import ServiceConfig

USER_AGENT = "sefaria-status-exporter/0.1"

_current_phases: ContextVar[dict[str, float] | None] = ContextVar("phases", default=None)


class _ResolvingBackend(httpcore.AsyncNetworkBackend):
    """The default network backend, with name resolution timed as the `resolve` phase."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"no address for {host}")

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            ip_address(host)
        except ValueError:
            pass
        else:
            return [host]
        started = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
        phases = _current_phases.get()
        if phases is not None:
            phases["resolve"] = time.perf_counter() - started
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(*args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ProbeTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool that uses the resolving backend (no proxies: we probe).

    httpx's own __init__ is skipped on purpose: all it does is build a pool (`_pool`, the only
    state the transport has), and a client is made for every check.
    """

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=4,
            max_keepalive_connections=1,
            keepalive_expiry=300.0,
            network_backend=_ResolvingBackend(),
        )


def new_client(ctx: CheckContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=_ProbeTransport(ctx.ssl_context),
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


@contextlib.asynccontextmanager
async def client_for(service: ServiceConfig, ctx: CheckContext) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh client for this check, or the service's kept one with `reuse_connection`."""
    if not service.reuse_connection:
        async with new_client(ctx) as client:
            yield client
        return
    kept = ctx.kept_clients.get(service.id)
    if kept is None or kept[0] is not service:
        kept = ctx.kept_clients[service.id] = (service, new_client(ctx))
    yield kept[1]


@dataclass
class _PhaseTracer:
    """httpcore trace hook that turns connection and request events into phase durations."""

    phases: dict[str, float] = field(default_factory=dict)
    cert_expiry: float | None = None
    headers_received_at: float = 0.0
    _started: dict[str, float] = field(default_factory=dict)

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        _, operation, stage = event.rsplit(".", 2)
        if stage == "started":
            self._started[operation] = now
            return
        if stage != "complete":
            return
        began = self._started.get(operation, now)
        if operation == "connect_tcp":
            self.phases["connect"] = now - began - self.phases.get("resolve", 0.0)
        elif operation == "start_tls":
            self.phases["tls"] = now - began
            self.cert_expiry = _cert_expiry(info.get("return_value"))
        elif operation == "receive_response_headers":
            sent = self._started.get("send_request_headers", began)
            self.phases["processing"] = now - sent
            self.headers_received_at = now


def _cert_expiry(stream: Any) -> float | None:
    """notAfter of the peer certificate, as unix time (the leaf: Python 3.11 shows no chain)."""
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    certificate = ssl_object.getpeercert() if ssl_object is not None else None
    if not certificate or "notAfter" not in certificate:
        return None
    return float(ssl.cert_time_to_seconds(certificate["notAfter"]))


@dataclass
class Exchange:
    """One request's response plus what was measured on the way."""

    response: httpx.Response
    tracer: _PhaseTracer

    @property
    def phases(self) -> dict[str, float]:
        return self.tracer.phases

    async def read_body(self, limit: int) -> tuple[bytes, bool]:
        """Up to `limit` bytes of the body and whether it was cut; times the `transfer` phase."""
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async for chunk in self.response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                truncated = size > limit or not self.response.is_stream_consumed
                break
        self.mark_transfer_done()
        return b"".join(chunks)[:limit], truncated

    def mark_transfer_done(self) -> None:
        if self.tracer.headers_received_at:
            self.phases["transfer"] = time.perf_counter() - self.tracer.headers_received_at


@contextlib.asynccontextmanager
async def exchange(
    client: httpx.AsyncClient,
    service: ServiceConfig,
    method: str,
    url: str,
    timeout: float,
    **request: Any,
) -> AsyncIterator[Exchange]:
    """Send a request and yield its streamed response; the body is read only on demand."""
    tracer = _PhaseTracer()
    token = _current_phases.set(tracer.phases)
    try:
        built = client.build_request(
            method,
            url,
            headers=dict(service.headers) | request.pop("headers", {}),
            timeout=httpx.Timeout(timeout),
            extensions={"trace": tracer},
            **request,
        )
        response = await client.send(built, stream=True, follow_redirects=service.follow_redirects)
        try:
            yield Exchange(response, tracer)
        finally:
            await response.aclose()
    finally:
        _current_phases.reset(token)


def failure_from_error(exc: Exception) -> CheckResult:
    """Map a transport-level exception to a failed, usually transient, CheckResult."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return CheckResult.failure(Reason.TIMEOUT, _describe(exc) or "timed out", transient=True)
    if isinstance(exc, httpx.ConnectError) and _caused_by(exc, ssl.SSLError):
        return CheckResult.failure(Reason.TLS_ERROR, _describe(exc))
    if isinstance(exc, httpx.TooManyRedirects):
        return CheckResult.failure(Reason.HTTP_STATUS, _describe(exc))
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return CheckResult.failure(Reason.INVALID_RESPONSE, _describe(exc), transient=True)
    return CheckResult.failure(Reason.CONNECT_ERROR, _describe(exc), transient=True)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
