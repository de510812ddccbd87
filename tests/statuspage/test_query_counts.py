"""Public pages cost PostgreSQL the same number of queries per CACHE_TTL however many visitors
come: counted by PostgreSQL itself (pg_stat_statements), not by the code under test."""

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from statuspage.app import create_app
from statuspage.status import Impact
from statuspage.store import Store
from tests.statuspage.conftest import throwaway_cluster

INCIDENTS = 61
"""More than the 50 every refresh loads: history page 3 and the oldest incident each take a
query of their own (per TTL)."""
# Statements the public pages make; the rollup task's own (daily_uptime writes) are not theirs.
COUNTED = """
    SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
    WHERE d.datname = $1
      AND query ~ '(incidents|incident_updates|maintenance_windows|daily_uptime)'
      AND query !~ '(DISTINCT day|INSERT INTO daily_uptime)'
"""


@pytest.fixture
async def counting_cluster() -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    cluster, base = throwaway_cluster(
        server_settings={"shared_preload_libraries": "pg_stat_statements"}
    )
    await asyncio.to_thread(cluster.start)
    try:
        observer = await asyncpg.connect(cluster.url())
        await observer.execute("CREATE EXTENSION pg_stat_statements")
        yield cluster.url(""), observer
        await observer.close()
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(base, ignore_errors=True)


async def seeded_database(server: str, name: str, observer: asyncpg.Connection) -> str:
    await observer.execute(f"CREATE DATABASE {name}")
    url = server + name
    store = Store(url)
    try:
        for n in range(INCIDENTS):
            await store.create_incident(f"Incident {n}", Impact.MINOR, "resolved", "Fixed.", [])
    finally:
        await store.close()
    return url


def public_paths(oldest: int, newest: int) -> list[str]:
    return [
        "/", "/history", "/history?page=2", "/history?page=3", f"/incidents/{newest}",
        f"/incidents/{oldest}", "/history.atom", "/api/v2/summary.json",
        "/api/v2/incidents.json", "/api/v2/incidents/unresolved.json",
        "/api/v2/scheduled-maintenances.json", "/badge/linker.svg",
    ]  # fmt: skip


async def visit(client: TestClient, paths: list[str], visitors: int) -> None:
    """`visitors` concurrent visitors of every path."""
    answers = await asyncio.gather(*(client.get(p) for p in paths for _ in range(visitors)))
    assert {a.status for a in answers} == {200}, [(a.url.path, a.status) for a in answers]


async def test_queries_per_ttl_do_not_grow_with_visitors(
    aiohttp_client, settings, counting_cluster
) -> None:
    server, observer = counting_cluster
    counts = {}
    for visitors in (1, 50):
        url = await seeded_database(server, f"visitors_{visitors}", observer)
        ttl = {"database_url": url, "cache_ttl": 600.0}  # the whole test within one TTL
        client = await aiohttp_client(create_app(replace(settings, **ttl)))
        paths = public_paths(oldest=1, newest=INCIDENTS)
        await observer.execute("SELECT pg_stat_statements_reset()")
        await visit(client, paths, visitors)
        counts[visitors] = int(await observer.fetchval(COUNTED, f"visitors_{visitors}"))
        await visit(client, paths, visitors)  # again, within the same TTL
        counts[f"{visitors} twice"] = int(await observer.fetchval(COUNTED, f"visitors_{visitors}"))
    print(f"\nPostgreSQL statements for {len(paths)} public paths per TTL: {counts}")
    assert counts[1] > 0
    assert counts[50] == counts[1]
    assert counts["1 twice"] == counts[1]
    assert counts["50 twice"] == counts[50]
