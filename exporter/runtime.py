"""The running exporter: its config, results, scheduler and metrics registry, and config reload."""

import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector
from prometheus_client.gc_collector import GCCollector

from exporter.checks import CheckContext
from exporter.config import Config, ConfigError, load_config
from exporter.results import ResultsStore
from exporter.scheduler import Scheduler, SchedulerMetrics
from statuslog import event

log = logging.getLogger("exporter")


@dataclass(frozen=True)
class Settings:
    config_file: Path
    max_concurrent_checks: int = 512


class Exporter:
    """Owns everything with state; `start()`/`stop()` bracket its life (aiohttp cleanup_ctx)."""

    def __init__(self, config: Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.store = ResultsStore()
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
        self.scheduler_metrics = SchedulerMetrics(self.registry)
        self.scheduler: Scheduler | None = None
        self._ready = False

    async def start(self) -> None:
        ctx = CheckContext(ssl_context=ssl.create_default_context())
        self.scheduler = Scheduler(
            self.store, ctx, self.scheduler_metrics, self.settings.max_concurrent_checks
        )
        self.scheduler.apply(self.config.enabled)
        self._mark_loaded()
        event(log, logging.INFO, "exporter started", services=len(self.config.enabled))

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None

    def reload(self) -> ConfigError | None:
        """Swap in the config file's current content; on any error keep the running config."""
        try:
            config = load_config(self.settings.config_file)
        except ConfigError as exc:
            self._reload_ok.set(0)
            for error in exc.errors:
                event(log, logging.ERROR, "invalid config", file=exc.source, error=error)
            event(log, logging.ERROR, "reload failed, keeping the running config")
            return exc
        before = {service.id: service for service in self.config.enabled}
        after = {service.id: service for service in config.enabled}
        changed = [key for key in before.keys() & after.keys() if before[key] != after[key]]
        self.config = config
        if self.scheduler is not None:
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
        return None

    @property
    def ready(self) -> bool:
        """True once every service has been checked at least once (then it stays true)."""
        self._ready = self._ready or (self.scheduler is not None and self.store.all_checked())
        return self._ready

    def _mark_loaded(self) -> None:
        self._reload_ok.set(1)
        self._reload_time.set(time.time())


def _names(ids: Iterable[str]) -> str:
    return ",".join(sorted(ids)) or "-"
