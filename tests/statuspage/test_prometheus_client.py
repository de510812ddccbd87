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


class Gate:
    """A load whose answers the test releases one at a time (or makes fail)."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = False

    async def load(self) -> int:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise PrometheusError("down")
        return self.calls


async def test_single_flight_serves_stale_while_it_revalidates() -> None:
    registry = CollectorRegistry()
    requests = Counter("cache", "c", ["source", "result"], registry=registry)
    now = [1000.0]
    gate = Gate()
    cache = SingleFlight(
        "p", gate.load, ttl=30, requests=requests, failure_types=(PrometheusError,),
        wait=0.5, clock=lambda: now[0],
    )  # fmt: skip
    # Nothing to serve yet: 100 concurrent callers share one load and wait for it.
    first = [asyncio.create_task(cache.get()) for _ in range(100)]
    await asyncio.sleep(0)
    gate.release.set()
    results = await asyncio.gather(*first)
    assert (gate.calls, {r.value for r in results}) == (1, {1})
    assert ((await cache.get()).value, gate.calls) == (1, 1)  # within the TTL: no load
    # Past the TTL with a hung source: callers get the stale value at once, one refresh runs.
    now[0] += 31
    gate.release.clear()
    stale = [await asyncio.wait_for(cache.get(), timeout=0.1) for _ in range(50)]
    assert ({r.value for r in stale}, gate.calls) == ({1}, 2)
    gate.fail = True
    gate.release.set()
    await asyncio.sleep(0.01)
    failed = await cache.get()
    assert (failed.value, failed.error, gate.calls) == (1, "down", 2)  # no retry before TTL
    # A write invalidates: the next caller waits for the refresh and sees the new value.
    gate.fail = False
    cache.invalidate()
    assert ((await cache.get()).value, gate.calls) == (3, 3)
    # ... but never longer than `wait` when the source hangs.
    gate.release.clear()
    cache.invalidate()
    assert (await asyncio.wait_for(cache.get(), timeout=2)).value == 3
    assert gate.calls == 4
    misses = registry.get_sample_value("cache_total", {"source": "p", "result": "miss"})
    assert misses == 4
    await cache.close()
