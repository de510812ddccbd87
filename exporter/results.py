"""The latest result of every service, plus the counters Prometheus needs to compute uptime.

Only the scheduler writes here and only the collector reads (at scrape time); both run on the
event loop, so there is no locking.
"""

import bisect
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from exporter.checks import CheckResult
from exporter.config import ServiceConfig

DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)


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
    duration_sum: float = 0.0
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))

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

    def track(self, services: Iterable[ServiceConfig]) -> None:
        """Make these the services exported: new ones appear, removed ones vanish."""
        wanted = {service.id: service for service in services}
        for service_id in self._records.keys() - wanted.keys():
            del self._records[service_id]
        for service_id, service in wanted.items():
            record = self._records.get(service_id)
            if record is None:
                self._records[service_id] = ServiceRecord(service)
            else:
                record.service = service

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
        record.duration_sum += result.duration_seconds
        record.bucket_counts[bisect.bisect_left(DURATION_BUCKETS, result.duration_seconds)] += 1
        return transition

    def count_overrun(self, service_id: str) -> None:
        record = self._records.get(service_id)
        if record is not None:
            record.overruns += 1

    def get(self, service_id: str) -> ServiceRecord | None:
        return self._records.get(service_id)

    def __iter__(self) -> Iterator[ServiceRecord]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def all_checked(self) -> bool:
        return all(record.latest is not None for record in self._records.values())
