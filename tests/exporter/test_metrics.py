"""The metric contract, read back through a registry (never by grepping the text format)."""

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.checks import CheckResult, Reason
from exporter.collector import ProbeCollector
from exporter.results import ResultsStore
from tests.exporter.conftest import service_from


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(clock):
    return ResultsStore(clock)


@pytest.fixture
def registry(store):
    registry = CollectorRegistry()
    registry.register(ProbeCollector(store))
    return registry


LINKER = {
    "id": "linker",
    "url": "https://x.test/",
    "name": "Linker API",
    "group": "Sefaria",
    "latency_objective": "5s",
    "interval": "30s",
}


def value(registry, metric, **labels):
    return registry.get_sample_value(metric, {"service": "linker", **labels})


def test_unchecked_service_exports_metadata_but_no_up_claim(store, registry):
    store.track([service_from(LINKER)])
    labels = {"group": "Sefaria", "public": "true", "kind": "http"}
    assert value(registry, "probe_service_info", name="Linker API", **labels) == 1
    assert value(registry, "probe_latency_objective_seconds") == 5
    assert value(registry, "probe_interval_seconds") == 30
    assert value(registry, "probe_success") is None
    assert value(registry, "probe_checks_total", result="failure") == 0


def test_results_become_the_contracts_metrics(store, registry, clock):
    store.track([service_from(LINKER)])
    ok = CheckResult(
        True,
        Reason.OK,
        duration_seconds=0.3,
        status_code=200,
        phases={"connect": 0.01, "tls": 0.02},
        cert_expiry=1_900_000_000.0,
    )
    store.record("linker", ok)
    clock.now = 1_060.0
    down = CheckResult.failure(Reason.TIMEOUT, "no answer", duration_seconds=9.5, attempts=3)
    store.record("linker", down)

    assert value(registry, "probe_success") == 0
    assert value(registry, "probe_duration_seconds") == 9.5
    assert value(registry, "probe_http_status_code") == 0
    assert value(registry, "probe_attempts") == 3
    assert value(registry, "probe_result_info", reason="timeout") == 1
    assert value(registry, "probe_result_info", reason="ok") is None  # one series per service
    assert value(registry, "probe_checks_total", result="success") == 1
    assert value(registry, "probe_checks_total", result="failure") == 1
    assert value(registry, "probe_last_run_timestamp_seconds") == 1_060
    assert value(registry, "probe_last_change_timestamp_seconds") == 1_060
    assert value(registry, "probe_ssl_earliest_cert_expiry") == 1_900_000_000
    assert value(registry, "probe_http_duration_seconds", phase="resolve") == 0
    assert value(registry, "probe_check_duration_seconds_bucket", le="0.5") == 1
    assert value(registry, "probe_check_duration_seconds_bucket", le="10.0") == 2
    assert value(registry, "probe_check_duration_seconds_bucket", le="+Inf") == 2
    assert value(registry, "probe_check_duration_seconds_count") == 2
    assert value(registry, "probe_check_duration_seconds_sum") == pytest.approx(9.8)


def test_last_change_moves_only_on_up_down_changes(store, registry, clock):
    store.track([service_from(LINKER)])
    store.record("linker", CheckResult(True, Reason.OK))
    clock.now = 2_000.0
    store.record("linker", CheckResult(True, Reason.OK))
    assert value(registry, "probe_last_change_timestamp_seconds") == 1_000


def test_removed_service_disappears_and_counters_survive_a_config_change(store, registry):
    store.track([service_from(LINKER), service_from({**LINKER, "id": "other"})])
    store.record("linker", CheckResult(True, Reason.OK))
    store.track([service_from({**LINKER, "interval": "10s"})])
    assert value(registry, "probe_checks_total", result="success") == 1
    assert value(registry, "probe_interval_seconds") == 10
    assert registry.get_sample_value("probe_interval_seconds", {"service": "other"}) is None
    assert store.record("other", CheckResult(True, Reason.OK)) is None


def test_exposition_is_valid_and_names_follow_conventions(store, registry):
    store.track([service_from(LINKER)])
    store.record("linker", CheckResult(True, Reason.OK, status_code=200))
    families = {
        f.name: f.type for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    assert families["probe_checks"] == "counter"
    assert families["probe_check_duration_seconds"] == "histogram"
    assert families["probe_success"] == "gauge"
    assert families["status_exporter_check_overruns"] == "counter"
    assert all(not name.endswith("_total") for name in families)  # suffix added on counters only
