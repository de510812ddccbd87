"""The admin API (`/admin/api/…`): incidents and maintenance windows, JSON in and out.

Mounted as a sub-application whose middlewares authenticate every request and turn the
known failures into JSON errors: 400 with the fields at fault, 503 when a dependency is down.
"""

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from statuslog import event
from statuspage.alertmanager import AlertmanagerError
from statuspage.auth import FailedAttempts, Handler, require_token
from statuspage.keys import ALERTMANAGER, BOARD, SETTINGS, STORE
from statuspage.live import ServiceInfo
from statuspage.store import DatabaseUnavailable, Incident, Maintenance
from statuspage.validation import (
    FieldError,
    Invalid,
    incident_changes,
    incident_update,
    maintenance,
    new_incident,
    parse_json,
    record_id,
)

log = logging.getLogger("statuspage.admin")


def create_admin_app(failures: FailedAttempts) -> web.Application:
    app = web.Application(middlewares=[require_token(failures, "admin"), json_errors])
    add = app.router.add_route
    add("GET", "/incidents", list_incidents)
    add("POST", "/incidents", create_incident)
    add("GET", "/incidents/{id:\\d+}", get_incident)
    add("PATCH", "/incidents/{id:\\d+}", edit_incident)
    add("DELETE", "/incidents/{id:\\d+}", delete_incident)
    add("POST", "/incidents/{id:\\d+}/updates", post_update)
    add("GET", "/maintenances", list_maintenances)
    add("POST", "/maintenances", create_maintenance)
    add("GET", "/maintenances/{id:\\d+}", get_maintenance)
    add("PATCH", "/maintenances/{id:\\d+}", edit_maintenance)
    add("DELETE", "/maintenances/{id:\\d+}", delete_maintenance)
    return app


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Invalid as exc:
        return error(400, "invalid request", exc.errors)
    except DatabaseUnavailable as exc:
        event(log, logging.WARNING, "admin write refused", error=exc)
        return error(503, "the database is unavailable; nothing was changed, try again later")
    except AlertmanagerError as exc:
        event(log, logging.WARNING, "alertmanager call failed", error=exc)
        return error(503, f"Alertmanager is unavailable ({exc}); nothing was changed")
    except web.HTTPRequestEntityTooLarge:
        limit = request.config_dict[SETTINGS].max_body_bytes
        return error(413, f"request body too large (limit {limit} bytes)")
    except NoSuchRecord as exc:
        return error(404, f"no such {exc}")
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:  # JSON here too, not text
        answer = error(exc.status, exc.reason.lower())
        if "Allow" in exc.headers:
            answer.headers["Allow"] = exc.headers["Allow"]
        return answer


class NoSuchRecord(Exception):
    """The id names no record (or could not: past bigint); the message is the kind."""


def error(status: int, message: str, errors: Sequence[FieldError] = ()) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if errors:
        body["errors"] = [asdict(e) for e in errors]
    return web.json_response(body, status=status)


def to_json(record: Incident | Maintenance | list[Any], status: int = 200) -> web.Response:
    body = [asdict(item) for item in record] if isinstance(record, list) else asdict(record)
    return web.json_response(body, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_encode)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


async def read_json(request: web.Request) -> Any:
    return parse_json(await request.read())


async def known_services(request: web.Request, payload: Any) -> Collection[str]:
    """Service ids the payload may name; 503 if services are named but cannot be checked."""
    if not isinstance(payload, dict) or not payload.get("services"):
        return ()
    return await service_catalog(request)


async def service_catalog(request: web.Request) -> Mapping[str, ServiceInfo]:
    """Every service Prometheus knows, private ones too; 503 if it has never answered."""
    known = await request.config_dict[BOARD].known_services()
    if known is None:
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "cannot check service ids: Prometheus is unavailable"}),
            content_type="application/json",
        )
    return known


def _id(request: web.Request, kind: str) -> int:
    found = record_id(request.match_info["id"])
    if found is None:
        raise NoSuchRecord(kind)
    return found


def _not_found(kind: str) -> web.Response:
    return error(404, f"no such {kind}")


def _changed(request: web.Request) -> None:
    request.config_dict[BOARD].invalidate_records()


# Incidents ---------------------------------------------------------------------------------


async def list_incidents(request: web.Request) -> web.Response:
    found = await request.config_dict[STORE].list_incidents(limit=100)
    return to_json(found)


async def get_incident(request: web.Request) -> web.Response:
    found = await request.config_dict[STORE].get_incident(_id(request, "incident"))
    return _not_found("incident") if found is None else to_json(found)


async def create_incident(request: web.Request) -> web.Response:
    payload = await read_json(request)
    fields = new_incident(payload, await known_services(request, payload))
    created = await request.config_dict[STORE].create_incident(**fields)
    _changed(request)
    event(log, logging.INFO, "incident created", incident=created.id)
    return to_json(created, status=201)


async def edit_incident(request: web.Request) -> web.Response:
    payload = await read_json(request)
    changes = incident_changes(payload, await known_services(request, payload))
    edited = await request.config_dict[STORE].edit_incident(_id(request, "incident"), changes)
    _changed(request)
    return _not_found("incident") if edited is None else to_json(edited)


async def post_update(request: web.Request) -> web.Response:
    status, body = incident_update(await read_json(request))
    updated = await request.config_dict[STORE].add_update(_id(request, "incident"), status, body)
    _changed(request)
    return _not_found("incident") if updated is None else to_json(updated, status=201)


async def delete_incident(request: web.Request) -> web.Response:
    deleted = await request.config_dict[STORE].delete_incident(_id(request, "incident"))
    _changed(request)
    return web.Response(status=204) if deleted else _not_found("incident")


# Maintenance windows -----------------------------------------------------------------------


WINDOW = "maintenance window"


async def list_maintenances(request: web.Request) -> web.Response:
    found = await request.config_dict[STORE].list_maintenances()
    return to_json(found)


async def get_maintenance(request: web.Request) -> web.Response:
    found = await request.config_dict[STORE].get_maintenance(_id(request, WINDOW))
    return _not_found(WINDOW) if found is None else to_json(found)


async def create_maintenance(request: web.Request) -> web.Response:
    payload = await read_json(request)
    values = maintenance(payload, await known_services(request, payload))
    silence_id = await _silence(request, values)
    try:
        created = await request.config_dict[STORE].create_maintenance(
            **values, silence_id=silence_id
        )
    except BaseException:
        await _undo_silence(request, silence_id)
        raise
    _changed(request)
    return to_json(created, status=201)


async def edit_maintenance(request: web.Request) -> web.Response:
    """Under the row lock: a new silence for the new window first, then the row, then the old
    silence expired; any failure undoes the new silence and rolls the row back, so the window
    and its silence never drift apart (clearing the services expires the silence)."""
    payload = await read_json(request)
    known = await known_services(request, payload)
    store = request.config_dict[STORE]
    new_silence = None
    try:
        async with store.maintenance_for_update(_id(request, WINDOW)) as locked:
            current = locked.current
            if current is None:
                return _not_found(WINDOW)
            changes = maintenance(payload, known, asdict(current))
            if {"services", "starts_at", "ends_at"} & changes.keys():
                new_silence = await _silence(request, asdict(current) | changes)
                changes["silence_id"] = new_silence
            edited = await locked.update(changes)
            if "silence_id" in changes and _silenced(current):
                await _expire(request, current.silence_id)
    except BaseException:
        await _undo_silence(request, new_silence)
        raise
    _changed(request)
    return to_json(edited)


async def delete_maintenance(request: web.Request) -> web.Response:
    """The row goes only if its silence could be expired (both or neither)."""
    store = request.config_dict[STORE]
    async with store.maintenance_for_update(_id(request, WINDOW)) as locked:
        current = locked.current
        if current is None:
            return _not_found(WINDOW)
        await locked.delete()
        if _silenced(current):
            await _expire(request, current.silence_id)
    _changed(request)
    return web.Response(status=204)


def _silenced(window: Maintenance) -> bool:
    """Whether the window has a silence that is still in force (a finished one has expired)."""
    return window.silence_id is not None and window.state(datetime.now(UTC)) != "completed"


async def _silence(request: web.Request, window: dict[str, Any]) -> str | None:
    """Silence the window's services in Alertmanager, when one is configured (a window that has
    already ended needs none, and Alertmanager refuses one)."""
    alertmanager = request.config_dict.get(ALERTMANAGER)
    ended = window["ends_at"] <= datetime.now(UTC)
    if alertmanager is None or not window["services"] or ended:
        return None
    return await alertmanager.silence(
        window["services"],
        window["starts_at"],
        window["ends_at"],
        comment=f"Maintenance: {window['title']}",
    )


async def _undo_silence(request: web.Request, silence_id: str | None) -> None:
    """Compensation after a failed write: expire the silence it had created. A failure here is
    logged (the silence ends by itself when the window would have) and never hides the first."""
    try:
        await _expire(request, silence_id)
    except AlertmanagerError as exc:
        event(log, logging.ERROR, "could not undo a silence", silence=silence_id, error=exc)


async def _expire(request: web.Request, silence_id: str | None) -> None:
    alertmanager = request.config_dict.get(ALERTMANAGER)
    if alertmanager is not None and silence_id is not None:
        await alertmanager.expire(silence_id)
