"""The families only some kinds have: what an MCP check negotiated, when a heartbeat reported."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.checks import CheckResult, Reason
from exporter.checks.base import HeartbeatDetails, McpDetails
from exporter.collector import ProbeCollector
from exporter.results import ResultsStore
from tests.exporter.conftest import service_from

TOKEN = "job-token-0123456789abcdef"
MCP = McpDetails(
    transport="sse",
    protocol_version="2025-06-18",
    server_name="Sefaria MCP 📚",
    server_version="1.2",
    tools=15,
    initialize_seconds=0.04,
    tools_list_seconds=0.02,
)


def registry_with(*services) -> tuple[CollectorRegistry, ResultsStore]:
    store = ResultsStore(lambda: 1_000.0)
    store.track(services)
    registry = CollectorRegistry()
    registry.register(ProbeCollector(store))
    return registry, store


def test_an_mcp_check_exports_what_it_negotiated_and_its_steps():
    registry, store = registry_with(service_from({"id": "mcp", "kind": "mcp", "url": "https://x/"}))
    store.record("mcp", CheckResult(True, Reason.OK, status_code=200, mcp=MCP))
    info = {
        "service": "mcp",
        "transport": "sse",
        "protocol_version": "2025-06-18",
        "server_name": "Sefaria MCP 📚",
        "server_version": "1.2",
    }
    assert registry.get_sample_value("probe_mcp_info", info) == 1
    assert registry.get_sample_value("probe_mcp_tools", {"service": "mcp"}) == 15
    for step, seconds in (("initialize", 0.04), ("tools_list", 0.02)):
        labels = {"service": "mcp", "step": step}
        assert registry.get_sample_value("probe_mcp_duration_seconds", labels) == seconds
    text = generate_latest(registry).decode()
    assert {f.name for f in text_string_to_metric_families(text)} >= {
        "probe_mcp_info", "probe_mcp_tools", "probe_mcp_duration_seconds",
    }  # fmt: skip


def test_an_mcp_check_that_failed_before_initialize_exports_no_mcp_series():
    registry, store = registry_with(service_from({"id": "mcp", "kind": "mcp", "url": "https://x/"}))
    store.record("mcp", CheckResult.failure(Reason.HTTP_STATUS, "POST initialize → 404; …"))
    families = text_string_to_metric_families(generate_latest(registry).decode())
    assert [f.samples for f in families if f.name.startswith("probe_mcp_")] == [[], [], []]


def test_a_heartbeat_exports_its_last_report_deadline_and_evaluation_interval():
    service = service_from({"id": "job", "kind": "heartbeat", "interval": "24h", "token": TOKEN})
    registry, store = registry_with(service)
    details = HeartbeatDetails(last_report=900.0, deadline=900.0 + 86400 + 8640)
    store.record("job", CheckResult(True, Reason.OK, heartbeat=details))
    value = registry.get_sample_value
    assert value("probe_heartbeat_last_report_timestamp_seconds", {"service": "job"}) == 900
    assert value("probe_heartbeat_deadline_timestamp_seconds", {"service": "job"}) == 95_940
    assert value("probe_interval_seconds", {"service": "job"}) == 15  # how often it is judged
    labels = {"service": "job", "name": "job", "group": "", "public": "true", "kind": "heartbeat"}
    assert value("probe_service_info", labels) == 1
    store.record("job", CheckResult(True, Reason.OK, heartbeat=HeartbeatDetails(None, 5.0)))
    assert value("probe_heartbeat_last_report_timestamp_seconds", {"service": "job"}) is None
