"""Status semantics (DESIGN §5): from live probe data, incidents and maintenance to a status.

Pure functions over plain values, so every combination is table-tested without any I/O.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Status(IntEnum):
    """A component's status, ordered from best to worst (maintenance aside)."""

    OPERATIONAL = 0
    UNKNOWN = 1
    DEGRADED_PERFORMANCE = 2
    PARTIAL_OUTAGE = 3
    MAJOR_OUTAGE = 4
    UNDER_MAINTENANCE = 5

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def api_value(self) -> str:
        """The Statuspage v2 enum value. It has no "unknown": that is reported as degraded
        (never as operational) and flagged by the extra `status_known: false` field."""
        if self is Status.UNKNOWN:
            return "degraded_performance"
        return self.name.lower()


_LABELS = {
    Status.OPERATIONAL: "Operational",
    Status.UNKNOWN: "Unknown",
    Status.DEGRADED_PERFORMANCE: "Degraded Performance",
    Status.PARTIAL_OUTAGE: "Partial Outage",
    Status.MAJOR_OUTAGE: "Major Outage",
    Status.UNDER_MAINTENANCE: "Under Maintenance",
}


class Impact(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def status(self) -> Status:
        return _IMPACT_STATUS[self]


_IMPACT_STATUS = {
    Impact.NONE: Status.OPERATIONAL,
    Impact.MINOR: Status.DEGRADED_PERFORMANCE,
    Impact.MAJOR: Status.PARTIAL_OUTAGE,
    Impact.CRITICAL: Status.MAJOR_OUTAGE,
}

STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True)
class Probe:
    """What Prometheus knows about one service's checks (None: not known)."""

    up: bool | None = None
    last_run: float | None = None
    interval: float | None = None
    latency: float | None = None
    objective: float | None = None
    flapping: bool = False

    def status(self, now: float) -> Status:
        if self.up is None or self.last_run is None or self.interval is None:
            return Status.UNKNOWN
        if now - self.last_run > STALE_AFTER_INTERVALS * self.interval:
            return Status.UNKNOWN
        if not self.up:
            return Status.MAJOR_OUTAGE
        if self.flapping:
            return Status.PARTIAL_OUTAGE
        measured = self.latency is not None and self.objective is not None
        if measured and self.latency > self.objective:
            return Status.DEGRADED_PERFORMANCE
        return Status.OPERATIONAL


def component_status(
    probe: Probe, now: float, incident_impacts: Iterable[Impact], in_maintenance: bool
) -> Status:
    """An active maintenance window wins; otherwise the worse of the probe and the incidents."""
    if in_maintenance:
        return Status.UNDER_MAINTENANCE
    return max([probe.status(now), *(impact.status for impact in incident_impacts)])


@dataclass(frozen=True)
class Overall:
    status: Status
    indicator: str
    """Statuspage's overall indicator: none, minor, major, critical or maintenance."""
    description: str


_OVERALL = {
    Status.OPERATIONAL: ("none", "All Systems Operational"),
    Status.UNKNOWN: ("minor", "Status Unknown"),
    Status.DEGRADED_PERFORMANCE: ("minor", "Degraded Performance"),
    Status.PARTIAL_OUTAGE: ("major", "Partial Outage"),
    Status.MAJOR_OUTAGE: ("critical", "Major Outage"),
    Status.UNDER_MAINTENANCE: ("maintenance", "Under Maintenance"),
}


def overall_status(components: Iterable[Status], open_impacts: Iterable[Impact]) -> Overall:
    """The worst component or open-incident impact decides; maintenance only when nothing is
    worse than operational elsewhere. No components at all is unknown, never green."""
    statuses = list(components)
    if not statuses:
        return Overall(Status.UNKNOWN, *_OVERALL[Status.UNKNOWN])
    impacts = [impact.status for impact in open_impacts]
    outside_maintenance = [s for s in statuses if s is not Status.UNDER_MAINTENANCE]
    worst = max([*outside_maintenance, *impacts], default=Status.OPERATIONAL)
    if worst is Status.OPERATIONAL and len(outside_maintenance) < len(statuses):
        worst = Status.UNDER_MAINTENANCE
    return Overall(worst, *_OVERALL[worst])
