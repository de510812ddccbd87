"""The httpx client checks share, over a transport that connects anew for every request.

A prober wants the opposite of a connection pool: each check sees what a new visitor sees. And
httpx's pool, shared by hundreds of checks in flight, costs O(requests x connections) per event
(encode/httpx#3215), while a client per check pays its construction every time. So one client
is shared, and its transport opens a connection per request (network.py: resolve, connect and TLS
timed as phases), speaks HTTP/1.1 over it (http11.py) and closes it with the response. A service
with `reuse_connection` gets its own client whose transport keeps the connection between checks,
opened anew after `keep_for` seconds so that a renewed certificate is seen (a kept connection
has no handshake to read one from).

Per-operation timeouts are not applied here: every exchange runs inside its attempt's
`asyncio.timeout` (retry.py), which bounds DNS, connect, TLS and a dripping body alike.
"""

import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from exporter.checks.http11 import HTTP11Connection
from exporter.checks.network import Measurement, connect

USER_AGENT: Final = "sefaria-status-exporter/0.1"
MEASUREMENT: Final = "sefaria_status.measurement"
"""Request extension holding the `Measurement` the transport fills in."""


def new_client(
    ssl_context: ssl.SSLContext,
    keep_for: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> httpx.AsyncClient:
    """A client for checks: no proxies from the environment, no cookies kept between requests.

    With `keep_for` its one connection is kept between requests (and opened anew after that many
    seconds); without, every request says `Connection: close`, as blackbox_exporter's do.
    """
    headers = {"User-Agent": USER_AGENT}
    if keep_for is None:
        headers["Connection"] = "close"
    return _VisitorClient(
        transport=ProbeTransport(ssl_context, keep_for, clock), trust_env=False, headers=headers
    )


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep none (and skip building the urllib objects httpx reads them through)."""


class _VisitorClient(httpx.AsyncClient):
    """A client that keeps no cookies: every check is a first visit, not the next one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        """httpx's constructor sets the cookies to start with; there are none to keep."""


@dataclass(frozen=True)
class _Lease:
    """A connection, where it leads and since when it is open."""

    connection: HTTP11Connection
    origin: tuple[str, str, int]
    opened_at: float


class ProbeTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        keep_for: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl_context = ssl_context
        self._keep_for = keep_for
        self._clock = clock
        self._kept: _Lease | None = None
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        measurement = request.extensions.get(MEASUREMENT) or Measurement()
        url = request.url
        host = url.raw_host.decode("ascii")  # IDNA-encoded; an IPv6 address without brackets
        origin = (url.scheme, host, url.port or (443 if url.scheme == "https" else 80))
        lease = self._take_kept(origin)
        if lease is None:
            sock = await connect(*origin, self._ssl_context, measurement)
            lease = _Lease(HTTP11Connection(sock), origin, self._clock())
        sent = time.perf_counter()
        try:
            head = await lease.connection.send(
                request.method.encode(), url.raw_path, request.headers.raw, request.stream
            )
        except BaseException:
            lease.connection.close()
            raise
        measurement.headers_received_at = time.perf_counter()
        measurement.phases["processing"] = measurement.headers_received_at - sent
        return httpx.Response(
            status_code=head.status_code,
            headers=head.headers.raw_items(),
            stream=_Body(lease, self._release),
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    def _take_kept(self, origin: tuple[str, str, int]) -> _Lease | None:
        lease, self._kept = self._kept, None
        if lease is None:
            return None
        young = self._clock() - lease.opened_at < self._keep_for
        if young and lease.origin == origin and lease.connection.reusable:
            return lease
        lease.connection.close()
        return None

    def _release(self, lease: _Lease, complete: bool) -> None:
        """A response was closed: keep its connection if wanted and reusable, else close it."""
        keep = self._keep_for is not None and not self._closed and self._kept is None
        if keep and complete:
            self._kept = lease
        else:
            lease.connection.close()

    async def aclose(self) -> None:
        self._closed = True
        lease, self._kept = self._kept, None
        if lease is not None:
            lease.connection.close()


class _Body(httpx.AsyncByteStream):
    """A response body that hands its connection back to the transport when it is closed."""

    def __init__(self, lease: _Lease, release: Callable[[_Lease, bool], None]) -> None:
        self._lease = lease
        self._release = release
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._lease.connection.body():
            yield chunk

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._release(self._lease, self._lease.connection.finish())
