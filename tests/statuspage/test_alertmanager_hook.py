"""`/hooks/alertmanager`: automatic incidents, safe under Alertmanager's retries."""

import hashlib
from dataclasses import replace

from aiohttp.test_utils import TestClient

from statuspage.app import create_app
from tests.statuspage.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def alert(status: str, alertname: str = "ServiceDown", ends: str | None = None, **labels) -> dict:
    labels = {"alertname": alertname, "service": "linker", "severity": "critical", **labels}
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "Linker API is down"},
        "startsAt": "2026-11-23T10:00:00.123456789Z",
        "endsAt": ends or "0001-01-01T00:00:00Z",
        # Alertmanager's fingerprint is a hash of the labels: copies differ in it.
        "fingerprint": hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16],
    }


def payload(status: str, alertname: str = "ServiceDown", ends: str | None = None) -> dict:
    alerts = [alert(status, alertname, ends)]
    return {"version": "4", "status": status, "receiver": "statuspage", "alerts": alerts}


async def post(client: TestClient, body: object, token: str = TOKEN):
    headers = {"Authorization": f"Bearer {token}"}
    return await client.post("/hooks/alertmanager", json=body, headers=headers)


async def test_firing_opens_one_incident_and_resolution_closes_it_once(client: TestClient) -> None:
    assert await (await post(client, payload("firing"))).json() == {
        "opened": 1,
        "resolved": 0,
        "ignored": 0,
    }
    assert await (await post(client, payload("firing"))).json() == {
        "opened": 0,
        "resolved": 0,
        "ignored": 0,
    }
    summary = await (await client.get("/api/v2/summary.json")).json()
    (incident,) = summary["incidents"]
    assert (incident["name"], incident["impact"], incident["status"]) == (
        "Linker API is down",
        "major",
        "investigating",
    )
    resolved = payload("resolved", ends="2026-11-23T10:12:30Z")
    assert await (await post(client, resolved)).json() == {"opened": 0, "resolved": 1, "ignored": 0}
    assert await (await post(client, resolved)).json() == {"opened": 0, "resolved": 0, "ignored": 0}
    incidents = await (await client.get("/api/v2/incidents.json")).json()
    (closed,) = incidents["incidents"]
    assert closed["status"] == "resolved"
    assert [u["status"] for u in closed["incident_updates"]] == ["resolved", "investigating"]
    assert "about 12 min" in closed["incident_updates"][0]["body"]


async def test_a_new_outage_of_the_same_service_is_a_new_incident(client: TestClient) -> None:
    await post(client, payload("firing"))
    await post(client, payload("resolved", ends="2026-11-23T10:05:00Z"))
    again = payload("firing")
    again["alerts"][0]["startsAt"] = "2026-11-23T11:00:00Z"
    assert (await (await post(client, again)).json())["opened"] == 1


async def test_copies_of_one_outage_from_several_sources_are_one_incident(
    client: TestClient,
) -> None:
    """Copies that differ by exporter, replica or any other label, in one post or several."""
    copies = [alert("firing", instance="eu:9115"), alert("firing", instance="us:9115")]
    both = {"version": "4", "status": "firing", "alerts": copies}
    assert await (await post(client, both)).json() == {"opened": 1, "resolved": 0, "ignored": 0}
    another = {"version": "4", "status": "firing", "alerts": [alert("firing", replica="b")]}
    assert await (await post(client, another)).json() == {"opened": 0, "resolved": 0, "ignored": 0}
    ends = "2026-11-23T10:12:30Z"
    resolved = [alert("resolved", ends=ends, instance=i) for i in ("eu:9115", "us:9115")]
    answer = await post(client, {"version": "4", "status": "resolved", "alerts": resolved})
    assert await answer.json() == {"opened": 0, "resolved": 1, "ignored": 0}
    incidents = (await (await client.get("/api/v2/incidents.json")).json())["incidents"]
    assert [incident["status"] for incident in incidents] == ["resolved"]


async def test_a_late_copy_of_the_firing_notification_opens_nothing(client: TestClient) -> None:
    await post(client, payload("firing"))
    await post(client, payload("resolved", ends="2026-11-23T10:05:00Z"))
    late = payload("firing")
    late["alerts"][0]["labels"]["replica"] = "b"
    assert await (await post(client, late)).json() == {"opened": 0, "resolved": 0, "ignored": 0}
    incidents = (await (await client.get("/api/v2/incidents.json")).json())["incidents"]
    assert len(incidents) == 1


async def test_other_alerts_are_ignored(client: TestClient) -> None:
    answer = await (await post(client, payload("firing", alertname="ServiceDegraded"))).json()
    assert answer == {"opened": 0, "resolved": 0, "ignored": 0}


async def test_malformed_payloads_are_400_and_tokens_are_required(client: TestClient) -> None:
    assert (await post(client, {"alerts": "nope"})).status == 400
    broken = payload("firing")
    del broken["alerts"][0]["fingerprint"]
    response = await post(client, broken)
    assert response.status == 400
    assert (await response.json())["errors"][0]["field"] == "alerts[0].fingerprint"
    assert (await client.post("/hooks/alertmanager", json=payload("firing"))).status == 401
    assert (await post(client, payload("firing"), token="x" * 20)).status == 403
    summary = await (await client.get("/api/v2/summary.json")).json()
    assert summary["incidents"] == []


async def test_without_any_answer_from_prometheus_alertmanager_is_asked_to_retry(
    aiohttp_client, settings
) -> None:
    """Private and unknown services cannot be told apart yet: nothing is opened, and the 503
    makes Alertmanager send the alerts again."""
    client = await aiohttp_client(
        create_app(replace(settings, prometheus_url="http://127.0.0.1:9"))
    )
    response = await post(client, payload("firing"))
    assert response.status == 503
    assert "Prometheus is unavailable" in (await response.json())["error"]
    assert (await (await client.get("/admin/api/incidents", headers=AUTH)).json()) == []
