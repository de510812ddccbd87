"""The scheduler on its own, with an injected random source: when each first check runs."""

import random
import ssl
import time

from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.checks import CheckContext
from exporter.results import ResultsStore
from exporter.scheduler import Scheduler, SchedulerMetrics
from tests.exporter.conftest import eventually, service_from

SEED = 20261127
TOLERANCE = 0.25
"""Seconds a check may start after its planned time on a busy machine (never before)."""


async def test_first_checks_start_at_seeded_random_points_of_the_interval_heartbeats_at_once(
    aiohttp_server,
):
    arrivals: dict[str, float] = {}

    async def first_visit(request: web.Request) -> web.Response:
        arrivals.setdefault(request.match_info["service"], time.monotonic())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{service}", first_visit)
    server = await aiohttp_server(app, host="127.0.0.1")
    polled = [
        service_from({"id": f"web-{n}", "url": str(server.make_url(f"/web-{n}")), "interval": "1s"})
        for n in range(8)
    ]
    job = service_from({"kind": "heartbeat", "interval": "1s", "token": "job-token-0123456789ab"})
    services = [*polled, job]
    replay = random.Random(SEED)  # the draws the scheduler will make, in the same order
    planned = {service.id: replay.uniform(0, service.first_check_spread) for service in services}
    offsets = [planned[service.id] for service in polled]
    assert max(offsets) - min(offsets) > 0.5  # this seed spreads them over the interval

    store = ResultsStore()
    ctx = CheckContext(ssl_context=ssl.create_default_context())
    scheduler = Scheduler(
        store, ctx, SchedulerMetrics(CollectorRegistry()), 64, rng=random.Random(SEED)
    )
    started = time.monotonic()
    scheduler.apply(services)
    try:
        await eventually(lambda: store.get(job.id).latest is not None, timeout=TOLERANCE)
        await eventually(lambda: len(arrivals) == len(polled), timeout=1 + 2 * TOLERANCE)
    finally:
        await scheduler.stop()
    assert planned[job.id] == 0.0  # a heartbeat is judged at once
    for service in polled:
        late = arrivals[service.id] - started - planned[service.id]
        assert 0 <= late < TOLERANCE, (service.id, planned[service.id], late)
