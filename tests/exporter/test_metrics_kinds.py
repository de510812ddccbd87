"""The families only some kinds have: what an MCP check negotiated, when a heartbeat reported."""

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter.checks import CheckResult, Reason
from exporter.checks.base import HeartbeatDetails, McpDetails
from exporter.exposition import scrape
from exporter.results import ResultsStore
from tests.exporter.conftest import metric_value, service_from

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


def store_with(*services) -> ResultsStore:
    store = ResultsStore(lambda: 1_000.0)
    store.track(services)
    return store


def families(store: ResultsStore) -> list:
    text = scrape(store.exposition, CollectorRegistry(), accept="")[0].decode()
    return list(text_string_to_metric_families(text))


def test_an_mcp_check_exports_what_it_negotiated_and_its_steps():
    store = store_with(service_from({"id": "mcp", "kind": "mcp", "url": "https://x/"}))
    store.record("mcp", CheckResult(True, Reason.OK, status_code=200, mcp=MCP))
    info = {
        "service": "mcp",
        "transport": "sse",
        "protocol_version": "2025-06-18",
        "server_name": "Sefaria MCP 📚",
        "server_version": "1.2",
    }
    assert metric_value(store.exposition, "probe_mcp_info", info) == 1
    assert metric_value(store.exposition, "probe_mcp_tools", {"service": "mcp"}) == 15
    for step, seconds in (("initialize", 0.04), ("tools_list", 0.02)):
        labels = {"service": "mcp", "step": step}
        assert metric_value(store.exposition, "probe_mcp_duration_seconds", labels) == seconds
    assert {f.name for f in families(store)} >= {
        "probe_mcp_info", "probe_mcp_tools", "probe_mcp_duration_seconds",
    }  # fmt: skip


def test_an_mcp_check_that_failed_before_initialize_exports_no_mcp_series():
    store = store_with(service_from({"id": "mcp", "kind": "mcp", "url": "https://x/"}))
    store.record("mcp", CheckResult.failure(Reason.HTTP_STATUS, "POST initialize → 404; …"))
    assert [f.samples for f in families(store) if f.name.startswith("probe_mcp_")] == [[], [], []]


def test_a_heartbeat_exports_its_last_report_deadline_and_evaluation_interval():
    service = service_from({"id": "job", "kind": "heartbeat", "interval": "24h", "token": TOKEN})
    store = store_with(service)
    details = HeartbeatDetails(last_report=900.0, deadline=900.0 + 86400 + 8640)
    store.record("job", CheckResult(True, Reason.OK, heartbeat=details))

    def value(name, labels):
        return metric_value(store.exposition, name, labels)

    assert value("probe_heartbeat_last_report_timestamp_seconds", {"service": "job"}) == 900
    assert value("probe_heartbeat_deadline_timestamp_seconds", {"service": "job"}) == 95_940
    assert value("probe_interval_seconds", {"service": "job"}) == 15  # how often it is judged
    labels = {"service": "job", "name": "job", "group": "", "public": "true", "kind": "heartbeat"}
    assert value("probe_service_info", labels) == 1
    store.record("job", CheckResult(True, Reason.OK, heartbeat=HeartbeatDetails(None, 5.0)))
    assert value("probe_heartbeat_last_report_timestamp_seconds", {"service": "job"}) is None
