"""The per-service part of /metrics (DESIGN §3), rendered when a service's data changes.

prometheus_client renders every sample at every scrape: seconds for 10,000 services as text and
twice that as OpenMetrics, the format Prometheus asks for. Here a service's sample lines are
rendered when its result is recorded (its config-derived lines when the config is applied) and
kept per metric family, so a scrape joins cached bytes family by family (Prometheus wants all
samples of a family together). A sample line reads the same in both formats; only the HELP and
TYPE lines differ. A service removed from the config loses its lines at once.

`SERVICE_FAMILIES` is the one list of what a service exports: a new metric is one entry there.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Final, Literal

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from exporter.checks.base import HeartbeatDetails
    from exporter.results import ServiceRecord

PHASES: Final = ("resolve", "connect", "tls", "processing", "transfer")
OPENMETRICS_TYPE: Final = "application/openmetrics-text"

Samples = Iterable[tuple[tuple[str, ...], float]]
"""A family's samples for one service: values of its labels besides `service`, and the value."""


@dataclass(frozen=True, eq=False)
class Family:
    """One metric family with a `service` label, and how a service's record fills it."""

    name: str
    type: Literal["gauge", "counter"]
    documentation: str
    samples: Callable[["ServiceRecord"], Samples] = field(repr=False)
    labels: tuple[str, ...] = ()
    """Label names besides `service`, in the order `samples` gives their values."""
    from_config: bool = False
    """Its samples come from the service's config only, not from its results."""

    @cached_property
    def sample_name(self) -> str:
        return f"{self.name}_total" if self.type == "counter" else self.name

    @cached_property
    def text_header(self) -> bytes:
        """HELP and TYPE in the text format 0.0.4, which names a counter with its `_total`."""
        return _header(self.sample_name, self.documentation, self.type)

    @cached_property
    def openmetrics_header(self) -> bytes:
        return _header(self.name, self.documentation, self.type)

    @cached_property
    def _line(self) -> str:
        """A sample line to format with (service, *label values, value): labels sorted by
        name, as prometheus_client writes them."""
        names = sorted(enumerate(("service", *self.labels)), key=lambda pair: pair[1])
        pairs = ",".join(f'{name}="{{{index}}}"' for index, name in names)
        value = len(self.labels) + 1
        return f"{self.sample_name}{{{{{pairs}}}}} {{{value}}}\n"

    def render(self, record: "ServiceRecord", service: str) -> str:
        """This service's sample lines; `service` is its id, escaped."""
        line = self._line
        return "".join(
            line.format(service, *map(_escape, values), floatToGoString(value))
            for values, value in self.samples(record)
        )


def _header(name: str, documentation: str, kind: str) -> bytes:
    return f"# HELP {name} {documentation}\n# TYPE {name} {kind}\n".encode()


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _only(value: float | None) -> Samples:
    """The one sample of a family labelled by service alone; none when there is no value."""
    return () if value is None else (((), value),)


def _latest(
    read: Callable[["ServiceRecord"], float | None],
) -> Callable[["ServiceRecord"], Samples]:
    """A family about the latest check: no sample before the first one (no up/down claim)."""
    return lambda record: () if record.latest is None else _only(read(record))


def _info(record: "ServiceRecord") -> Samples:
    service = record.service
    public = "true" if service.public else "false"
    return (((service.name, service.group, public, service.kind), 1),)


def _mcp_info(record: "ServiceRecord") -> Samples:
    mcp = record.latest.mcp if record.latest is not None else None
    if mcp is None:
        return ()
    return (((mcp.transport, mcp.protocol_version, mcp.server_name, mcp.server_version), 1),)


def _mcp_steps(record: "ServiceRecord") -> Samples:
    mcp = record.latest.mcp if record.latest is not None else None
    if mcp is None:
        return ()
    steps = {"initialize": mcp.initialize_seconds, "tools_list": mcp.tools_list_seconds}
    return (((step,), seconds) for step, seconds in steps.items() if seconds is not None)


def _mcp_tools(record: "ServiceRecord") -> float | None:
    mcp = record.latest.mcp
    return None if mcp is None else mcp.tools


def _heartbeat(read: Callable[["HeartbeatDetails"], float | None]) -> Callable[..., Samples]:
    """A family only heartbeat services have, read from the latest evaluation."""

    def samples(record: "ServiceRecord") -> Samples:
        heartbeat = record.latest.heartbeat if record.latest is not None else None
        return () if heartbeat is None else _only(read(heartbeat))

    return samples


def _phases(record: "ServiceRecord") -> Samples:
    if record.latest is None:
        return ()
    phases = record.latest.phases
    return (((phase,), phases.get(phase, 0.0)) for phase in PHASES)


SERVICE_FAMILIES: Final = (
    Family(
        "probe_service_info",
        "gauge",
        "Display metadata of a checked service.",
        _info,
        labels=("name", "group", "public", "kind"),
        from_config=True,
    ),
    Family(
        "probe_latency_objective_seconds",
        "gauge",
        "Latency objective from config.",
        lambda record: _only(record.service.latency_objective),
        from_config=True,
    ),
    Family(
        "probe_interval_seconds",
        "gauge",
        "Seconds between checks (of a heartbeat: evaluations).",
        lambda record: _only(record.service.check_interval),
        from_config=True,
    ),
    Family(
        "probe_success",
        "gauge",
        "1 if the latest check passed (after retries).",
        _latest(lambda record: 1 if record.latest.success else 0),
    ),
    Family(
        "probe_duration_seconds",
        "gauge",
        "Wall time of the latest check (async job: submit to end).",
        _latest(lambda record: record.latest.duration_seconds),
    ),
    Family(
        "probe_http_status_code",
        "gauge",
        "Last HTTP status seen, 0 if none.",
        _latest(lambda record: record.latest.status_code),
    ),
    Family(
        "probe_http_duration_seconds",
        "gauge",
        "Duration of each phase of the latest check's main request.",
        _phases,
        labels=("phase",),
    ),
    Family(
        "probe_ssl_earliest_cert_expiry",
        "gauge",
        "Unix time the server's TLS certificate expires.",
        lambda record: _only(record.cert_expiry),
    ),
    Family(
        "probe_attempts",
        "gauge",
        "Attempts used by the latest check.",
        _latest(lambda record: record.latest.attempts),
    ),
    Family(
        "probe_result_info",
        "gauge",
        "Why the latest check ended as it did.",
        lambda record: () if record.latest is None else (((record.latest.reason,), 1),),
        labels=("reason",),
    ),
    Family(
        "probe_last_run_timestamp_seconds",
        "gauge",
        "Unix time the latest check finished.",
        _latest(lambda record: record.last_run or 0),
    ),
    Family(
        "probe_last_change_timestamp_seconds",
        "gauge",
        "Unix time the service last changed up/down.",
        lambda record: _only(record.last_change),
    ),
    Family(
        "probe_checks",
        "counter",
        "Checks completed, by result.",
        lambda record: ((("success",), record.successes), (("failure",), record.failures)),
        labels=("result",),
    ),
    # Families only some kinds have: what an MCP check negotiated, when a heartbeat reported.
    Family(
        "probe_mcp_info",
        "gauge",
        "What the latest MCP check negotiated (values from the server, length-capped).",
        _mcp_info,
        labels=("transport", "protocol_version", "server_name", "server_version"),
    ),
    Family(
        "probe_mcp_tools",
        "gauge",
        "Tools the MCP server listed.",
        _latest(_mcp_tools),
    ),
    Family(
        "probe_mcp_duration_seconds",
        "gauge",
        "Duration of each MCP step of the latest check: initialize, tools_list.",
        _mcp_steps,
        labels=("step",),
    ),
    Family(
        "probe_heartbeat_last_report_timestamp_seconds",
        "gauge",
        "Unix time a heartbeat service last reported (success or failure).",
        _heartbeat(lambda heartbeat: heartbeat.last_report),
    ),
    Family(
        "probe_heartbeat_deadline_timestamp_seconds",
        "gauge",
        "Unix time a heartbeat service is down unless it reports (interval + grace).",
        _heartbeat(lambda heartbeat: heartbeat.deadline),
    ),
    Family(
        "status_exporter_check_overruns",
        "counter",
        "Checks that could not start on time because the previous one ran late.",
        lambda record: _only(record.overruns),
    ),
)
CONFIG_FAMILIES: Final = tuple(family for family in SERVICE_FAMILIES if family.from_config)
RESULT_FAMILIES: Final = tuple(family for family in SERVICE_FAMILIES if not family.from_config)


class Exposition:
    """Every service's rendered sample lines, per family, joined at scrape time."""

    def __init__(self) -> None:
        self._lines: dict[Family, dict[str, bytes]] = {family: {} for family in SERVICE_FAMILIES}

    def added(self, record: "ServiceRecord") -> None:
        self._render(record, SERVICE_FAMILIES)

    def config_applied(self, record: "ServiceRecord") -> None:
        self._render(record, CONFIG_FAMILIES)

    def result_recorded(self, record: "ServiceRecord") -> None:
        self._render(record, RESULT_FAMILIES)

    def remove(self, service_id: str) -> None:
        for lines in self._lines.values():
            lines.pop(service_id, None)

    def _render(self, record: "ServiceRecord", families: Iterable[Family]) -> None:
        service_id = record.service.id
        service = _escape(service_id)
        for family in families:
            self._lines[family][service_id] = family.render(record, service).encode()

    def render(self, openmetrics: bool) -> list[bytes]:
        """Every family, its header once and then every service's lines (no `# EOF`): the
        parts to join, so that ten megabytes are copied once."""
        parts = []
        for family, lines in self._lines.items():
            parts.append(family.openmetrics_header if openmetrics else family.text_header)
            parts.extend(lines.values())
        return parts


def scrape(services: Exposition, registry: Collector, accept: str) -> tuple[bytes, str]:
    """The whole /metrics body and its content type, negotiated as prometheus_client does.

    The process-wide metrics (process, platform, GC, scheduler, reload) are few and still
    rendered by prometheus_client at scrape time; OpenMetrics ends with their `# EOF`.
    """
    encoder, content_type = choose_encoder(_without_escaping(accept))
    openmetrics = content_type.startswith(OPENMETRICS_TYPE)
    return b"".join([*services.render(openmetrics), encoder(registry)]), content_type


def _without_escaping(accept: str) -> str:
    """Accept minus `escaping=` (Prometheus 3): names here are legacy ones, sent as they are.

    The encoder then answers `escaping=underscores`, which leaves a legacy name unchanged, so
    the cached lines and the encoder's agree whatever scheme the scraper preferred.
    """
    return ",".join(
        ";".join(part for part in media.split(";") if not part.strip().startswith("escaping="))
        for media in accept.split(",")
    )
