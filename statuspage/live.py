"""Live service state from Prometheus, through the metric contract (DESIGN §3) only."""

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from statuspage.prometheus import PrometheusClient, Sample
from statuspage.status import Probe


@dataclass(frozen=True)
class ServiceInfo:
    id: str
    name: str
    group: str
    public: bool
    kind: str


@dataclass(frozen=True)
class Live:
    services: Mapping[str, ServiceInfo]
    probes: Mapping[str, Probe]
    down_since: Mapping[str, float]
    today_uptime: Mapping[str, float]
    """Share of successful checks since 00:00 UTC, per service."""
    last_reports: Mapping[str, float] = field(default_factory=dict)
    """When each heartbeat service (a batch job that reports in) last reported."""


# One value per service however many exporters (locations) check it: up/down and latency are
# the service-level state the recording rules decide once (a quorum over the locations, their
# median latency), the same the alerts read; timestamps are the newest.
_QUERIES = {
    "up": "service:probe_success:quorum",
    "last_run": "max by (service) (probe_last_run_timestamp_seconds)",
    "interval": "max by (service) (probe_interval_seconds)",
    "latency": "service:probe_duration_seconds:median",
    "objective": "max by (service) (probe_latency_objective_seconds)",
    # Down since: first seen down by a location that still sees it down.
    "last_change": (
        "min by (service) (probe_last_change_timestamp_seconds"
        " and on (instance, service) instance_service:probe_success:fresh == 0)"
    ),
    # The alert rule owns the definition of flapping; the page shows what it decided.
    "flapping": 'max by (service) (ALERTS{alertname="ServiceFlapping", alertstate="firing"})',
    "last_report": "max by (service) (probe_heartbeat_last_report_timestamp_seconds)",
}


def uptime_ratio_promql(window: str) -> str:
    """Share of `window` (a PromQL range like `1d`) each service was up, by its service-level
    state: one location's own trouble costs it no uptime."""
    return f"avg_over_time(service:probe_success:quorum[{window}])"


async def load_live(prometheus: PrometheusClient) -> Live:
    """One refresh: every query at once; any failure fails the refresh (no half-true page)."""
    now = time.time()
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today_window = f"{max(60, int(now - midnight.timestamp()))}s"
    names = ["info", *_QUERIES, "today"]
    queries = ["probe_service_info", *_QUERIES.values(), uptime_ratio_promql(today_window)]
    answers = dict(zip(names, await asyncio.gather(*map(prometheus.query, queries)), strict=True))
    values = {name: _by_service(answers[name]) for name in (*_QUERIES, "today")}
    services = {}
    for sample in answers["info"]:
        labels = sample.labels
        service = labels.get("service")
        if service:
            services[service] = ServiceInfo(
                id=service,
                name=labels.get("name") or service,
                group=labels.get("group") or "Services",
                public=labels.get("public") == "true",
                kind=labels.get("kind", ""),
            )
    probes = {
        service: Probe(
            up=None if (up := values["up"].get(service)) is None else up == 1,
            last_run=values["last_run"].get(service),
            interval=values["interval"].get(service),
            latency=values["latency"].get(service),
            objective=values["objective"].get(service),
            flapping=values["flapping"].get(service) == 1,
        )
        for service in services
    }
    down_since = {
        service: since
        for service, since in values["last_change"].items()
        if probes.get(service, Probe()).up is False
    }
    return Live(services, probes, down_since, values["today"], values["last_report"])


def _by_service(samples: list[Sample]) -> dict[str, float]:
    return {
        sample.labels["service"]: sample.value
        for sample in samples
        if "service" in sample.labels and sample.value is not None
    }
