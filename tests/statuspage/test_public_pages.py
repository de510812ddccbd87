"""Public pages and the Statuspage v2 API, fed by a real exporter and Prometheus."""

import asyncio
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from urllib.robotparser import RobotFileParser

import pytest
from aiohttp.test_utils import TestClient

from statuspage.app import create_app
from tests.statuspage.helpers import component_statuses, eventually

PUBLIC = {"sefaria-org", "linker", "mcp", "export-server"}


async def all_operational(client: TestClient) -> dict:
    response = await client.get("/api/v2/summary.json")
    summary = await response.json()
    statuses = component_statuses(summary)
    return summary if set(statuses.values()) == {"operational"} else None


async def test_index_shows_every_public_service_and_nothing_private(client: TestClient) -> None:
    await eventually(lambda: all_operational(client))
    response = await client.get("/")
    page = await response.text()
    assert response.status == 200
    assert "All Systems Operational" in page
    for name in ("sefaria.org", "Linker API", "MCP server", "Export Server"):
        assert name in page
    assert "Internal admin" not in page
    assert "internal-admin" not in page
    assert "127.0.0.1" not in page  # no internal URL
    assert page.count('class="bar ') == 4 * 90
    assert re.search(r"Updated \d+ s ago", page)
    assert 'http-equiv="refresh"' not in page  # refreshed by a same-origin script instead
    assert re.search(r'<script src="/static/refresh\.js\?v=[0-9a-f]{12}" defer></script>', page)
    assert '<meta name="description" content="' in page


async def test_summary_json_has_statuspage_fields(client: TestClient) -> None:
    summary = await eventually(lambda: all_operational(client))
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert set(summary["page"]) == {"id", "name", "url", "time_zone", "updated_at"}
    assert summary["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert set(component_statuses(summary)) == PUBLIC
    groups = {c["name"]: c for c in summary["components"] if c["group"]}
    assert set(groups) == {"Sefaria", "Developers"}
    assert groups["Developers"]["components"] == ["mcp"]
    component = next(c for c in summary["components"] if c["id"] == "linker")
    assert set(component) >= {
        "id", "name", "status", "created_at", "updated_at", "position", "description",
        "showcase", "start_date", "group_id", "page_id", "group", "only_show_if_degraded",
    }  # fmt: skip
    assert component["group_id"] == groups["Sefaria"]["id"]


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/api/v2/status.json", "status"),
        ("/api/v2/components.json", "components"),
        ("/api/v2/incidents.json", "incidents"),
        ("/api/v2/incidents/unresolved.json", "incidents"),
        ("/api/v2/scheduled-maintenances.json", "scheduled_maintenances"),
        ("/api/v2/scheduled-maintenances/upcoming.json", "scheduled_maintenances"),
        ("/api/v2/scheduled-maintenances/active.json", "scheduled_maintenances"),
    ],
)
async def test_every_v2_endpoint_answers(client: TestClient, path: str, key: str) -> None:
    response = await client.get(path)
    body = await response.json()
    assert response.status == 200
    assert set(body) == {"page", key}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_failing_service_turns_red_and_recovers(client: TestClient, live_stack) -> None:
    _, simulator = live_stack
    await eventually(lambda: all_operational(client))

    async def export_server_status(wanted: str) -> dict | None:
        summary = await (await client.get("/api/v2/summary.json")).json()
        return summary if component_statuses(summary)["export-server"] == wanted else None

    simulator.set_mode("export-server", "error")
    try:
        summary = await eventually(lambda: export_server_status("major_outage"))
        assert summary["status"] == {"indicator": "critical", "description": "Major Outage"}
        page = await (await client.get("/")).text()
        assert "Major Outage" in page
        badge = await (await client.get("/badge/export-server.svg")).text()
        assert "Export Server: major outage" in badge
    finally:
        simulator.set_mode("export-server", "ok")
    await eventually(lambda: export_server_status("operational"))


async def test_badges_exist_for_public_services_only(client: TestClient) -> None:
    await eventually(lambda: all_operational(client))
    response = await client.get("/badge/linker.svg")
    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    ET.fromstring(await response.text())
    assert (await client.get("/badge/internal-admin.svg")).status == 404
    assert (await client.get("/badge/nope.svg")).status == 404


async def test_pages_send_security_and_cache_headers(client: TestClient) -> None:
    for path, cache in [
        ("/", "public"),
        ("/nope", "no-store"),
        ("/admin/api/incidents", "no-store"),
    ]:
        response = await client.get(path)
        headers = response.headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"].startswith(cache)


async def test_robots_txt_keeps_crawlers_off_admin_hooks_and_health(client: TestClient) -> None:
    robots = RobotFileParser()
    robots.parse((await (await client.get("/robots.txt")).text()).splitlines())
    for path in ("/admin/api/incidents", "/hooks/alertmanager", "/-/ready", "/-/healthy"):
        assert not robots.can_fetch("AnyBot", path), path
    for path in ("/", "/history", "/incidents/1", "/api/v2/summary.json", "/badge/linker.svg"):
        assert robots.can_fetch("AnyBot", path), path


async def test_history_and_incident_pages(client: TestClient, auth) -> None:
    assert (await client.get("/history")).status == 200
    assert (await client.get("/incidents/999999")).status == 404
    assert (await client.get("/history?page=x")).status == 400
    created = await client.post(
        "/admin/api/incidents",
        json={"title": "Slow search", "impact": "minor", "status": "identified", "body": "a\n\nb"},
        headers=auth,
    )
    incident = await created.json()
    page = await (await client.get(f"/incidents/{incident['id']}")).text()
    assert "Slow search" in page
    assert "<p>a</p><p>b</p>" in page
    assert "Slow search" in await (await client.get("/history")).text()


async def test_atom_feed_lists_incidents_with_updates(client: TestClient, auth) -> None:
    await client.post(
        "/admin/api/incidents",
        json={"title": "Feed <test>", "impact": "none", "status": "resolved", "body": "Done & ok"},
        headers=auth,
    )
    response = await client.get("/history.atom")
    assert response.content_type == "application/atom+xml"
    feed = ET.fromstring(await response.text())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    (entry,) = feed.findall("a:entry", ns)
    assert entry.find("a:title", ns).text == "Feed <test>"
    assert "Done &amp; ok" in entry.find("a:content", ns).text
    assert entry.find("a:id", ns).text.startswith("https://status.example.org/incidents/")


async def test_own_metrics_health_and_readiness(client: TestClient) -> None:
    await eventually(lambda: all_operational(client))
    assert (await client.get("/-/healthy")).status == 200
    ready = await client.get("/-/ready")
    assert ready.status == 200, await ready.text()
    metrics = await (await client.get("/metrics")).text()
    assert (
        'statuspage_http_request_duration_seconds_count{code="200",handler="/api/v2/summary.json"'
        in metrics
    )
    assert 'statuspage_cache_requests_total{result="miss",source="prometheus"}' in metrics
    assert "statuspage_prometheus_errors_total 0.0" in metrics


async def test_visitors_do_not_multiply_prometheus_queries(aiohttp_client, settings, live_stack):
    stack, _ = live_stack
    client = await aiohttp_client(create_app(replace(settings, cache_ttl=60)))

    async def queries_answered() -> float:
        metrics = await (await client.session.get(f"{stack.url('prometheus')}/metrics")).text()
        match = re.search(
            r'prometheus_http_requests_total\{code="200",handler="/api/v1/query"\} (\S+)', metrics
        )
        return float(match[1]) if match else 0.0

    before = await queries_answered()
    assert (await client.get("/")).status == 200
    one_refresh = await queries_answered() - before
    responses = await asyncio.gather(*(client.get("/") for _ in range(200)))
    assert {r.status for r in responses} == {200}
    assert one_refresh > 0
    assert await queries_answered() - before == one_refresh
