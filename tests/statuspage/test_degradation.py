"""A down Prometheus or PostgreSQL degrades the page; it never fails it."""

import asyncio
import shutil
from dataclasses import replace

from aiohttp.test_utils import TestClient
from stack import Stack, Timings

from statuspage.app import create_app
from tests.statuspage.conftest import services_file, throwaway_cluster
from tests.statuspage.helpers import component_statuses, eventually


async def test_postgresql_stopping_mid_test(aiohttp_client, settings, auth) -> None:
    cluster, base = throwaway_cluster()
    await asyncio.to_thread(cluster.start)
    try:
        await asyncio.to_thread(cluster.create_database, "statuspage")
        client: TestClient = await aiohttp_client(
            create_app(replace(settings, database_url=cluster.url("statuspage")))
        )
        incident = {"title": "Slow", "impact": "minor", "status": "investigating", "body": "b"}
        assert (
            await client.post("/admin/api/incidents", json=incident, headers=auth)
        ).status == 201
        assert "Slow" in await (await client.get("/")).text()

        await asyncio.to_thread(cluster.stop)

        async def page_says_incidents_unavailable() -> bool:
            response = await client.get("/")
            assert response.status == 200
            return "Incident information is temporarily unavailable" in await response.text()

        await eventually(page_says_incidents_unavailable, timeout=10)
        assert "Slow" in await (await client.get("/")).text()  # the last known incidents stay
        for path in ("/history", "/incidents/1", "/api/v2/summary.json", "/api/v2/incidents.json",
                     "/history.atom", "/badge/linker.svg"):  # fmt: skip
            assert (await client.get(path)).status == 200, path
        refused = await client.post("/admin/api/incidents", json=incident, headers=auth)
        assert refused.status == 503
        assert "database is unavailable" in (await refused.json())["error"]
        ready = await client.get("/-/ready")
        assert ready.status == 503
        assert "PostgreSQL" in await ready.text()

        await asyncio.to_thread(cluster.start)
        again = await client.post("/admin/api/incidents", json=incident, headers=auth)
        assert again.status == 201
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(base, ignore_errors=True)


async def test_prometheus_stopping_mid_test(aiohttp_client, settings, live_stack, tmp_path, auth):
    _, simulator = live_stack
    stack = Stack(
        workdir=tmp_path / "stack",
        services_file=services_file(tmp_path, simulator.url),
        slack_webhook_url=f"{simulator.url}/nowhere",
        timings=Timings.fast(),
    )
    await asyncio.to_thread(stack.start)
    try:
        every_service_up = "count(service:probe_success:quorum == 1) >= 5"
        await asyncio.to_thread(stack.wait_for_query, every_service_up)
        client: TestClient = await aiohttp_client(
            create_app(replace(settings, prometheus_url=stack.url("prometheus")))
        )

        async def statuses() -> set[str]:
            response = await client.get("/api/v2/summary.json")
            assert response.status == 200
            return set(component_statuses(await response.json()).values())

        assert await eventually(lambda: statuses()) == {"operational"}
        stack.kill("prometheus")

        async def all_unknown() -> dict | None:
            response = await client.get("/api/v2/summary.json")
            assert response.status == 200
            summary = await response.json()
            known = {c["status_known"] for c in summary["components"] if not c["group"]}
            return summary if known == {False} else None

        # The last good data is served, marked delayed, and turns unknown once it is older
        # than 3 check intervals (1 s here): never operational.
        summary = await eventually(all_unknown, timeout=15)
        assert set(component_statuses(summary).values()) == {"degraded_performance"}
        assert summary["status"]["description"] == "Status Unknown"
        page = await (await client.get("/")).text()
        assert "Live data is delayed" in page
        assert "Operational" not in page
        ready = await client.get("/-/ready")
        assert ready.status == 503
        assert "Prometheus" in await ready.text()
        # Writes go on: service ids are checked against the last catalog Prometheus gave.
        incident = {"title": "t", "impact": "none", "status": "investigating", "body": "b"}
        incident["services"] = ["linker"]
        posted = await client.post("/admin/api/incidents", json=incident, headers=auth)
        assert posted.status == 201
    finally:
        await asyncio.to_thread(stack.stop)


async def test_both_down_from_the_start(aiohttp_client, settings) -> None:
    nowhere = "http://127.0.0.1:9"
    client = await aiohttp_client(
        create_app(
            replace(
                settings,
                prometheus_url=nowhere,
                database_url="postgresql://statuspage@127.0.0.1:9/none",
            )
        )
    )
    for path in ("/", "/history", "/api/v2/summary.json", "/api/v2/status.json", "/history.atom"):
        assert (await client.get(path)).status == 200, path
    status = await (await client.get("/api/v2/status.json")).json()
    assert status["status"]["description"] == "Status Unknown"
    assert "No service status is available" in await (await client.get("/")).text()
    assert (await client.get("/-/ready")).status == 503
