"""Builds the per-service metric families (DESIGN §3) from the results store at scrape time.

A custom Collector rather than client_python's Gauge/Counter objects, so that a service removed on
reload disappears from /metrics at once. collect() does no I/O: it only reads memory.
"""

import itertools
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter.checks import CheckResult
from exporter.results import DURATION_BUCKETS, ResultsStore, ServiceRecord

PHASES = ("resolve", "connect", "tls", "processing", "transfer")
_BUCKET_BOUNDS = [str(float(bound)) for bound in DURATION_BUCKETS] + ["+Inf"]


class ProbeCollector(Collector):
    def __init__(self, store: ResultsStore) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return []  # names vary with the config; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        for record in self._store:
            families.add(record)
        yield from families.all()


class _Families:
    """One scrape's metric families, filled service by service."""

    def __init__(self) -> None:
        s = ["service"]
        self.info = GaugeMetricFamily(
            "probe_service_info",
            "Display metadata of a checked service.",
            labels=[*s, "name", "group", "public", "kind"],
        )
        self.objective = gauge("probe_latency_objective_seconds", "Latency objective from config.")
        self.interval = gauge(
            "probe_interval_seconds", "Seconds between checks (of a heartbeat: evaluations)."
        )
        self.success = gauge("probe_success", "1 if the latest check passed (after retries).")
        self.duration = gauge(
            "probe_duration_seconds", "Wall time of the latest check (async job: submit to end)."
        )
        self.status = gauge("probe_http_status_code", "Last HTTP status seen, 0 if none.")
        self.phase = GaugeMetricFamily(
            "probe_http_duration_seconds",
            "Duration of each phase of the latest check's main request.",
            labels=[*s, "phase"],
        )
        self.cert = gauge(
            "probe_ssl_earliest_cert_expiry", "Unix time the server's TLS certificate expires."
        )
        self.attempts = gauge("probe_attempts", "Attempts used by the latest check.")
        self.reason = GaugeMetricFamily(
            "probe_result_info", "Why the latest check ended as it did.", labels=[*s, "reason"]
        )
        self.last_run = gauge(
            "probe_last_run_timestamp_seconds", "Unix time the latest check finished."
        )
        self.last_change = gauge(
            "probe_last_change_timestamp_seconds", "Unix time the service last changed up/down."
        )
        self.checks = CounterMetricFamily(
            "probe_checks", "Checks completed, by result.", labels=[*s, "result"]
        )
        self.histogram = HistogramMetricFamily(
            "probe_check_duration_seconds", "Distribution of check durations.", labels=s
        )
        self.overruns = CounterMetricFamily(
            "status_exporter_check_overruns",
            "Checks that could not start on time because the previous one ran late.",
            labels=s,
        )
        self.kinds = _KindFamilies()

    def add(self, record: ServiceRecord) -> None:
        service = record.service
        sid = [service.id]
        public = "true" if service.public else "false"
        self.info.add_metric([*sid, service.name, service.group, public, service.kind], 1)
        self.objective.add_metric(sid, service.latency_objective)
        self.interval.add_metric(sid, service.check_interval)
        self.checks.add_metric([*sid, "success"], record.successes)
        self.checks.add_metric([*sid, "failure"], record.failures)
        self.overruns.add_metric(sid, record.overruns)
        if record.cert_expiry is not None:
            self.cert.add_metric(sid, record.cert_expiry)
        result = record.latest
        if result is None:
            return  # never checked: no up/down claim at all
        self.success.add_metric(sid, 1 if result.success else 0)
        self.duration.add_metric(sid, result.duration_seconds)
        self.status.add_metric(sid, result.status_code)
        self.attempts.add_metric(sid, result.attempts)
        self.reason.add_metric([*sid, result.reason.value], 1)
        for phase in PHASES:
            self.phase.add_metric([*sid, phase], result.phases.get(phase, 0.0))
        self.last_run.add_metric(sid, record.last_run or 0)
        if record.last_change is not None:
            self.last_change.add_metric(sid, record.last_change)
        cumulative = list(itertools.accumulate(record.bucket_counts))
        self.histogram.add_metric(
            sid, list(zip(_BUCKET_BOUNDS, cumulative, strict=True)), record.duration_sum
        )
        self.kinds.add(service.id, result)

    def all(self) -> list[Metric]:
        own = [value for value in vars(self).values() if isinstance(value, Metric)]
        return own + self.kinds.all()


class _KindFamilies:
    """Families only some kinds have: what an MCP check negotiated, when a heartbeat reported."""

    def __init__(self) -> None:
        s = ["service"]
        self.mcp_info = GaugeMetricFamily(
            "probe_mcp_info",
            "What the latest MCP check negotiated (values from the server, length-capped).",
            labels=[*s, "transport", "protocol_version", "server_name", "server_version"],
        )
        self.mcp_tools = gauge("probe_mcp_tools", "Tools the MCP server listed.")
        self.mcp_duration = GaugeMetricFamily(
            "probe_mcp_duration_seconds",
            "Duration of each MCP step of the latest check: initialize, tools_list.",
            labels=[*s, "step"],
        )
        self.last_report = gauge(
            "probe_heartbeat_last_report_timestamp_seconds",
            "Unix time a heartbeat service last reported (success or failure).",
        )
        self.deadline = gauge(
            "probe_heartbeat_deadline_timestamp_seconds",
            "Unix time a heartbeat service is down unless it reports (interval + grace).",
        )

    def add(self, service_id: str, result: CheckResult) -> None:
        sid = [service_id]
        mcp, heartbeat = result.mcp, result.heartbeat
        if mcp is not None:
            labels = [mcp.transport, mcp.protocol_version, mcp.server_name, mcp.server_version]
            self.mcp_info.add_metric([*sid, *labels], 1)
            steps = {"initialize": mcp.initialize_seconds, "tools_list": mcp.tools_list_seconds}
            for step, seconds in steps.items():
                if seconds is not None:
                    self.mcp_duration.add_metric([*sid, step], seconds)
            if mcp.tools is not None:
                self.mcp_tools.add_metric(sid, mcp.tools)
        if heartbeat is not None:
            self.deadline.add_metric(sid, heartbeat.deadline)
            if heartbeat.last_report is not None:
                self.last_report.add_metric(sid, heartbeat.last_report)

    def all(self) -> list[Metric]:
        return [value for value in vars(self).values() if isinstance(value, Metric)]


def gauge(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["service"])
