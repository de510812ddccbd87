"""Server-Sent Events, parsed by the WHATWG rules and bounded in bytes: a stream never ends by
itself, so whoever reads one decides when to hang up, and no server can make it read forever."""

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    name: str
    data: str
    id: str | None = None


class StreamTooLong(Exception):
    """More bytes arrived than the reader allowed."""


async def read_events(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[Event]:
    """The events in a byte stream, raising StreamTooLong once more than `limit` bytes came."""
    name, data, last_id = "", [], None
    seen = 0
    pending = b""
    skip_lf = False  # a chunk ended in CR: a LF starting the next one belongs to that line end
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise StreamTooLong(f"more than {limit} bytes")
        if skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        pending += chunk
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith((b"\n", b"\r")) else b""
        skip_lf = bool(lines) and not pending and lines[-1].endswith(b"\r")
        for raw in lines:
            line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
            if not line:
                if data:
                    yield Event(name or "message", "\n".join(data), last_id)
                name, data = "", []
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id" and "\0" not in value:
                last_id = value
