"""The running exporter: its config, results, scheduler and metrics registry, and config reload."""

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, Info, PlatformCollector, ProcessCollector
from prometheus_client.gc_collector import GCCollector

from exporter.checks import CheckContext, CheckResult
from exporter.config import Config, ConfigError, ServiceConfig, load_config
from exporter.heartbeat.state import HeartbeatBook, default_state_file
from exporter.results import ResultsStore
from exporter.scheduler import Scheduler, SchedulerMetrics
from statuslog import event

log = logging.getLogger("exporter")


@dataclass(frozen=True)
class Settings:
    config_file: Path
    max_concurrent_checks: int = 512
    heartbeat_state_file: Path | None = None
    """Where heartbeat reports are kept; by default next to the config file."""
    enable_lifecycle: bool = False
    """Whether `POST /-/reload` may reload (as Prometheus' `--web.enable-lifecycle`)."""
    reload_timeout: float = 30.0
    """Seconds a reload may spend reading the file; the largest file allowed takes a few."""
    location: str | None = None
    """Where this exporter checks from, as Prometheus should label its target (DESIGN §7)."""

    @property
    def state_file(self) -> Path:
        return self.heartbeat_state_file or default_state_file(self.config_file)


class Exporter:
    """Owns everything with state; `start()`/`stop()` bracket its life (aiohttp cleanup_ctx)."""

    def __init__(
        self, config: Config, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.settings = settings
        self.store = ResultsStore(clock)
        self.heartbeats = HeartbeatBook(settings.state_file, clock)
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._reload_ok = Gauge(
            "status_exporter_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            registry=self.registry,
        )
        self._reload_time = Gauge(
            "status_exporter_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            registry=self.registry,
        )
        if settings.location:
            # Prometheus renames it `exported_location` next to the target's own `location`
            # label, so a target labelled with another location's name shows (an alert says so).
            Info(
                "status_exporter",
                "Where this exporter checks from (--location).",
                registry=self.registry,
            ).info({"location": settings.location})
        self.scheduler_metrics = SchedulerMetrics(self.registry)
        self.scheduler: Scheduler | None = None
        self._ready = False
        # One reader thread: a file is parsed off the event loop, and one reload at a time.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="config-reader")
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[ConfigError | None]] = set()

    async def start(self) -> None:
        self.heartbeats.load()
        self.heartbeats.watch(_heartbeat_ids(self.config))
        ctx = CheckContext(ssl_context=ssl.create_default_context(), heartbeats=self.heartbeats)
        self.scheduler = Scheduler(
            self.store, ctx, self.scheduler_metrics, self.settings.max_concurrent_checks
        )
        self.scheduler.apply(self.config.enabled)
        self._mark_loaded()
        event(log, logging.INFO, "exporter started", services=len(self.config.enabled))

    async def stop(self) -> None:
        for task in self._reloads:
            task.cancel()
        await asyncio.gather(*self._reloads, return_exceptions=True)
        self._reader.shutdown(wait=False, cancel_futures=True)
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        await self.heartbeats.aclose()

    def reload_soon(self) -> None:
        """Reload in the background (on SIGHUP: a signal handler cannot wait for it)."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> ConfigError | None:
        """Swap in the config file's current content; on any error keep the running config.

        The file is read and validated in a thread within `reload_timeout`, so the event loop
        (checks, scrapes, health) never waits for it, whatever the file holds.
        """
        async with self._reload_lock:
            try:
                config = await self._read_config()
            except ConfigError as exc:
                return self._refuse(exc)
            self._apply(config)
            return None

    async def _read_config(self) -> Config:
        path = self.settings.config_file
        read = asyncio.get_running_loop().run_in_executor(self._reader, load_config, path)
        try:
            return await asyncio.wait_for(read, self.settings.reload_timeout)
        except TimeoutError:
            limit = self.settings.reload_timeout
            raise ConfigError(str(path), [f"(file): not read within {limit:g}s"]) from None
        except ConfigError:
            raise
        except Exception as exc:  # a loader bug is a refused reload, never a dead reload task
            raise ConfigError(str(path), [f"(file): could not be read: {exc!r}"]) from None

    def _refuse(self, exc: ConfigError) -> ConfigError:
        self._reload_ok.set(0)
        for error in exc.errors:
            event(log, logging.ERROR, "invalid config", file=exc.source, error=error)
        event(log, logging.ERROR, "reload failed, keeping the running config")
        return exc

    def _apply(self, config: Config) -> None:
        before = {service.id: service for service in self.config.enabled}
        after = {service.id: service for service in config.enabled}
        changed = [key for key in before.keys() & after.keys() if before[key] != after[key]]
        self.config = config
        if self.scheduler is not None:
            self.heartbeats.watch(_heartbeat_ids(config))
            self.scheduler.apply(config.enabled)
        self._mark_loaded()
        event(
            log,
            logging.INFO,
            "config reloaded",
            added=_names(after.keys() - before.keys()),
            removed=_names(before.keys() - after.keys()),
            changed=_names(changed),
        )

    def heartbeat_service(self, service_id: str) -> ServiceConfig | None:
        """The enabled heartbeat service with this id (the heartbeat endpoint's lookup). Every
        service is looked at, found or not, so how long the answer takes tells no ids."""
        found = [s for s in self.config.enabled if s.id == service_id and s.heartbeat is not None]
        return found[0] if found else None

    async def receive_heartbeat(
        self, service: ServiceConfig, ok: bool, message: str
    ) -> CheckResult:
        """Keep the report (in the state file before answering), then judge the service at once."""
        await self.heartbeats.report(service.id, ok, message)
        assert self.scheduler is not None, "the endpoint is served only while the exporter runs"
        return await self.scheduler.check_now(service)

    @property
    def ready(self) -> bool:
        """True once every service has been checked at least once, and from then on.

        As Prometheus' own readiness, it never turns false again: a reload that adds services
        leaves it ready (the new ones have no `probe_success` until their first check).
        """
        self._ready = self._ready or (self.scheduler is not None and self.store.all_checked())
        return self._ready

    def _mark_loaded(self) -> None:
        self._reload_ok.set(1)
        self._reload_time.set(time.time())


def _heartbeat_ids(config: Config) -> list[str]:
    return [service.id for service in config.enabled if service.heartbeat is not None]


def _names(ids: Iterable[str]) -> str:
    return ",".join(sorted(ids)) or "-"
