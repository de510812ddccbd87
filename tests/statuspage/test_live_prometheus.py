"""The PromQL the status page sends, proven against a real Prometheus scraping a real exporter."""

import time
from datetime import UTC, datetime, timedelta

import aiohttp

from statuspage.live import load_live, uptime_ratio_promql
from statuspage.prometheus import PrometheusClient
from statuspage.rollups import roll_up_missing_days
from statuspage.store import Store


async def test_live_queries_return_every_service(live_stack) -> None:
    stack, _ = live_stack
    stack.wait_for_query(f"count({uptime_ratio_promql('1h')}) >= 5")  # two scrapes at least
    async with aiohttp.ClientSession() as session:
        live = await load_live(PrometheusClient(session, stack.url("prometheus"), 5.0))
    assert set(live.services) == {"sefaria-org", "linker", "mcp", "export-server", "internal-admin"}
    assert live.services["internal-admin"].public is False
    assert live.services["linker"].kind == "async_job"
    now = time.time()
    for service, probe in live.probes.items():
        assert probe.up is True, service
        assert probe.interval == 1.0
        assert now - probe.last_run < 10
        assert probe.latency is not None
        assert probe.objective is not None
        assert probe.status(now).name == "OPERATIONAL", service
    assert set(live.today_uptime) == set(live.services)
    assert all(0 < ratio <= 1 for ratio in live.today_uptime.values())


async def test_rollups_store_finished_days_once(live_stack, database_url) -> None:
    """Rolling up 'tomorrow' makes today a finished day: its ratio comes from the real counters
    and a second run writes nothing."""
    stack, _ = live_stack
    stack.wait_for_query(f"count({uptime_ratio_promql('1h')}) >= 5")  # two scrapes at least
    store = Store(database_url)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    try:
        async with aiohttp.ClientSession() as session:
            prometheus = PrometheusClient(session, stack.url("prometheus"), 5.0)
            first = await roll_up_missing_days(prometheus, store, tomorrow)
            second = await roll_up_missing_days(prometheus, store, tomorrow)
        stored = await store.rollups(tomorrow - timedelta(days=40))
    finally:
        await store.close()
    today = tomorrow - timedelta(days=1)
    assert first == 5
    assert second == 0
    assert set(stored) == {"sefaria-org", "linker", "mcp", "export-server", "internal-admin"}
    for service, days in stored.items():
        assert set(days) == {today}, service  # days before the stack ran have no data
        assert 0 < days[today] <= 1
