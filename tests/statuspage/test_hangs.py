"""Hung, not stopped: the real PostgreSQL and Prometheus processes are frozen with SIGSTOP (they
keep their sockets open and answer nothing). Visitors are served at once from what the page
has, with a notice; a request that has to wait for PostgreSQL or for a first load (an admin
request, the first visitor of a fresh instance or after a write) waits 2 s at most. The bounds
asserted are generous for a loaded machine; the measured times are printed."""

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from aiohttp.test_utils import TestClient

from statuspage.app import create_app
from tests.statuspage.conftest import throwaway_cluster
from tests.statuspage.helpers import (
    active_window,
    assert_window_unchanged,
    eventually,
    window_edits_refused,
)

VISITOR_BOUND = 1.0
"""A visitor served from the cache: milliseconds normally; this allows for a busy CI."""
WAIT_BOUND = 4.0
"""A request that waits does so 2 s at most (the PostgreSQL timeout, the caches' wait): an admin
request before its 503, the first visitor of a fresh instance or after a write. Twice that wait,
as waiting for two hung back ends one after the other would take, already fails the bound."""
WAITING = ("fresh", "warm-up", "after a write", "admin", "ready")


def process_tree(root: int) -> list[int]:
    """`root` and its descendants (PostgreSQL: the postmaster and its backends)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children.get(pid, [])
    return found


@contextlib.contextmanager
def frozen(root: int) -> Iterator[None]:
    pids = process_tree(root)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def assert_bounded(seconds: dict[str, float]) -> None:
    for label, took in seconds.items():
        bound = WAIT_BOUND if any(word in label for word in WAITING) else VISITOR_BOUND
        assert took < bound, (label, took)


class Timed:
    """Requests with their durations, for the bounds and the printed report."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.seconds: dict[str, float] = {}

    async def request(self, label: str, method: str, path: str, **kwargs) -> tuple[int, str]:
        started = time.perf_counter()
        response = await self.client.request(method, path, **kwargs)
        text = await response.text()
        elapsed = time.perf_counter() - started
        self.seconds[label] = max(self.seconds.get(label, 0.0), elapsed)
        return response.status, text

    def report(self, title: str) -> None:
        print(f"\n{title} (slowest answer per request, seconds):")
        for label, seconds in self.seconds.items():
            print(f"  {label:<48} {seconds:6.3f}")


async def test_hung_postgresql(aiohttp_client, settings, live_stack, auth) -> None:
    stack, _ = live_stack
    cluster, base = throwaway_cluster()
    await asyncio.to_thread(cluster.start)
    try:
        url = await asyncio.to_thread(cluster.create_database, "statuspage")
        app = create_app(replace(settings, database_url=url, cache_ttl=0.5))
        timed = Timed(await aiohttp_client(app))
        incident = {"title": "Slow search", "impact": "minor", "status": "investigating",
                    "body": "Looking."}  # fmt: skip
        posted = await timed.client.post("/admin/api/incidents", json=incident, headers=auth)
        assert posted.status == 201
        window = await active_window(timed.client, auth, "Hung database")
        assert "Slow search" in (await timed.request("warm-up", "GET", "/"))[1]
        update = {"status": "identified", "body": "Found the cause."}
        updated = await timed.client.post("/admin/api/incidents/1/updates", json=update,
                                          headers=auth)  # fmt: skip
        assert updated.status == 201
        postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0])

        with frozen(postmaster):
            # The write asked for a refresh, which cannot finish: the next visitor waits for it
            # (bounded), then gets the incidents known before.
            status, page = await timed.request("GET / after a write (hung)", "GET", "/")
            assert status == 200
            assert "Slow search" in page

            async def notice_shown() -> bool:
                status, page = await timed.request("GET / (hung)", "GET", "/")
                assert status == 200
                return "Incident information is temporarily unavailable" in page

            await eventually(notice_shown, timeout=15)
            for path in ("/", "/history", "/incidents/1", "/history.atom",
                         "/api/v2/summary.json", "/api/v2/incidents.json",
                         "/api/v2/scheduled-maintenances.json"):  # fmt: skip
                status, text = await timed.request(f"GET {path} (hung)", "GET", path)
                assert status == 200, path
                if "maintenances" not in path:
                    assert "Slow search" in text, path  # the last known incidents stay
            status, answer = await timed.request(
                "POST /admin/api/incidents (hung)", "POST", "/admin/api/incidents",
                json=incident, headers=auth,
            )  # fmt: skip
            assert status == 503
            assert "database is unavailable" in answer
            status, _ = await timed.request(
                "GET /admin/api/incidents (hung)", "GET", "/admin/api/incidents", headers=auth
            )
            assert status == 503
            status, ready = await timed.request("GET /-/ready (hung)", "GET", "/-/ready")
            assert (status, "PostgreSQL" in ready) == (503, True)
            timed.seconds |= await window_edits_refused(timed.client, auth, window)
            # A fresh instance with nothing cached waits a bounded time, then says so.
            fresh = Timed(await aiohttp_client(create_app(replace(settings, database_url=url))))
            status, page = await fresh.request("GET / (fresh instance, hung)", "GET", "/")
            assert status == 200
            assert "Incident information is temporarily unavailable" in page
            # With Prometheus hung too, it waits for both at once: one bounded wait, not two.
            with frozen(stack.processes["prometheus"].popen.pid):
                both = Timed(await aiohttp_client(create_app(replace(settings, database_url=url))))
                status, page = await both.request("GET / (fresh instance, both hung)", "GET", "/")
                assert status == 200
                assert "Incident information is temporarily unavailable" in page
                assert "No live data yet" in page

        await asyncio.to_thread(stack.wait_for_query, "up")
        timed.seconds |= fresh.seconds | both.seconds
        timed.report("PostgreSQL frozen with SIGSTOP")
        assert_bounded(timed.seconds)

        async def writes_again() -> bool:
            again = await timed.client.post("/admin/api/incidents", json=incident, headers=auth)
            return again.status == 201

        await eventually(writes_again, timeout=15)
        await assert_window_unchanged(timed.client, auth, settings.alertmanager_url, window)
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(base, ignore_errors=True)


async def test_hung_prometheus(aiohttp_client, settings, live_stack, auth) -> None:
    stack, _ = live_stack
    app = create_app(replace(settings, cache_ttl=0.5))
    timed = Timed(await aiohttp_client(app))

    async def live() -> bool:
        status, page = await timed.request("warm-up", "GET", "/")
        return status == 200 and "Live data is delayed" not in page and "Linker API" in page

    await eventually(live)
    prometheus = stack.processes["prometheus"].popen.pid
    try:
        with frozen(prometheus):

            async def delayed_shown() -> bool:
                status, page = await timed.request("GET / (hung)", "GET", "/")
                assert status == 200
                return "Live data is delayed" in page

            # The refresh gives up after PROMETHEUS timeout (5 s); every visitor meanwhile is
            # served the last data at once.
            await eventually(delayed_shown, timeout=20)
            for path in ("/api/v2/summary.json", "/badge/linker.svg", "/history"):
                status, _ = await timed.request(f"GET {path} (hung)", "GET", path)
                assert status == 200
            # Service ids are checked against the last catalog Prometheus gave.
            incident = {"title": "t", "impact": "none", "status": "investigating", "body": "b",
                        "services": ["linker"]}  # fmt: skip
            status, _ = await timed.request(
                "POST /admin/api/incidents (hung)", "POST", "/admin/api/incidents",
                json=incident, headers=auth,
            )  # fmt: skip
            assert status == 201
            fresh = Timed(await aiohttp_client(create_app(settings)))
            status, page = await fresh.request("GET / (fresh instance, hung)", "GET", "/")
            assert status == 200
            assert "No live data yet" in page
    finally:
        await asyncio.to_thread(stack.wait_for_query, "up")
    timed.seconds |= fresh.seconds
    timed.report("Prometheus frozen with SIGSTOP")
    assert_bounded(timed.seconds)
