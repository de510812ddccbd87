"""Hostile input is normal input: every reproducer of a past 500, leak or bad write, against the
real app on a real PostgreSQL, Prometheus and Alertmanager. Each answer is a clear 4xx naming
the problem, carries the security headers, and writes nothing."""

import asyncio
import json
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from statuspage.app import create_app
from statuspage.status import Impact
from statuspage.store import Store
from tests.statuspage.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
INCIDENT = {"title": "t", "impact": "minor", "status": "investigating", "body": "b"}
WINDOW = {"title": "w", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z"}
PAST_BIGINT = "9223372036854775808"
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options")


def alert(**changes: object) -> dict:
    """A ServiceDown webhook payload with one alert, `changes` merged into the alert."""
    one = {
        "status": "firing",
        "labels": {"alertname": "ServiceDown", "service": "linker"},
        "annotations": {"summary": "Linker API is down"},
        "startsAt": "2026-11-23T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "4a3b2c1d",
    }
    return {"version": "4", "status": "firing", "alerts": [one | changes]}


def raw(value: object) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


# (method, path, body, status, text the answer must contain)
CASES = [
    ("GET", f"/incidents/{PAST_BIGINT}", None, 404, "Incident not found"),
    ("GET", "/incidents/0", None, 404, "Incident not found"),
    ("GET", "/history?page=461168601842738792", None, 400, "page: must be a whole number"),
    ("GET", "/history?page=-1", None, 400, "page: must be a whole number"),
    ("GET", "/history?page=%C2%B2", None, 400, "page: must be a whole number"),
    ("GET", "/history?page=2", None, 404, "no such page"),
    ("GET", f"/admin/api/incidents/{PAST_BIGINT}", None, 404, "no such incident"),
    ("PATCH", f"/admin/api/incidents/{PAST_BIGINT}", {"impact": "major"}, 404, "no such incident"),
    ("DELETE", f"/admin/api/incidents/{PAST_BIGINT}", None, 404, "no such incident"),
    ("POST", f"/admin/api/incidents/{PAST_BIGINT}/updates", {"status": "resolved", "body": "b"},
     404, "no such incident"),
    ("GET", f"/admin/api/maintenances/{PAST_BIGINT}", None, 404, "no such maintenance window"),
    ("PATCH", f"/admin/api/maintenances/{PAST_BIGINT}", {"title": "x"}, 404, "no such maint"),
    ("DELETE", f"/admin/api/maintenances/{PAST_BIGINT}", None, 404, "no such maintenance window"),
    ("GET", "/admin/api/nowhere", None, 404, "not found"),
    ("PUT", "/admin/api/incidents", INCIDENT, 405, "method not allowed"),
    ("POST", "/admin/api/incidents", b"[" * 30_000, 400, "nested at most 32 deep"),
    ("POST", "/hooks/alertmanager", b'{"alerts": ' + b"[" * 30_000, 400, "nested at most 32"),
    ("POST", "/admin/api/incidents", b"\xff\xfe{}", 400, "is not valid JSON"),
    ("POST", "/admin/api/incidents", {**INCIDENT, "title": "a\u0000b"}, 400, "U+0000"),
    ("POST", "/admin/api/incidents", raw({**INCIDENT}).replace(b'"t"', b'"\\ud800"'), 400,
     "U+D800"),
    ("POST", "/admin/api/incidents", {**INCIDENT, "title": "\u0001"}, 400, "U+0001"),
    ("POST", "/admin/api/incidents", {**INCIDENT, "title": "red \u001b[31m"}, 400, "U+001B"),
    ("POST", "/admin/api/incidents", {**INCIDENT, "title": "x\ufffe"}, 400, "U+FFFE"),
    ("POST", "/admin/api/incidents", {**INCIDENT, "body": "\u0085"}, 400, "U+0085"),
    ("POST", "/admin/api/incidents", {**INCIDENT, "services": ["\u0000"]}, 400,
     "unknown service(s): \\\\u0000"),
    ("POST", "/admin/api/incidents", {**INCIDENT, "\u0000": 1}, 400, "unknown field"),
    ("POST", "/admin/api/maintenances", {**WINDOW, "starts_at": "0001-01-01T00:00:00+01:00"},
     400, "must lie between 2000-01-01 and 2100-01-01"),
    ("POST", "/admin/api/maintenances", {**WINDOW, "ends_at": "9999-12-31T23:59:59-01:00"},
     400, "must lie between 2000-01-01 and 2100-01-01"),
    ("POST", "/hooks/alertmanager", alert(annotations="down"), 400,
     "alerts[0].annotations: must be an object"),
    ("POST", "/hooks/alertmanager", alert(annotations={"summary": 7}), 400,
     "alerts[0].annotations: must map names to strings"),
    ("POST", "/hooks/alertmanager", alert(annotations={"summary": "  "}), 400,
     "alerts[0].annotations.summary: must be a non-empty string"),
    ("POST", "/hooks/alertmanager", alert(annotations={"summary": "x" * 60_000}), 400,
     "alerts[0].annotations.summary: must be at most 200 characters"),
    ("POST", "/hooks/alertmanager", alert(annotations={"summary": "a\u0001"}), 400, "U+0001"),
    ("POST", "/hooks/alertmanager", alert(endsAt=1700000000), 400,
     "alerts[0].endsAt: must be a string"),
    ("POST", "/hooks/alertmanager", alert(startsAt="\u0000"), 400, "alerts[0].startsAt"),
    ("POST", "/hooks/alertmanager", alert(fingerprint="f" * 101), 400, "alerts[0].fingerprint"),
    ("POST", "/hooks/alertmanager", alert(labels={"alertname": "ServiceDown", "service": 5}), 400,
     "alerts[0].labels: must map names to strings"),
    ("POST", "/hooks/alertmanager", alert(labels={"alertname": "ServiceDown"}), 400,
     "alerts[0].labels.service: is required"),
    ("POST", "/hooks/alertmanager", alert(labels={"alertname": "Other"}, generatorURL={}), 400,
     "alerts[0].generatorURL: must be a string"),
    ("POST", "/hooks/alertmanager", alert(labels={"alertname": "Other"}, fingerprint="f" * 101),
     400, "alerts[0].fingerprint: must be at most 100 characters"),
    ("POST", "/hooks/alertmanager", alert(labels={"alertname": "ServiceDown", "service": "nope"}),
     200, '"ignored": 1'),
    ("POST", "/hooks/alertmanager", alert(startsAt="0001-01-01T00:00:00+01:00", status="resolved",
     endsAt="9999-12-31T23:59:59-01:00"), 200, '"resolved": 0'),
]  # fmt: skip


def message(answer: str) -> str:
    """JSON error answers name fields as `field: reason`; flatten them for matching."""
    try:
        body = json.loads(answer)
    except ValueError:
        return answer
    if isinstance(body, dict) and "errors" in body:
        return answer + " " + "; ".join(f"{e['field']}: {e['reason']}" for e in body["errors"])
    return answer


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    CASES,
    ids=[f"{c[0]} {c[1][:40]} {c[4][:30]}" for c in CASES],
)
async def test_hostile_request_gets_a_clear_answer_and_writes_nothing(
    client: TestClient, settings, method, path, body, status, expected
) -> None:
    data = None if body is None else raw(body)
    response = await client.request(method, path, data=data, headers=AUTH)
    answer = await response.text()
    assert (response.status, expected in message(answer)) == (status, True), answer[:500]
    assert all(name in response.headers for name in SECURITY_HEADERS)
    assert "Traceback" not in answer
    store = Store(settings.database_url)
    try:
        assert await store.list_incidents() == []
        assert await store.list_maintenances() == []
    finally:
        await store.close()


async def raw_request(client: TestClient, head: bytes) -> tuple[int, bytes]:
    """Send bytes no HTTP client library would (e.g. a header that is not UTF-8)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + b"Host: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest


@pytest.mark.parametrize(
    "path", ["/admin/api/incidents", "/admin/api/maintenances/1", "/hooks/alertmanager"]
)
async def test_an_authorization_header_that_is_not_utf8_is_refused(
    client: TestClient, path: str
) -> None:
    method = b"POST" if path.startswith("/hooks") else b"GET"
    status, rest = await raw_request(
        client, method + b" " + path.encode() + b" HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n"
    )
    assert status == 403
    assert b"invalid token" in rest
    assert b"Content-Security-Policy" in rest


async def test_an_unexpected_error_is_a_500_with_headers_and_a_logged_error_id(
    aiohttp_client, settings, caplog
) -> None:
    app = create_app(settings)

    async def broken(request: web.Request) -> web.Response:
        raise ZeroDivisionError("a bug")

    app.router.add_get("/api/v2/broken.json", broken)
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="statuspage"):
        api = await client.get("/api/v2/broken.json")
        page = await client.get("/broken")
    body = await api.json()
    assert api.status == page.status == 500
    assert body["error_id"] in body["error"]
    page_id = re.search(r"error id ([0-9a-f]{16})", await page.text())[1]
    for response in (api, page):
        assert all(name in response.headers for name in SECURITY_HEADERS)
        assert response.headers["Cache-Control"] == "no-store"
        assert "ZeroDivisionError" not in await response.text()
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert [r.fields["error_id"] for r in logged] == [body["error_id"], page_id]
    assert all(isinstance(r.exc_info[1], ZeroDivisionError) for r in logged)
    metrics = await (await client.get("/metrics")).text()
    assert "statuspage_unhandled_errors_total 2.0" in metrics


async def test_the_feed_stays_well_formed_xml_with_text_stored_before_validation(
    client: TestClient, settings
) -> None:
    store = Store(settings.database_url)
    try:  # written straight into PostgreSQL, as an older version could have
        await store.create_incident("Bell \u0001 rang", Impact.MINOR, "investigating", "\ufffe", [])
    finally:
        await store.close()
    feed = await (await client.get("/history.atom")).text()
    entry = ET.fromstring(feed).find("{http://www.w3.org/2005/Atom}entry")
    assert entry.find("{http://www.w3.org/2005/Atom}title").text == "Bell \ufffd rang"


@pytest.mark.parametrize(
    ("public_url", "hsts"),
    [("https://status.example.org", "max-age=31536000"), ("http://127.0.0.1:8080", None)],
)
async def test_server_header_names_no_versions_and_https_gets_hsts(
    aiohttp_client, settings, public_url: str, hsts: str | None
) -> None:
    client = await aiohttp_client(create_app(replace(settings, public_url=public_url)))
    for path in ("/", "/api/v2/status.json", "/static/nope", "/no-such-page", "/admin/api/x"):
        response = await client.get(path)
        assert response.headers["Server"] == "sefaria-status", path
        assert response.headers.get("Strict-Transport-Security") == hsts, path
