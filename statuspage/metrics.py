"""The status page's own metrics, on a registry of its own (one per app, no global state)."""

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.request_duration = Histogram(
            "statuspage_http_request_duration_seconds",
            "Time to answer HTTP requests, by route.",
            ["handler", "method", "code"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.cache_requests = Counter(
            "statuspage_cache_requests_total",
            "Reads of the cached Prometheus and PostgreSQL data: hit (fresh) or miss (refresh).",
            ["source", "result"],
            registry=self.registry,
        )
        self.prometheus_errors = Counter(
            "statuspage_prometheus_errors_total",
            "Prometheus API calls that failed.",
            registry=self.registry,
        )
        self.database_errors = Counter(
            "statuspage_database_errors_total",
            "PostgreSQL operations that failed because the database was unavailable.",
            registry=self.registry,
        )
        self.unhandled_errors = Counter(
            "statuspage_unhandled_errors_total",
            "Requests that failed with an unexpected exception (answered 500 with an error id).",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "statuspage_auth_failures_total",
            "Requests refused for a missing or wrong token, by API and answer (401, 403, 429).",
            ["api", "code"],
            registry=self.registry,
        )
        self.task_restarts = Counter(
            "statuspage_background_task_restarts_total",
            "Background tasks restarted after an unexpected exception.",
            ["task"],
            registry=self.registry,
        )
