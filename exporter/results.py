"""The latest result of every service, plus the counters Prometheus needs to compute uptime.

Only the scheduler writes here, and every write renders the service's metrics anew
(exposition.py), so a scrape reads nothing but bytes. Everything runs on the event loop, so there
is no locking.
"""

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from exporter.checks import CheckResult
from exporter.config import ServiceConfig
from exporter.exposition import Exposition


@dataclass
class ServiceRecord:
    """What is known about one service; counters survive config changes of the same id."""

    service: ServiceConfig
    latest: CheckResult | None = None
    last_run: float | None = None
    last_change: float | None = None
    successes: int = 0
    failures: int = 0
    overruns: int = 0
    cert_expiry: float | None = None

    @property
    def up(self) -> bool | None:
        return None if self.latest is None else self.latest.success


@dataclass(frozen=True)
class Transition:
    """A service's up/down state before and after a result (None: never checked before)."""

    before: bool | None
    after: bool

    @property
    def changed(self) -> bool:
        return self.before is not self.after


class ResultsStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._records: dict[str, ServiceRecord] = {}
        self._clock = clock
        self.exposition = Exposition()

    def track(self, services: Iterable[ServiceConfig]) -> None:
        """Make these the services exported: new ones appear, removed ones vanish."""
        wanted = {service.id: service for service in services}
        for service_id in self._records.keys() - wanted.keys():
            del self._records[service_id]
            self.exposition.remove(service_id)
        for service_id, service in wanted.items():
            record = self._records.get(service_id)
            if record is None:
                record = self._records[service_id] = ServiceRecord(service)
                self.exposition.added(record)
            elif record.service != service:
                record.service = service
                self.exposition.config_applied(record)

    def record(self, service_id: str, result: CheckResult) -> Transition | None:
        """Store a result; None when the service is no longer tracked (removed mid-check)."""
        record = self._records.get(service_id)
        if record is None:
            return None
        now = self._clock()
        transition = Transition(record.up, result.success)
        if transition.changed:
            record.last_change = now
        record.latest = result
        record.last_run = now
        if result.success:
            record.successes += 1
        else:
            record.failures += 1
        if result.cert_expiry is not None:
            record.cert_expiry = result.cert_expiry
        self.exposition.result_recorded(record)
        return transition

    def count_overrun(self, service_id: str) -> None:
        record = self._records.get(service_id)
        if record is not None:
            record.overruns += 1
            self.exposition.result_recorded(record)

    def get(self, service_id: str) -> ServiceRecord | None:
        return self._records.get(service_id)

    def __iter__(self) -> Iterator[ServiceRecord]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def all_checked(self) -> bool:
        return all(record.latest is not None for record in self._records.values())
