"""HTTP/1.1 over one `Socket`, one request at a time, with h11 doing the parsing.

This is what httpcore's HTTP/1.1 connection does, minus what a prober pays for and never uses:
httpcore locks its state with anyio locks that yield to the event loop on every acquire (twice
per request) and wraps every step in a tracing context. Here the caller owns the connection for
the whole exchange, so there is nothing to lock.
"""

from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Final

import h11
import httpx

from exporter.checks.network import Socket

READ_SIZE: Final = 64 * 1024
MAX_HEAD_BYTES: Final = 100 * 1024
"""A response head (status line and headers) larger than this is refused."""


class HTTP11Connection:
    def __init__(self, sock: Socket) -> None:
        self._socket = sock
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)

    async def send(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterable[bytes],
    ) -> h11.Response | h11.InformationalResponse:
        """Send a request and return the response head; the body follows from `body()`."""
        with _as_httpx_errors():
            await self._send(h11.Request(method=method, target=target, headers=headers))
            try:
                async for chunk in body:
                    await self._send(h11.Data(data=chunk))
                await self._send(h11.EndOfMessage())
            except httpx.WriteError:
                pass  # a server may answer (say, 413) before it has read the whole request
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Response):
                    return event
                if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                    return event  # switching protocols: no HTTP body follows

    async def body(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                    return

    def finish(self) -> bool:
        """Called once the response is closed: True when the connection can carry another."""
        done = self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE
        if done:
            self._h11.start_next_cycle()
        return done

    @property
    def reusable(self) -> bool:
        """Idle, and the server has neither closed nor sent anything unasked."""
        idle = self._h11.our_state is h11.IDLE and self._h11.their_state is h11.IDLE
        return idle and not self._socket.has_news

    def close(self) -> None:
        self._socket.close()

    async def _send(self, event: h11.Event) -> None:
        data = self._h11.send(event)
        if data:
            await self._socket.write(data)

    async def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self._socket.read(READ_SIZE)
            if data == b"" and self._h11.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError("server disconnected without sending a response")
            self._h11.receive_data(data)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """h11's protocol errors as httpx's, which is what checks catch and classify."""
    try:
        yield
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from exc
