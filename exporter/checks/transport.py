"""HTTP plumbing for checks: which client a check uses, bounded bodies, error mapping.

The client and the network under it (a connection per request, phases, TLS expiry) are in
client.py and network.py.
"""

import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from exporter.checks.base import CheckContext, CheckResult, Reason
from exporter.checks.client import MEASUREMENT, new_client
from exporter.checks.network import Measurement, describe
from exporter.config import ServiceConfig


@contextlib.asynccontextmanager
async def client_for(service: ServiceConfig, ctx: CheckContext) -> AsyncIterator[httpx.AsyncClient]:
    """The shared client, or the service's own one that keeps its connection."""
    if not service.reuse_connection:
        yield ctx.client
        return
    kept = ctx.kept_clients.get(service.id)
    if kept is not None and kept[0] is not service:
        await kept[1].aclose()  # made for an older config of this service
        kept = None
    if kept is None:
        client = new_client(ctx.ssl_context, ctx.kept_connection_max_age, ctx.clock)
        kept = ctx.kept_clients[service.id] = (service, client)
    yield kept[1]


@dataclass
class Exchange:
    """One request's response plus what was measured on the way."""

    response: httpx.Response
    measurement: Measurement

    @property
    def phases(self) -> dict[str, float]:
        return self.measurement.phases

    @property
    def cert_expiry(self) -> float | None:
        return self.measurement.cert_expiry

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
        if self.measurement.headers_received_at:
            self.phases["transfer"] = time.perf_counter() - self.measurement.headers_received_at


@contextlib.asynccontextmanager
async def exchange(
    client: httpx.AsyncClient,
    service: ServiceConfig,
    method: str,
    url: httpx.URL | str,
    timeout: float,
    **request: Any,
) -> AsyncIterator[Exchange]:
    """Send a request and yield its streamed response; the body is read only on demand."""
    measurement = Measurement()
    built = client.build_request(
        method,
        url,
        headers=dict(service.headers) | request.pop("headers", {}),
        timeout=httpx.Timeout(timeout),
        extensions={MEASUREMENT: measurement},
        **request,
    )
    response = await client.send(built, stream=True, follow_redirects=service.follow_redirects)
    try:
        yield Exchange(response, measurement)
    finally:
        await response.aclose()


def failure_from_error(exc: Exception) -> CheckResult:
    """Map a transport-level exception to a failed, usually transient, CheckResult."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return CheckResult.failure(Reason.TIMEOUT, describe(exc) or "timed out", transient=True)
    if isinstance(exc, httpx.ConnectError) and _caused_by(exc, ssl.SSLError):
        return CheckResult.failure(Reason.TLS_ERROR, describe(exc))
    if isinstance(exc, httpx.TooManyRedirects):
        return CheckResult.failure(Reason.HTTP_STATUS, describe(exc))
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return CheckResult.failure(Reason.INVALID_RESPONSE, describe(exc), transient=True)
    return CheckResult.failure(Reason.CONNECT_ERROR, describe(exc), transient=True)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
