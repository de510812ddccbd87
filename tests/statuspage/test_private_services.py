"""A private service (`public: false`, here `internal-admin`) never appears publicly: not when
Alertmanager reports it down, not when an operator names it in an incident, on no surface."""

from aiohttp.test_utils import TestClient

from tests.statuspage.conftest import TOKEN

PRIVATE = ("internal-admin", "Internal admin")
PUBLIC_SURFACES = (
    "/",
    "/history",
    "/history.atom",
    "/api/v2/summary.json",
    "/api/v2/status.json",
    "/api/v2/components.json",
    "/api/v2/incidents.json",
    "/api/v2/incidents/unresolved.json",
    "/api/v2/scheduled-maintenances.json",
    "/api/v2/scheduled-maintenances/upcoming.json",
    "/api/v2/scheduled-maintenances/active.json",
)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def service_down(service: str) -> dict:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "ServiceDown", "service": service},
                "annotations": {"summary": f"{PRIVATE[1]} is down"},
                "startsAt": "2026-11-23T10:00:00Z",
                "fingerprint": f"fp-{service}",
            }
        ],
    }


async def leaks(client: TestClient, paths: tuple[str, ...]) -> dict[str, list[str]]:
    """Path → the private names it shows (only paths that show any)."""
    found = {}
    for path in paths:
        response = await client.get(path)
        text = await response.text()
        assert response.status == 200, path
        if shown := [name for name in PRIVATE if name in text]:
            found[path] = shown
    return found


async def test_servicedown_for_a_private_service_opens_nothing_public(client: TestClient) -> None:
    answer = await client.post("/hooks/alertmanager", json=service_down(PRIVATE[0]), headers=AUTH)
    assert await answer.json() == {"opened": 0, "resolved": 0, "ignored": 1}
    listed = await (await client.get("/admin/api/incidents", headers=AUTH)).json()
    assert listed == []  # nothing stored that a later page could show
    assert await leaks(client, PUBLIC_SURFACES) == {}
    badge = await client.get(f"/badge/{PRIVATE[0]}.svg")
    assert badge.status == 404
    assert PRIVATE[1] not in await badge.text()


async def test_an_incident_naming_a_private_service_shows_only_public_ones(
    client: TestClient,
) -> None:
    """An operator may name a private service among others; the public sees the others."""
    created = await client.post(
        "/admin/api/incidents",
        json={"title": "Login trouble", "impact": "major", "status": "identified",
              "body": "Sign-in fails.", "services": [PRIVATE[0], "linker"]},
        headers=AUTH,
    )  # fmt: skip
    incident = await created.json()
    assert incident["services"] == [PRIVATE[0], "linker"]  # the admin API shows everything
    page = f"/incidents/{incident['id']}"
    assert await leaks(client, (*PUBLIC_SURFACES, page)) == {}
    summary = await (await client.get("/api/v2/summary.json")).json()
    (public,) = summary["incidents"]
    assert [c["id"] for c in public["components"]] == ["linker"]
    assert "Affected: Linker API" in await (await client.get(page)).text()
