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
from statuspage.board import PAGES_CACHED
from statuspage.status import Impact
from statuspage.store import Store
from statuspage.validation import PAGE_MAX
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


async def statements(observer: asyncpg.Connection, database: str) -> int:
    return int(await observer.fetchval(COUNTED, database))


async def test_pages_past_the_end_cost_nothing_and_1000_older_incidents_are_cached(
    aiohttp_client, settings, counting_cluster
):
    """README: page numbers past the last page and ids past the newest cost no query at all;
    incidents beyond the latest 50 are cached one by one (1,000 at most, the least recently
    seen forgotten first)."""
    server, observer = counting_cluster
    await observer.execute("CREATE DATABASE many")
    url = server + "many"
    store = Store(url)
    try:
        await store.connect()  # the schema
    finally:
        await store.close()
    connection = await asyncpg.connect(url)
    try:  # ids 1…N, oldest first; the newest 50 are loaded by every refresh
        await connection.execute(
            """INSERT INTO incidents (title, impact, status, created_at, resolved_at)
               SELECT 'Incident ' || n, 'minor', 'resolved', now() - ($1 - n) * interval '1 s',
                      now() FROM generate_series(1, $1) AS n""",
            PAGES_CACHED + 100,
        )
    finally:
        await connection.close()
    client = await aiohttp_client(create_app(replace(settings, database_url=url, cache_ttl=600.0)))
    await visit(client, ["/"], 1)  # the refresh every page starts from
    before = await statements(observer, "many")
    newest, last_page = PAGES_CACHED + 100, (PAGES_CACHED + 100) // 20
    past = [f"/history?page={last_page + 1}", f"/history?page={PAGE_MAX}",
            f"/incidents/{newest + 1}", "/incidents/9223372036854775807",
            "/incidents/99999999999999999999"]  # fmt: skip
    answers = await asyncio.gather(*(client.get(path) for path in past for _ in range(10)))
    assert {answer.status for answer in answers} == {404}
    assert await statements(observer, "many") == before
    assert (await client.get(f"/history?page={last_page}")).status == 200

    async def cost(*ids: int) -> int:
        """Statements that visiting these incidents, in this order, made PostgreSQL run."""
        before = await statements(observer, "many")
        for incident_id in ids:
            assert (await client.get(f"/incidents/{incident_id}")).status == 200
        return await statements(observer, "many") - before

    per_incident = await cost(1)
    assert per_incident > 0
    assert await cost(*range(2, PAGES_CACHED + 2)) == PAGES_CACHED * per_incident
    # 1,000 remembered: 2…1001. The most recent and the oldest of them are still cached; 1 was
    # forgotten (and now 3, the least recently seen, is).
    assert await cost(PAGES_CACHED + 1, 2) == 0
    assert await cost(1) == per_incident
    assert await cost(3) == per_incident
