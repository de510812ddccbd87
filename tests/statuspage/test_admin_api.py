"""The admin API: authentication, validation (nothing written on error), incidents, and
maintenance windows that silence a real Alertmanager."""

import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from statuspage.app import create_app
from statuspage.store import Store
from tests.statuspage.conftest import TOKEN
from tests.statuspage.helpers import component_statuses, eventually

VALID = {"title": "Linker slow", "impact": "minor", "status": "investigating", "body": "Looking."}


async def incident_count(settings) -> int:
    store = Store(settings.database_url)
    try:
        return len(await store.list_incidents(limit=1000))
    finally:
        await store.close()


async def test_no_token_is_401_and_a_wrong_token_is_403(client: TestClient) -> None:
    missing = await client.post("/admin/api/incidents", json=VALID)
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.post(
        "/admin/api/incidents", json=VALID, headers={"Authorization": "Bearer not-the-token"}
    )
    assert wrong.status == 403
    assert (
        await client.get("/admin/api/incidents", headers={"Authorization": TOKEN})
    ).status == 401


async def test_a_token_is_compared_with_hmac_compare_digest_against_every_token(
    aiohttp_client, settings, monkeypatch
) -> None:
    tokens = ("first-token-0123456789", TOKEN, "third-token-0123456789")
    client = await aiohttp_client(create_app(replace(settings, admin_tokens=tokens)))
    compared = []

    def compare_digest(a, b):
        compared.append(b)
        return real(a, b)

    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    for token, status in ((TOKEN, 200), ("wrong-token-0123456789", 403)):
        compared.clear()
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/admin/api/incidents", headers=headers)).status == status
        assert compared == [t.encode() for t in tokens]  # no early exit on the match


async def test_without_tokens_the_admin_api_and_the_hook_answer_503_and_write_nothing(
    aiohttp_client, settings
) -> None:
    client = await aiohttp_client(create_app(replace(settings, admin_tokens=())))
    any_token = {"Authorization": f"Bearer {TOKEN}"}
    window = {"title": "Upgrade", "starts_at": "2030-01-01T00:00:00Z",
              "ends_at": "2030-01-01T01:00:00Z"}  # fmt: skip
    hook = {"version": "4", "status": "firing", "alerts": []}
    for method, path, body in (
        ("POST", "/admin/api/incidents", VALID),
        ("GET", "/admin/api/incidents", None),
        ("POST", "/admin/api/maintenances", window),
        ("DELETE", "/admin/api/incidents/1", None),
        ("POST", "/hooks/alertmanager", hook),
    ):
        for headers in (any_token, {}):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status == 503, (method, path)
            assert "the admin API is disabled" in (await response.json())["error"]
    assert await incident_count(settings) == 0
    store = Store(settings.database_url)
    try:
        assert await store.list_maintenances() == []
    finally:
        await store.close()
    assert (await client.get("/")).status == 200  # everything public still works


async def test_incident_crud(client: TestClient, auth) -> None:
    created = await client.post(
        "/admin/api/incidents", json={**VALID, "services": ["linker"]}, headers=auth
    )
    assert created.status == 201
    incident = await created.json()
    assert (incident["title"], incident["impact"], incident["services"]) == (
        "Linker slow",
        "minor",
        ["linker"],
    )
    url = f"/admin/api/incidents/{incident['id']}"
    update = await client.post(
        f"{url}/updates", json={"status": "monitoring", "body": "Fix deployed"}, headers=auth
    )
    assert update.status == 201
    assert (await update.json())["status"] == "monitoring"
    edited = await client.patch(url, json={"impact": "major"}, headers=auth)
    assert (await edited.json())["impact"] == "major"
    fetched = await (await client.get(url, headers=auth)).json()
    assert [u["status"] for u in fetched["updates"]] == ["monitoring", "investigating"]
    listed = await (await client.get("/admin/api/incidents", headers=auth)).json()
    assert [i["id"] for i in listed] == [incident["id"]]
    summary = await (await client.get("/api/v2/summary.json")).json()
    (public,) = summary["incidents"]
    assert (public["name"], public["impact"], public["status"]) == (
        "Linker slow",
        "major",
        "monitoring",
    )
    assert component_statuses(summary)["linker"] == "partial_outage"
    assert (await client.delete(url, headers=auth)).status == 204
    assert (await client.get(url, headers=auth)).status == 404
    assert (await client.delete(url, headers=auth)).status == 404


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({**VALID, "impact": "catastrophic"}, "impact", "must be one of none, minor, major"),
        ({**VALID, "status": "done"}, "status", "must be one of investigating"),
        ({**VALID, "title": 42}, "title", "must be a string"),
        ({**VALID, "title": "  "}, "title", "must not be empty"),
        ({**VALID, "title": "x" * 201}, "title", "at most 200 characters"),
        ({**VALID, "body": None}, "body", "must not be null"),
        ({k: v for k, v in VALID.items() if k != "title"}, "title", "is required"),
        ({**VALID, "services": ["linker", "no-such-service"]}, "services", "no-such-service"),
        ({**VALID, "services": "linker"}, "services", "must be a list of service ids"),
        ({**VALID, "severity": "high"}, "severity", "unknown field"),
        ([VALID], "(body)", "must be a JSON object"),
    ],
)
async def test_invalid_incidents_are_400_with_the_field_and_write_nothing(
    client: TestClient, auth, settings, body, field, reason
) -> None:
    response = await client.post("/admin/api/incidents", json=body, headers=auth)
    answer = await response.json()
    assert response.status == 400
    assert any(e["field"] == field and reason in e["reason"] for e in answer["errors"]), answer
    assert await incident_count(settings) == 0


async def test_every_error_is_reported_at_once(client: TestClient, auth) -> None:
    response = await client.post("/admin/api/incidents", json={"impact": "x"}, headers=auth)
    fields = {e["field"] for e in (await response.json())["errors"]}
    assert fields == {"title", "impact", "status", "body"}


async def test_malformed_and_oversized_bodies(client: TestClient, auth, settings) -> None:
    not_json = await client.post("/admin/api/incidents", data=b"{nope", headers=auth)
    assert not_json.status == 400
    assert (await not_json.json())["errors"][0]["reason"] == "is not valid JSON"
    huge = {**VALID, "body": "x" * (settings.max_body_bytes + 1)}
    too_large = await client.post("/admin/api/incidents", data=json.dumps(huge), headers=auth)
    assert too_large.status == 413
    assert "too large" in (await too_large.json())["error"]
    assert await incident_count(settings) == 0


async def test_incident_text_is_shown_escaped(client: TestClient, auth) -> None:
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    created = await client.post(
        "/admin/api/incidents", json={**VALID, "title": payload, "body": payload}, headers=auth
    )
    incident = await created.json()
    assert incident["title"] == payload  # stored exactly as typed
    for path in ("/", f"/incidents/{incident['id']}", "/history"):
        page = await (await client.get(path)).text()
        assert "<script>" not in page
        assert "<img" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


async def test_update_and_edit_validation(client: TestClient, auth) -> None:
    incident = await (await client.post("/admin/api/incidents", json=VALID, headers=auth)).json()
    url = f"/admin/api/incidents/{incident['id']}"
    bad_update = await client.post(f"{url}/updates", json={"status": "resolved"}, headers=auth)
    assert bad_update.status == 400
    empty_edit = await client.patch(url, json={}, headers=auth)
    assert empty_edit.status == 400
    missing = await client.post(
        "/admin/api/incidents/999999/updates",
        json={"status": "resolved", "body": "x"},
        headers=auth,
    )
    assert missing.status == 404
    fetched = await (await client.get(url, headers=auth)).json()
    assert len(fetched["updates"]) == 1


async def alertmanager_silences(client: TestClient, alertmanager: str) -> list[dict]:
    response = await client.session.get(f"{alertmanager}/api/v2/silences")
    return await response.json()


async def test_maintenance_window_silences_alertmanager_and_shows_maintenance(
    client: TestClient, auth, settings
) -> None:
    now = datetime.now(UTC)
    window = {
        "title": "Linker upgrade",
        "body": "New workers",
        "services": ["linker"],
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }
    created = await client.post("/admin/api/maintenances", json=window, headers=auth)
    assert created.status == 201, await created.text()
    maintenance = await created.json()
    silences = await alertmanager_silences(client, settings.alertmanager_url)
    (silence,) = [s for s in silences if s["id"] == maintenance["silence_id"]]
    assert silence["status"]["state"] == "active"
    assert silence["matchers"] == [
        {"name": "service", "value": "linker", "isRegex": True, "isEqual": True}
    ]
    summary = await (await client.get("/api/v2/summary.json")).json()
    assert component_statuses(summary)["linker"] == "under_maintenance"
    (active,) = summary["scheduled_maintenances"]
    assert (active["name"], active["status"]) == ("Linker upgrade", "in_progress")
    assert "Under Maintenance" in await (await client.get("/")).text()

    url = f"/admin/api/maintenances/{maintenance['id']}"
    assert (await client.delete(url, headers=auth)).status == 204

    async def expired() -> bool:
        silences = await alertmanager_silences(client, settings.alertmanager_url)
        states = [s["status"]["state"] for s in silences if s["id"] == maintenance["silence_id"]]
        return states == ["expired"]

    await eventually(expired, timeout=5)
    summary = await (await client.get("/api/v2/summary.json")).json()
    assert component_statuses(summary)["linker"] != "under_maintenance"


async def test_upcoming_maintenance_and_edits(client: TestClient, auth, settings) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    window = {
        "title": "Export server move",
        "services": ["export-server"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
    }
    created = await (await client.post("/admin/api/maintenances", json=window, headers=auth)).json()
    url = f"/admin/api/maintenances/{created['id']}"
    upcoming = await (await client.get("/api/v2/scheduled-maintenances/upcoming.json")).json()
    assert [m["name"] for m in upcoming["scheduled_maintenances"]] == ["Export server move"]
    backwards = await client.patch(
        url, json={"ends_at": (start - timedelta(hours=1)).isoformat()}, headers=auth
    )
    assert backwards.status == 400
    assert (await backwards.json())["errors"][0]["field"] == "ends_at"
    naive = await client.patch(url, json={"starts_at": "2030-01-01T00:00:00"}, headers=auth)
    assert naive.status == 400
    moved = await client.patch(
        url, json={"ends_at": (start + timedelta(hours=3)).isoformat()}, headers=auth
    )
    edited = await moved.json()
    assert edited["ends_at"].startswith((start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    assert edited["silence_id"] is not None
    silences = await alertmanager_silences(client, settings.alertmanager_url)
    pending = [s for s in silences if s["id"] == edited["silence_id"]]
    assert [s["status"]["state"] for s in pending] == ["pending"]
    assert (await client.delete(url, headers=auth)).status == 204
