"""Small helpers shared by the status page tests."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient


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


async def silences(client: TestClient, alertmanager: str, title: str) -> dict[str, str]:
    """Silence id → state, for the silences of the maintenance window titled `title`."""
    response = await client.session.get(f"{alertmanager}/api/v2/silences")
    return {
        s["id"]: s["status"]["state"]
        for s in await response.json()
        if s["comment"] == f"Maintenance: {title}"
    }


async def active_window(client: TestClient, auth: dict, title: str) -> dict:
    """A maintenance window of the Linker, in progress for the next hour (so silenced)."""
    now = datetime.now(UTC)
    window = {
        "title": title,
        "services": ["linker"],
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }
    created = await client.post("/admin/api/maintenances", json=window, headers=auth)
    assert created.status == 201, await created.text()
    return await created.json()


async def window_edits_refused(client: TestClient, auth: dict, window: dict) -> dict[str, float]:
    """PATCH and DELETE of `window` while PostgreSQL cannot answer: each a 503 saying that
    nothing changed. Returns how long each took."""
    url = f"/admin/api/maintenances/{window['id']}"
    took = {}
    for method, body in (("PATCH", {"services": ["mcp"]}), ("DELETE", None)):
        started = time.perf_counter()
        answer = await client.request(method, url, json=body, headers=auth)
        text = await answer.text()
        took[f"{method} {url}"] = time.perf_counter() - started
        assert answer.status == 503, (method, text)
        assert "nothing was changed" in text
    return took


async def assert_window_unchanged(
    client: TestClient, auth: dict, alertmanager: str, window: dict
) -> None:
    """The window as created, and its silence the only one, still active."""
    url = f"/admin/api/maintenances/{window['id']}"
    assert await (await client.get(url, headers=auth)).json() == window
    states = await silences(client, alertmanager, window["title"])
    assert states == {window["silence_id"]: "active"}
