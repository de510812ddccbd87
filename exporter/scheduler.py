"""One asyncio loop per service, each on its own interval, all sharing a bound on checks in flight.

A slow service's loop waits for its own check, so below the bound it delays nobody else; once the
bound is full, every loop waits for a free slot (scheduling lag). The first run of each service
starts at a random offset within its interval (as Prometheus spreads scrapes), so many services do
not fire at once. A run that cannot start on time is not piled up: it starts as soon as it can
and the overrun is counted.
"""

import asyncio
import functools
import logging
import random
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge, Histogram

from exporter.checks import KINDS, CheckContext, CheckResult, Reason
from exporter.config import ServiceConfig
from exporter.results import ResultsStore
from statuslog import event

log = logging.getLogger("exporter.scheduler")


class SchedulerMetrics:
    """The scheduler's own health, for the exporter-health dashboard."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Histogram(
            "status_exporter_scheduling_lag_seconds",
            "How late checks start compared to their schedule.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.in_flight = Gauge(
            "status_exporter_checks_in_flight", "Checks running right now.", registry=registry
        )
        self.services = Gauge(
            "status_exporter_services", "Services being checked.", registry=registry
        )


class Scheduler:
    def __init__(
        self,
        store: ResultsStore,
        ctx: CheckContext,
        metrics: SchedulerMetrics,
        max_concurrent: int,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._ctx = ctx
        self._metrics = metrics
        self._slots = asyncio.Semaphore(max_concurrent)
        self._rng = rng or random.Random()
        self._loops: dict[str, tuple[ServiceConfig, asyncio.Task[None]]] = {}

    def apply(self, services: Iterable[ServiceConfig]) -> None:
        """Run exactly these services: unchanged ones keep their schedule, others (re)start."""
        wanted = {service.id: service for service in services}
        self._ctx.mcp_transports.clear()  # an MCP transport is remembered until a reload
        for service_id, (running, task) in list(self._loops.items()):
            if wanted.get(service_id) != running:
                task.cancel()
                del self._loops[service_id]
        self._store.track(wanted.values())
        for service_id, service in wanted.items():
            if service_id not in self._loops:
                task = asyncio.create_task(self._run(service), name=f"check:{service_id}")
                task.add_done_callback(functools.partial(self._loop_ended, service_id))
                self._loops[service_id] = (service, task)
        self._metrics.services.set(len(self._loops))

    @property
    def loops(self) -> dict[str, asyncio.Task[None]]:
        """The running loop of each service (read-only view, for health and tests)."""
        return {service_id: task for service_id, (_, task) in self._loops.items()}

    async def check_now(self, service: ServiceConfig) -> CheckResult:
        """Run a service's check at once, outside its schedule (a heartbeat has just reported)."""
        result = await run_check(service, self._ctx)
        self._report(service, result)
        return result

    async def stop(self) -> None:
        tasks = [task for _, task in self._loops.values()]
        self._loops.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._ctx.aclose()

    def _loop_ended(self, service_id: str, task: asyncio.Task[None]) -> None:
        """A loop only ends by cancellation; anything else is a bug, and must not pass silently.

        The service is dropped from the running loops, so the next reload starts it again.
        """
        if task.cancelled() or task.exception() is None:
            return
        if self._loops.get(service_id, (None, None))[1] is task:
            del self._loops[service_id]
            self._metrics.services.set(len(self._loops))
        log.error(
            "service loop stopped by an internal error; reload to restart it",
            exc_info=task.exception(),
            extra={"fields": {"service": service_id}},
        )

    async def _run(self, service: ServiceConfig) -> None:
        loop = asyncio.get_running_loop()
        next_run = loop.time() + self._rng.uniform(0, service.first_check_spread)
        try:
            while True:
                await asyncio.sleep(next_run - loop.time())
                async with self._slots:
                    self._metrics.lag.observe(max(0.0, loop.time() - next_run))
                    with self._metrics.in_flight.track_inprogress():
                        result = await run_check(service, self._ctx)
                self._report(service, result)
                next_run += service.check_interval
                if loop.time() > next_run:
                    self._store.count_overrun(service.id)
                    next_run = loop.time()
        finally:
            await self._ctx.aclose(service)

    def _report(self, service: ServiceConfig, result: CheckResult) -> None:
        transition = self._store.record(service.id, result)
        changed = transition is not None and transition.changed
        if result.success and not changed:
            return  # the usual case: nothing to log
        fields = {
            "service": service.id,
            "reason": result.reason.value,
            "status_code": result.status_code,
            "attempts": result.attempts,
            "duration_seconds": round(result.duration_seconds, 4),
        }
        if changed:
            state = "up" if result.success else "down"
            before = {None: "unknown", True: "up", False: "down"}[transition.before]
            level = logging.INFO if result.success else logging.WARNING
            event(log, level, f"service is {state}", previous=before, **fields)
        if not result.success:
            event(log, logging.WARNING, "check failed", error=result.message, **fields)


async def run_check(service: ServiceConfig, ctx: CheckContext) -> CheckResult:
    """Run the service's check kind; a bug in a check becomes a logged failure, not a dead loop."""
    try:
        return await KINDS[service.kind](service, ctx)
    except Exception as exc:
        log.exception("check crashed", extra={"fields": {"service": service.id}})
        return CheckResult.failure(Reason.INVALID_RESPONSE, f"internal error: {exc!r}")
