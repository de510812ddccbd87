"""Fixtures: the simulated Sefaria on a real loopback server, and services built from YAML."""

import asyncio
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter.checks import CheckContext
from exporter.config import ServiceConfig, parse_config
from exporter.exposition import Exposition, scrape
from simulation import Simulation, create_app


@pytest.fixture
def sim() -> Simulation:
    return Simulation(slow_seconds=0.5, flaky_failures=2, polls_to_finish=3)


@pytest.fixture
async def sim_server(aiohttp_server, sim: Simulation) -> TestServer:
    return await aiohttp_server(create_app(sim), host="127.0.0.1")


@pytest.fixture
def base_url(sim_server: TestServer) -> str:
    return str(sim_server.make_url("")).rstrip("/")


@pytest.fixture
async def ctx() -> AsyncIterator[CheckContext]:
    context = CheckContext(ssl_context=ssl.create_default_context())
    yield context
    await context.aclose()


class FakeClock:
    """A clock the test moves by hand (`clock.now += 60`)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service_from(entry: dict[str, Any], defaults: dict[str, Any] | None = None) -> ServiceConfig:
    """One service parsed from YAML-shaped data, so tests go through real validation."""
    document = {"defaults": defaults or {}, "services": [{"id": "svc", **entry}]}
    return parse_config(json.dumps(document)).services[0]


@pytest.fixture
def make_service() -> Callable[..., ServiceConfig]:
    def make(**entry: Any) -> ServiceConfig:
        entry.setdefault("retries", {"attempts": 3, "backoff": "10ms"})
        return service_from(entry)

    return make


async def eventually(condition, timeout=5.0, interval=0.02):
    """Wait until `condition()` is truthy; fail with a clear message after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def metric_value(exposition: Exposition, name: str, labels: dict[str, str]) -> float | None:
    """One sample's value, read back from the rendered exposition as Prometheus reads it."""
    text = scrape(exposition, CollectorRegistry(), accept="")[0].decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def promtool_check_metrics(exposition: str) -> None:
    """Prometheus' own parser and linter must accept this text exposition as it is."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make test` installs prometheus"
    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
