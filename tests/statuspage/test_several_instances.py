"""Several status page instances on one PostgreSQL, as README's scale-out runs them behind a load
balancer: the same outage reported to each at the same moment opens one incident and resolves it
once, and their rollups store each service's day once."""

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg

from statuspage.app import create_app
from statuspage.live import uptime_ratio_promql
from statuspage.prometheus import PrometheusClient
from statuspage.rollups import roll_up_missing_days
from statuspage.store import Store
from tests.statuspage.test_alertmanager_hook import AUTH, payload, post

COPIES = 4
"""Posts of the same notification to each instance at once (Alertmanager's retries, a cluster)."""


async def test_one_outage_posted_to_two_instances_at_once_is_one_incident(
    aiohttp_client, settings
) -> None:
    instances = [await aiohttp_client(create_app(settings)) for _ in range(2)]
    for status, ends, counted in (
        ("firing", None, "opened"),
        ("resolved", "2026-11-23T10:12:30Z", "resolved"),
    ):
        body = payload(status, ends=ends)
        answers = await asyncio.gather(
            *(post(instance, body) for instance in instances for _ in range(COPIES))
        )
        assert {answer.status for answer in answers} == {200}
        assert sum([(await answer.json())[counted] for answer in answers]) == 1, status
    incidents = await (await instances[1].get("/admin/api/incidents", headers=AUTH)).json()
    (incident,) = incidents
    assert incident["status"] == "resolved"
    assert [update["status"] for update in incident["updates"]] == ["resolved", "investigating"]


async def test_rollups_of_two_instances_at_once_store_each_day_once(
    live_stack, database_url
) -> None:
    """Rolling up 'tomorrow' makes today a finished day (as in test_live_prometheus.py)."""
    stack, _ = live_stack
    stack.wait_for_query(f"count({uptime_ratio_promql('1h')}) >= 5")
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    stores = [Store(database_url) for _ in range(2)]
    try:
        async with aiohttp.ClientSession() as session:
            prometheus = PrometheusClient(session, stack.url("prometheus"), 5.0)
            await asyncio.gather(
                *(roll_up_missing_days(prometheus, store, tomorrow) for store in stores)
            )
    finally:
        for store in stores:
            await store.close()
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT service, day FROM daily_uptime")
    finally:
        await connection.close()
    days = [(row["service"], row["day"]) for row in rows]
    assert len(days) == len(set(days)) == 5
