"""The OpenAPI 3.1 contract at /api/openapi.json: valid (openapi-spec-validator), complete (every
JSON route of the app is in it), and kept — schemathesis fuzzes the real status page process,
on a real PostgreSQL, Prometheus and Alertmanager, operation by operation and through the
stateful links (create → read → update → resolve → delete): no server error, and every answer
conforms to the contract."""

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate
from stack import Process, free_port

from statuspage.app import create_app
from statuspage.views.openapi import spec
from tests.statuspage.conftest import TOKEN

SCHEMATHESIS = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 200
"""Test cases per operation and phase: bounded, and seeded below, so every run is the same."""
SEED = 20261127
# Every check schemathesis has but one: positive_data_acceptance expects any schema-valid body
# to be accepted, while service ids are checked against Prometheus and windows against a date
# range at run time, which a schema cannot say.
CHECKS = ["all"]
EXCLUDED_CHECKS = ["positive_data_acceptance"]


def test_the_contract_is_valid_openapi_3_1() -> None:
    document = spec()
    assert document["openapi"] == "3.1.0"
    validate(document)


async def test_the_contract_is_served_and_names_every_json_route(
    client: TestClient, settings
) -> None:
    served = await (await client.get("/api/openapi.json")).json()
    assert served == spec()
    app = create_app(settings)
    routes = {
        (route.method, _template(route.resource.canonical))
        for router in _routers(app)
        for route in router.routes()
        if route.method != "HEAD"
    }
    json_routes = {
        (method, path)
        for method, path in routes
        if path.startswith(("/api/v2/", "/admin/api/", "/hooks/"))
    }
    documented = {
        (method.upper(), path)
        for path, operations in spec()["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert documented == json_routes


def _routers(app):
    """The app's router and its sub-applications' (whose routes carry their prefix)."""
    yield app.router
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            yield resource._app.router


def _template(path: str) -> str:
    return path.replace("{id:\\d+}", "{id}")


@pytest.fixture(scope="module")
def status_page(live_stack, postgres, tmp_path_factory) -> Iterator[str]:
    """The real `python -m statuspage` process, as deployed."""
    stack, _ = live_stack
    workdir = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        "statuspage",
        [sys.executable, "-m", "statuspage", "--web.listen-address", f"127.0.0.1:{port}"],
        workdir / "statuspage.log",
        f"{url}/-/ready",
        env={
            "DATABASE_URL": postgres.create_database("fuzzed"),
            "PROMETHEUS_URL": stack.url("prometheus"),
            "ALERTMANAGER_URL": stack.url("alertmanager"),
            "ADMIN_TOKENS": TOKEN,
            "PUBLIC_URL": "https://status.example.org",
            "CACHE_TTL": "1",
            # One fuzzer on one address sends thousands of requests, some without a token on
            # purpose (it checks they are refused with 401): no rate limit in its way.
            "AUTH_FAILURES_PER_MINUTE": "1000000",
            "AUTH_FAILURES_PER_MINUTE_TOTAL": "1000000",
        },
    )
    process.start()
    try:
        process.wait_ready()
        yield url
    finally:
        process.stop()
        log = process.log_path.read_text()
        assert "unhandled error" not in log, log[-3000:]


def test_schemathesis_finds_no_server_error_and_no_contract_violation(
    status_page: str, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    command = [
        str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{status_page}/api/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--checks", ",".join(CHECKS), "--exclude-checks", ",".join(EXCLUDED_CHECKS),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--generation-deterministic",
        "--workers", "1", "--request-timeout", "10",
        "--report", "json", "--report-json-path", str(report), "--no-color",
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False
    )
    print(result.stdout[-1500:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary = json.loads(report.read_text())
    assert {phase["status"] for phase in summary["phases"].values()} == {"success"}
    assert (summary["failures"], summary["errors"]) == ([], [])
    assert summary["test_cases"]["with_failures"] == 0
    answered = _answers_by_code(status_page)
    cases, requests = summary["test_cases"]["generated"], sum(answered.values())
    print(f"schemathesis: {cases} test cases, {requests} requests; by status: {answered}")
    assert requests > 500
    assert not [code for code in answered if code.startswith("5")]


def _answers_by_code(base_url: str) -> dict[str, int]:
    """What the status page itself counted (its request histogram), by HTTP status."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[str, int] = {}
    for code, value in re.findall(
        r'statuspage_http_request_duration_seconds_count\{code="(\d+)"[^}]*\} (\S+)', text
    ):
        counts[code] = counts.get(code, 0) + int(float(value))
    return dict(sorted(counts.items()))
