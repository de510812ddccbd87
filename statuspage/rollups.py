"""Daily uptime rollups: Prometheus keeps 30 days, the page shows 90, so each finished UTC day's
uptime per service is copied into PostgreSQL once, at start-up for missing days and then daily."""

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta

from statuslog import event
from statuspage.live import uptime_ratio_promql
from statuspage.prometheus import PrometheusClient, PrometheusError
from statuspage.store import DatabaseUnavailable, Store

log = logging.getLogger("statuspage.rollups")
DAY = timedelta(days=1)
LOOKBACK_DAYS = 30
"""How far back missing days are filled in: Prometheus' retention."""
RETRY_SECONDS = 300.0


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def roll_up_missing_days(prometheus: PrometheusClient, store: Store, today: date) -> int:
    """Store each service's uptime for finished days not stored yet; returns rows written.

    One range query evaluates the 1-day ratio at every midnight in question: the value at
    midnight D+1 is day D. Days without any checks (before the exporter ran) have no value.
    """
    first = today - timedelta(days=LOOKBACK_DAYS)
    stored = await store.rollup_days(first)
    missing = [first + DAY * n for n in range(LOOKBACK_DAYS) if first + DAY * n not in stored]
    if not missing:
        return 0
    series = await prometheus.query_range(
        uptime_ratio_promql("1d"),
        start=midnight(missing[0] + DAY).timestamp(),
        end=midnight(today).timestamp(),
        step=DAY.total_seconds(),
    )
    wanted = set(missing)
    rows = [
        (entry.labels["service"], day, ratio)
        for entry in series
        if "service" in entry.labels
        for timestamp, ratio in entry.points
        if ratio is not None
        and (day := datetime.fromtimestamp(timestamp, UTC).date() - DAY) in wanted
    ]
    return await store.save_rollups(rows)


async def run_rollups(prometheus: PrometheusClient, store: Store) -> None:
    """Forever: roll up, then sleep until five minutes past the next UTC midnight."""
    while True:
        now = datetime.now(UTC)
        try:
            written = await roll_up_missing_days(prometheus, store, now.date())
        except (PrometheusError, DatabaseUnavailable) as exc:
            event(log, logging.WARNING, "rollup failed", error=exc, retry_in=RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)
            continue
        if written:
            event(log, logging.INFO, "uptime rolled up", rows=written)
        next_run = midnight(now.date() + DAY) + timedelta(minutes=5)
        await asyncio.sleep((next_run - datetime.now(UTC)).total_seconds())
