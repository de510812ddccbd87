"""A TCP (and TLS) connection on asyncio, opened phase by phase: resolve, connect, tls.

What a check measures is what a new visitor sees, so each phase is timed on its own, the way
blackbox_exporter reports them, and the certificate's expiry is read from the handshake.
"""

import asyncio
import contextlib
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, Final

import httpx

READ_BUFFER_LIMIT: Final = 256 * 1024
"""Unread bytes at which the socket stops being read: a huge body cannot fill memory."""


@dataclass
class Measurement:
    """What one request's way through the network took: phases in seconds, the TLS expiry."""

    phases: dict[str, float] = field(default_factory=dict)
    cert_expiry: float | None = None
    headers_received_at: float = 0.0


class Socket(asyncio.Protocol):
    """One connection, read and written by awaiting, fed by asyncio's protocol callbacks."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._reading_paused = False
        self._closed = False
        self._error: BaseException | None = None
        self._data_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > READ_BUFFER_LIMIT and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake_reader()
        return False  # no half-open connections: the request was sent before any answer

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._error = exc
        self._wake_reader()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._write_waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_reader(self) -> None:
        waiter, self._data_waiter = self._data_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` received bytes; b"" once the peer has closed."""
        while not self._buffer:
            if self._error is not None:
                raise httpx.ReadError(describe(self._error))
            if self._closed:
                return b""
            self._data_waiter = asyncio.get_running_loop().create_future()
            await self._data_waiter
        data = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        if self._reading_paused and len(self._buffer) < READ_BUFFER_LIMIT // 2:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    async def write(self, data: bytes) -> None:
        if self._closed or self._transport.is_closing():
            raise httpx.WriteError("connection closed by the server")
        self._transport.write(data)
        if self._write_waiter is not None:
            await self._write_waiter

    @property
    def has_news(self) -> bool:
        """Unread bytes or a close: an idle connection with news is no longer usable."""
        return bool(self._buffer) or self._closed

    def close(self) -> None:
        """At once: no waiting for a TLS close_notify that a hostile peer may never answer."""
        if self._transport is not None:
            self._transport.abort()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str) -> None:
        loop = asyncio.get_running_loop()
        self._buffer.clear()  # bytes before the handshake are not part of the TLS stream
        self._transport = await loop.start_tls(
            self._transport, self, ssl_context, server_hostname=server_hostname
        )

    def get_extra_info(self, name: str) -> Any:
        return self._transport.get_extra_info(name) if self._transport is not None else None


async def connect(
    scheme: str, host: str, port: int, ssl_context: ssl.SSLContext, measurement: Measurement
) -> Socket:
    """Resolve, connect and (for https) shake hands, recording each phase's duration."""
    addresses = await _resolve(host, port, measurement)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    sock: Socket | None = None
    last_error: OSError | None = None
    for address in addresses:
        try:
            _, sock = await loop.create_connection(Socket, address, port)
            break
        except OSError as exc:
            last_error = exc
    if sock is None:
        reason = os.strerror(last_error.errno) if last_error and last_error.errno else last_error
        raise httpx.ConnectError(f"cannot connect to {host} port {port}: {reason}")
    measurement.phases["connect"] = time.perf_counter() - started
    if scheme != "https":
        return sock
    started = time.perf_counter()
    try:
        await sock.start_tls(ssl_context, server_hostname=host)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError):  # ssl.SSLError is one, and so is a reset mid-handshake
            raise httpx.ConnectError(describe(exc)) from exc
        raise
    measurement.phases["tls"] = time.perf_counter() - started
    measurement.cert_expiry = _cert_expiry(sock.get_extra_info("ssl_object"))
    return sock


async def _resolve(host: str, port: int, measurement: Measurement) -> list[str]:
    """The host's addresses, with name resolution timed as its own `resolve` phase."""
    with contextlib.suppress(ValueError):
        return [str(ip_address(host))]
    started = time.perf_counter()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    measurement.phases["resolve"] = time.perf_counter() - started
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _cert_expiry(ssl_object: ssl.SSLObject | None) -> float | None:
    """notAfter of the peer certificate, as unix time (the leaf: Python 3.11 shows no chain)."""
    certificate = ssl_object.getpeercert() if ssl_object is not None else None
    if not certificate or "notAfter" not in certificate:
        return None
    return float(ssl.cert_time_to_seconds(certificate["notAfter"]))


def describe(exc: BaseException) -> str:
    """An exception as one short line for logs and the results API."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
