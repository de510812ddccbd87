"""A down Prometheus or PostgreSQL degrades the page; it never fails it."""

import asyncio
import logging
import re
import shutil
from dataclasses import replace

import asyncpg
from aiohttp.test_utils import TestClient
from stack import Stack, Timings

from statuspage.app import create_app
from statuspage.store import Store
from tests.statuspage.conftest import services_file, throwaway_cluster
from tests.statuspage.helpers import (
    active_window,
    assert_window_unchanged,
    component_statuses,
    eventually,
    window_edits_refused,
)


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
        window = await active_window(client, auth, "Stopped database")

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
        await window_edits_refused(client, auth, window)
        ready = await client.get("/-/ready")
        assert ready.status == 503
        assert "PostgreSQL" in await ready.text()

        await asyncio.to_thread(cluster.start)
        again = await client.post("/admin/api/incidents", json=incident, headers=auth)
        assert again.status == 201
        await assert_window_unchanged(client, auth, settings.alertmanager_url, window)
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


async def test_a_failed_migration_degrades_the_page_instead_of_failing_requests(
    aiohttp_client, settings, database_url, auth, caplog
) -> None:
    connection = await asyncpg.connect(database_url)
    try:  # something in the way of migration 001
        await connection.execute("CREATE TABLE incidents (id int)")
    finally:
        await connection.close()
    with caplog.at_level(logging.ERROR, logger="statuspage"):
        client = await aiohttp_client(create_app(settings))
        for path in ("/", "/history", "/incidents/1", "/history.atom", "/api/v2/summary.json"):
            assert (await client.get(path)).status == 200, path
        assert "temporarily unavailable" in await (await client.get("/")).text()
        refused = await client.post(
            "/admin/api/incidents",
            json={"title": "t", "impact": "none", "status": "investigating", "body": "b"},
            headers=auth,
        )
        assert refused.status == 503
        ready = await client.get("/-/ready")
        assert ready.status == 503
        assert 'schema migration failed: DuplicateTableError: relation "incidents"' in (
            await ready.text()
        )

        def logged() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "schema cannot be used" in r.getMessage()]

        async def startup_error_logged() -> bool:
            return bool(logged())

        await eventually(startup_error_logged, timeout=10)
    assert "DuplicateTableError" in str(logged()[0].fields["error"])


async def test_an_unexpected_failure_of_the_rollup_task_is_logged_counted_and_restarted(
    aiohttp_client, settings, database_url, caplog
) -> None:
    store = Store(database_url)
    await store.connect()  # schema in place, then the rollups' table taken away
    await store.close()
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("ALTER TABLE daily_uptime RENAME TO daily_uptime_moved")
    finally:
        await connection.close()
    with caplog.at_level(logging.ERROR, logger="statuspage"):
        client = await aiohttp_client(create_app(settings))

        async def restarts() -> float:
            metrics = await (await client.get("/metrics")).text()
            match = re.search(
                r'statuspage_background_task_restarts_total\{task="database"\} (\S+)', metrics
            )
            return float(match[1]) if match else 0.0

        await eventually(restarts, timeout=10)
    (failure, *_) = [r for r in caplog.records if r.getMessage() == "background task failed"]
    assert failure.fields["task"] == "database"
    assert isinstance(failure.exc_info[1], asyncpg.UndefinedTableError)
