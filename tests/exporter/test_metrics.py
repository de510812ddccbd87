"""The metric contract, read back from the rendered exposition (never by grepping the text)."""

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector

from exporter.checks import CheckResult, Reason
from exporter.exposition import SERVICE_FAMILIES, scrape
from exporter.results import ResultsStore
from tests.exporter.conftest import FakeClock, metric_value, service_from

PROMETHEUS_ACCEPT = (  # what Prometheus 2.42 sends
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(clock):
    return ResultsStore(clock)


LINKER = {
    "id": "linker",
    "url": "https://x.test/",
    "name": "Linker API",
    "group": "Sefaria",
    "latency_objective": "5s",
    "interval": "30s",
}


def value(store, metric, **labels):
    return metric_value(store.exposition, metric, {"service": "linker", **labels})


def test_unchecked_service_exports_metadata_but_no_up_claim(store):
    store.track([service_from(LINKER)])
    labels = {"group": "Sefaria", "public": "true", "kind": "http"}
    assert value(store, "probe_service_info", name="Linker API", **labels) == 1
    assert value(store, "probe_latency_objective_seconds") == 5
    assert value(store, "probe_interval_seconds") == 30
    assert value(store, "probe_success") is None
    assert value(store, "probe_checks_total", result="failure") == 0


def test_results_become_the_contracts_metrics(store, clock):
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
    assert value(store, "probe_http_duration_seconds", phase="tls") == 0.02
    clock.now = 1_060.0
    down = CheckResult.failure(Reason.TIMEOUT, "no answer", duration_seconds=9.5, attempts=3)
    store.record("linker", down)

    assert value(store, "probe_success") == 0
    assert value(store, "probe_duration_seconds") == 9.5
    assert value(store, "probe_http_status_code") == 0
    assert value(store, "probe_attempts") == 3
    assert value(store, "probe_result_info", reason="timeout") == 1
    assert value(store, "probe_result_info", reason="ok") is None  # one series per service
    assert value(store, "probe_checks_total", result="success") == 1
    assert value(store, "probe_checks_total", result="failure") == 1
    assert value(store, "probe_last_run_timestamp_seconds") == 1_060
    assert value(store, "probe_last_change_timestamp_seconds") == 1_060
    assert value(store, "probe_ssl_earliest_cert_expiry") == 1_900_000_000
    assert value(store, "probe_http_duration_seconds", phase="resolve") == 0
    assert value(store, "probe_http_duration_seconds", phase="tls") == 0  # not in the latest


def test_last_change_moves_only_on_up_down_changes(store, clock):
    store.track([service_from(LINKER)])
    store.record("linker", CheckResult(True, Reason.OK))
    clock.now = 2_000.0
    store.record("linker", CheckResult(True, Reason.OK))
    assert value(store, "probe_last_change_timestamp_seconds") == 1_000


def test_overruns_are_exported_as_they_are_counted(store):
    store.track([service_from(LINKER)])
    store.count_overrun("linker")
    assert value(store, "status_exporter_check_overruns_total") == 1


def test_removed_service_disappears_and_counters_survive_a_config_change(store):
    store.track([service_from(LINKER), service_from({**LINKER, "id": "other"})])
    store.record("linker", CheckResult(True, Reason.OK))
    store.record("other", CheckResult(True, Reason.OK))
    store.track([service_from({**LINKER, "interval": "10s"})])
    assert value(store, "probe_checks_total", result="success") == 1
    assert value(store, "probe_interval_seconds") == 10
    text = scrape(store.exposition, CollectorRegistry(), accept="")[0].decode()
    assert 'service="other"' not in text
    assert store.record("other", CheckResult(True, Reason.OK)) is None


class ClientRendering(Collector):
    """The same records as prometheus_client's own metric families: the reference rendering."""

    def __init__(self, store: ResultsStore) -> None:
        self._store = store

    def collect(self) -> list[Metric]:
        families = []
        for family in SERVICE_FAMILIES:
            kind = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
            metric = kind(family.name, family.documentation)
            for record in self._store:
                for values, sample_value in family.samples(record):
                    labels = {
                        "service": record.service.id,
                        **dict(zip(family.labels, values, strict=True)),
                    }
                    metric.add_sample(family.sample_name, labels, sample_value)
            families.append(metric)
        return families


def parsed(text: str, openmetrics_format: bool) -> list:
    families = (parse_openmetrics if openmetrics_format else parse_text)(text)
    return [
        (
            family.name,
            family.type,
            family.documentation,
            sorted((s.name, sorted(s.labels.items()), s.value) for s in family.samples),
        )
        for family in families
    ]


@pytest.fixture
def sample_store(store, clock):
    """Services in every state, with label values that need escaping."""
    hostile = 'Quote " back\\slash \n newline, עברית'
    store.track(
        [
            service_from(LINKER),
            service_from({**LINKER, "id": "never-checked", "public": False}),
            service_from({**LINKER, "id": "hostile", "name": hostile, "group": hostile}),
            service_from({**LINKER, "id": "down", "url": "http://x.test/", "kind": "sse"}),
        ]
    )
    phases = {"resolve": 0.001, "connect": 0.002, "tls": 0.03, "processing": 0.1}
    ok = CheckResult(True, Reason.OK, 0.123456789, 200, 1, phases, 1_900_000_000.5)
    store.record("linker", ok)
    store.record("hostile", ok)
    clock.now = 1_700_000_000.25
    store.record("down", CheckResult.failure(Reason.HTTP_STATUS, "502", status_code=502))
    store.count_overrun("down")
    return store


@pytest.mark.parametrize(("accept", "openmetrics_format"), [("", False), (PROMETHEUS_ACCEPT, True)])
def test_exposition_equals_prometheus_clients_rendering(sample_store, accept, openmetrics_format):
    body, _ = scrape(sample_store.exposition, CollectorRegistry(), accept)
    reference = CollectorRegistry()
    reference.register(ClientRendering(sample_store))
    encode = openmetrics.generate_latest if openmetrics_format else generate_latest
    ours = parsed(body.decode(), openmetrics_format)
    assert ours == parsed(encode(reference).decode(), openmetrics_format)
    assert len(ours) == len(SERVICE_FAMILIES)  # each family once, all its samples together
    assert sum(len(family[3]) for family in ours) > 30


def test_prometheus_gets_openmetrics_with_one_eof_after_the_process_metrics(sample_store):
    registry = CollectorRegistry()
    Gauge("status_exporter_services", "Services being checked.", registry=registry).set(4)
    body, content_type = scrape(sample_store.exposition, registry, PROMETHEUS_ACCEPT)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"\n# EOF\n")
    assert body.count(b"# EOF") == 1
    names = [family[0] for family in parsed(body.decode(), openmetrics_format=True)]
    assert names[-1] == "status_exporter_services"
    assert "probe_checks" in names


def test_text_format_by_default_and_counters_named_with_total(sample_store):
    body, content_type = scrape(sample_store.exposition, CollectorRegistry(), "*/*")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# EOF" not in body
    families = {family[0]: family[1] for family in parsed(body.decode(), openmetrics_format=False)}
    assert families["probe_checks"] == "counter"
    assert families["status_exporter_check_overruns"] == "counter"
    assert families["probe_success"] == "gauge"
    assert b"# TYPE probe_checks_total counter\n" in body


def test_a_requested_escaping_scheme_is_answered_with_the_names_as_they_are(sample_store):
    accept = "application/openmetrics-text;version=1.0.0;escaping=dots"
    body, content_type = scrape(sample_store.exposition, CollectorRegistry(), accept)
    assert content_type.endswith("escaping=underscores")
    assert b"probe_checks_total{" in body
