"""Small helpers shared by the status page tests."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Await `probe()` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met in {timeout:g}s; last value: {last!r}")


def component_statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in summary["components"] if not c["group"]}
