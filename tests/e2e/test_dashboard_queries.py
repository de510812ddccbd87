"""Every PromQL expression of every committed dashboard, run against the real e2e Prometheus.

The stack is loaded by the real exporter checking the simulation, with the Linker switched to
failing so that failure reasons and firing alerts exist too. A query must parse, both as an
instant and as a range query, and return data, unless it is listed in EXPECTED_EMPTY with why.
"""

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import HEARTBEAT_TOKEN

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
EXPECTED_EMPTY = {
    ("Service overview", "TLS certificate days left"): (
        "the simulated services are plain http, so no certificate expiry is exported"
    ),
}
GRAFANA_VARIABLES = {
    # Grafana's $__rate_interval is at least four scrape intervals; the e2e stack scrapes at 1s.
    "$__rate_interval": "5s",
    "$service": ".+",
    "$instance": ".+",
}


def panel_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, panel, refId, expr) for every target of every panel."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((board["title"], panel["title"], target["refId"], target["expr"]))
    return found


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable left in {expr!r}"
    return expr


def prometheus_api(base_url: str, endpoint: str, **params: str) -> dict[str, Any]:
    """Call the HTTP API, returning its JSON even for a 400 (which carries the parse error)."""
    url = f"{base_url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


def test_every_panel_has_a_query_to_check():
    titles = {(dashboard, panel) for dashboard, panel, _, _ in panel_queries()}
    assert len(titles) >= 20
    assert set(EXPECTED_EMPTY) <= titles, "EXPECTED_EMPTY names a panel that no longer exists"


@pytest.fixture
async def loaded_stack(stack, sim):
    """The stack once every recording rule has data, the Linker's outage alert is firing and the
    nightly export has reported."""
    sim.set_mode("linker", "failure")
    report = urllib.request.Request(
        f"{stack.url('exporter')}/api/v1/heartbeat/export-job",
        method="POST",
        headers={"Authorization": f"Bearer {HEARTBEAT_TOKEN}"},
    )
    await asyncio.to_thread(urllib.request.urlopen, report, timeout=5)
    for promql in (
        "probe_heartbeat_last_report_timestamp_seconds",
        'ALERTS{alertname="ServiceDown", alertstate="firing"}',
        "service:probe_duration_seconds:p95_5m",
        'probe_result_info{reason!="ok"}',
        "rate(status_exporter_scheduling_lag_seconds_count[5s]) > 0",
    ):
        await asyncio.to_thread(stack.wait_for_query, promql, 45.0)
    return stack


async def test_every_dashboard_query_parses_and_returns_data(loaded_stack):
    base = loaded_stack.url("prometheus")
    problems = []
    for dashboard, panel, ref_id, expr in panel_queries():
        promql = substitute(expr)
        where = f"{dashboard} / {panel} / {ref_id}"
        instant = await asyncio.to_thread(prometheus_api, base, "query", query=promql)
        if instant["status"] != "success":
            problems.append(f"{where}: {instant.get('error')} in {promql}")
            continue
        end = time.time()
        ranged = await asyncio.to_thread(
            prometheus_api,
            base,
            "query_range",
            query=promql,
            start=f"{end - 30}",
            end=f"{end}",
            step="1",
        )
        expected_empty = (dashboard, panel) in EXPECTED_EMPTY
        has_data = bool(instant["data"]["result"])
        if has_data == expected_empty:
            state = "returned data but is listed as expected-empty" if has_data else "no data"
            problems.append(f"{where}: {state}: {promql}")
        if ranged.get("status") != "success":
            problems.append(f"{where}: range query failed: {ranged.get('error')}")
    assert problems == []


def variable_queries() -> dict[str, tuple[str, str]]:
    """Variable name → (series selector, label) of every `label_values(...)` variable."""
    found = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert match, f"{path.name}: variable {variable['name']} is not a label_values query"
            found[variable["name"]] = (match[1], match[2])
    return found


async def test_template_variables_list_the_services_and_the_exporter(loaded_stack):
    expected = {
        "service": ["export-job", "export-server", "linker", "mcp", "sefaria-org"],
        "instance": [loaded_stack.address("exporter")],
    }
    values = {}
    for name, (selector, label) in variable_queries().items():
        answer = await asyncio.to_thread(
            prometheus_api,
            loaded_stack.url("prometheus"),
            f"label/{label}/values",
            **{"match[]": selector},
        )
        values[name] = answer["data"]
    assert values == expected
