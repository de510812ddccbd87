"""A maintenance window and its Alertmanager silence change together or not at all: against
the real Alertmanager, with real PostgreSQL failures (a trigger that refuses the write) and a
real unreachable Alertmanager."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestClient

from statuspage.app import create_app
from tests.statuspage.helpers import active_window, eventually, silences

REFUSE_UPDATES = """
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$;
CREATE TRIGGER refuse BEFORE UPDATE ON maintenance_windows
  FOR EACH ROW EXECUTE FUNCTION refuse();
"""


async def test_clearing_the_services_expires_the_silence(client: TestClient, auth, settings):
    window = await active_window(client, auth, "Cleared")
    first = window["silence_id"]
    url = f"/admin/api/maintenances/{window['id']}"
    moved = await client.patch(url, json={"services": ["mcp", "linker"]}, headers=auth)
    second = (await moved.json())["silence_id"]
    assert second not in (None, first)
    assert await silences(client, settings.alertmanager_url, "Cleared") == {
        first: "expired",
        second: "active",
    }
    cleared = await client.patch(url, json={"services": []}, headers=auth)
    assert (await cleared.json())["silence_id"] is None
    states = await silences(client, settings.alertmanager_url, "Cleared")
    assert set(states.values()) == {"expired"}


async def test_a_failed_database_write_undoes_the_new_silence(client: TestClient, auth, settings):
    window = await active_window(client, auth, "Refused")
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(REFUSE_UPDATES)
    finally:
        await connection.close()
    url = f"/admin/api/maintenances/{window['id']}"
    refused = await client.patch(url, json={"services": ["mcp"]}, headers=auth)
    assert refused.status == 500
    assert "error id" in (await refused.json())["error"]
    unchanged = await (await client.get(url, headers=auth)).json()
    assert (unchanged["services"], unchanged["silence_id"]) == (["linker"], window["silence_id"])
    states = await silences(client, settings.alertmanager_url, "Refused")
    assert states.pop(window["silence_id"]) == "active"  # the window's silence is untouched
    assert list(states.values()) == ["expired"]  # the one the failed edit made is undone


async def test_without_alertmanager_nothing_changes(
    client: TestClient, auth, settings, aiohttp_client
):
    window = await active_window(client, auth, "Unreachable")
    url = f"/admin/api/maintenances/{window['id']}"
    cut_off = await aiohttp_client(
        create_app(replace(settings, alertmanager_url="http://127.0.0.1:9"))
    )
    for method, body in (("PATCH", {"ends_at": "2031-01-01T00:00:00Z"}), ("DELETE", None)):
        answer = await cut_off.request(method, url, json=body, headers=auth)
        assert answer.status == 503, method
        assert "nothing was changed" in (await answer.json())["error"]
    assert await (await client.get(url, headers=auth)).json() == window
    assert await silences(client, settings.alertmanager_url, "Unreachable") == {
        window["silence_id"]: "active"
    }
    assert (await client.delete(url, headers=auth)).status == 204

    async def expired() -> bool:
        states = await silences(client, settings.alertmanager_url, "Unreachable")
        return states == {window["silence_id"]: "expired"}

    await eventually(expired, timeout=5)


async def test_a_window_recorded_after_it_ended_needs_no_silence(client: TestClient, auth):
    now = datetime.now(UTC)
    window = {
        "title": "Last night",
        "services": ["linker"],
        "starts_at": (now - timedelta(hours=8)).isoformat(),
        "ends_at": (now - timedelta(hours=7)).isoformat(),
    }
    created = await client.post("/admin/api/maintenances", json=window, headers=auth)
    assert created.status == 201, await created.text()
    assert (await created.json())["silence_id"] is None
