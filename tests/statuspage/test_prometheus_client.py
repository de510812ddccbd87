"""The Prometheus client and the single-flight cache, with Prometheus' HTTP API simulated by
aioresponses (the real PromQL is proven against a real Prometheus in test_live_prometheus.py)."""

import asyncio
import re
from types import SimpleNamespace

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from aioresponses import core as aioresponses_core
from prometheus_client import CollectorRegistry, Counter

from statuspage.cache import SingleFlight
from statuspage.live import load_live
from statuspage.prometheus import PrometheusClient, PrometheusError

BASE = "http://prometheus.test:9090"
QUERY = re.compile(r"^http://prometheus\.test:9090/api/v1/query$")


def vector(*samples: tuple[dict[str, str], str]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": labels, "value": [1700000000, v]} for labels, v in samples],
        },
    }


class _ClientResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 does not pass aiohttp 3.14's new `stream_writer` argument
    (pnuckowski/aioresponses#289); a finished request only needs its output size."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_on_aiohttp_3_14(monkeypatch) -> None:
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _ClientResponse)


@pytest.fixture
async def prometheus():
    registry = CollectorRegistry()
    errors = Counter("errors", "errors", registry=registry)
    async with aiohttp.ClientSession() as session:
        yield PrometheusClient(session, BASE, timeout=1.0, errors=errors), registry


async def test_query_returns_samples_with_nan_as_none(prometheus) -> None:
    client, _ = prometheus
    with aioresponses() as mocked:
        mocked.post(QUERY, payload=vector(({"service": "a"}, "1"), ({"service": "b"}, "NaN")))
        samples = await client.query("probe_success")
    assert [(s.labels["service"], s.value) for s in samples] == [("a", 1.0), ("b", None)]


async def test_query_sends_promql_and_time(prometheus) -> None:
    client, _ = prometheus
    with aioresponses() as mocked:
        mocked.post(QUERY, payload=vector())
        await client.query("up == 1", at=1700000000.5)
        (call,) = next(iter(mocked.requests.values()))
    assert call.kwargs["data"] == {"query": "up == 1", "time": "1700000000.500"}


async def test_query_range_parses_series(prometheus) -> None:
    client, _ = prometheus
    payload = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"service": "a"}, "values": [[100, "0.5"], [200, "NaN"]]}],
        },
    }
    with aioresponses() as mocked:
        mocked.post(f"{BASE}/api/v1/query_range", payload=payload)
        (series,) = await client.query_range("x", start=100, end=200, step=100)
    assert series.points == ((100.0, 0.5), (200.0, None))


MATRIX = {"resultType": "matrix", "result": []}


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"status": 400, "payload": {"status": "error", "error": "parse error"}}, "parse error"),
        ({"status": 503, "body": "<html>bad gateway</html>"}, "HTTP 503, not JSON"),
        ({"exception": aiohttp.ClientConnectionError("refused")}, "ClientConnectionError"),
        ({"exception": TimeoutError()}, "no answer within 1s"),
        ({"payload": {"status": "success", "data": MATRIX}}, "expected a vector"),
    ],
)
async def test_failures_raise_a_clear_error_and_are_counted(prometheus, response, message) -> None:
    client, registry = prometheus
    with aioresponses() as mocked:
        mocked.post(QUERY, **response)
        with pytest.raises(PrometheusError, match=message):
            await client.query("probe_success")
    counted = registry.get_sample_value("errors_total") or 0
    assert counted == (0 if "vector" in message else 1)


async def test_load_live_builds_probes_from_the_metric_contract(prometheus) -> None:
    client, _ = prometheus
    info = {"group": "G", "kind": "http"}
    web, db = {"service": "web"}, {"service": "db"}
    answers = {
        "probe_service_info": vector(
            ({**web, **info, "name": "Web", "public": "true"}, "1"),
            ({**db, **info, "name": "DB", "public": "false"}, "1"),
        ),
        "service:probe_success:quorum": vector((web, "0"), (db, "1")),
        "min by (service) (probe_last_change_timestamp_seconds"
        " and on (instance, service) instance_service:probe_success:fresh == 0)": vector(
            (web, "1699999000")
        ),
        "max by (service) (probe_interval_seconds)": vector((web, "30")),
    }

    def answer(url, data, **kwargs):
        return CallbackResult(payload=answers.get(data["query"], vector()))

    with aioresponses() as mocked:
        mocked.post(QUERY, callback=answer, repeat=True)
        live = await load_live(client)
    assert (live.services["web"].public, live.services["db"].public) == (True, False)
    assert (live.probes["web"].up, live.probes["db"].up) == (False, True)
    assert (live.probes["web"].interval, live.probes["web"].last_run) == (30.0, None)
    assert live.down_since == {"web": 1699999000.0}


async def test_single_flight_refreshes_once_per_ttl_and_serves_stale_on_error() -> None:
    registry = CollectorRegistry()
    requests = Counter("cache", "c", ["source", "result"], registry=registry)
    calls = 0
    fail = False

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if fail:
            raise PrometheusError("down")
        return calls

    cache = SingleFlight("p", load, ttl=0.2, requests=requests, failure_types=(PrometheusError,))
    results = await asyncio.gather(*(cache.get() for _ in range(100)))
    assert (calls, {r.value for r in results}) == (1, {1})
    assert ((await cache.get()).value, calls) == (1, 1)
    fail = True
    await asyncio.sleep(0.25)
    stale = await cache.get()
    assert (calls, stale.value, stale.error) == (2, 1, "down")
    assert ((await cache.get()).error, calls) == ("down", 2)  # no retry before the TTL
    cache.invalidate()
    fail = False
    assert (await cache.get()).value == 3
    assert registry.get_sample_value("cache_total", {"source": "p", "result": "miss"}) == 3
