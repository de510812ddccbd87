"""`/hooks/alertmanager`: Alertmanager's webhook opens and resolves automatic incidents.

A firing `ServiceDown` opens one incident per service, keyed on the service and not on the
alert's fingerprint: however many exporters, Prometheus replicas or Alertmanagers report one
outage, and however often they retry or repeat, it is one incident. Its resolution posts one
resolved update with the downtime; a late copy of the firing notification, started before that
end, opens nothing.
"""

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from statuslog import event
from statuspage.auth import FailedAttempts, require_token
from statuspage.keys import BOARD, STORE
from statuspage.status import Impact
from statuspage.templates import duration
from statuspage.validation import FieldError, Invalid
from statuspage.views.admin import json_errors, read_json

log = logging.getLogger("statuspage.hooks")
ALERT = "ServiceDown"


def create_hooks_app(failures: FailedAttempts) -> web.Application:
    app = web.Application(middlewares=[require_token(failures), json_errors])
    app.router.add_post("/alertmanager", alertmanager)
    return app


async def alertmanager(request: web.Request) -> web.Response:
    alerts = _alerts(await read_json(request))
    store = request.config_dict[STORE]
    board = request.config_dict[BOARD]
    known = await board.known_services() or {}
    opened = resolved = 0
    for alert in alerts:
        labels, service = alert["labels"], alert["labels"]["service"]
        name = known[service].name if service in known else service
        key = f"{ALERT}:{service}"
        if alert["status"] == "firing":
            created = await store.create_incident(
                title=alert.get("annotations", {}).get("summary") or f"{name} is down",
                impact=Impact.MAJOR,
                status="investigating",
                body=f"Our checks show that {name} is not working. We are investigating.",
                services=[service],
                alert_key=key,
                alert_started_at=_timestamp(alert["startsAt"]),
            )
            opened += created is not None
        else:
            down_for = _seconds_between(alert["startsAt"], alert.get("endsAt"))
            body = f"{name} is working again."
            if down_for is not None:
                body += f" It was unavailable for about {duration(down_for)}."
            ended_at = _timestamp(alert.get("endsAt"))
            resolved += await store.resolve_alert_incident(key, body, ended_at) is not None
        event(
            log,
            logging.INFO,
            "alert received",
            service=service,
            status=alert["status"],
            alert=labels,
        )
    if opened or resolved:
        board.invalidate_records()
    return web.json_response({"opened": opened, "resolved": resolved})


def _alerts(payload: Any) -> list[dict[str, Any]]:
    """The ServiceDown alerts of a webhook payload (version 4), checked enough to be trusted."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise Invalid([FieldError("alerts", "must be a list (Alertmanager webhook payload)")])
    found, errors = [], []
    for index, alert in enumerate(payload["alerts"]):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            errors.append(FieldError(where, "must be an alert object with labels"))
            continue
        if alert["labels"].get("alertname") != ALERT:
            continue
        for name in ("fingerprint", "startsAt", "status"):
            if not isinstance(alert.get(name), str) or not alert[name]:
                errors.append(FieldError(f"{where}.{name}", "is required"))
        if not isinstance(alert["labels"].get("service"), str):
            errors.append(FieldError(f"{where}.labels.service", "is required"))
        if alert.get("status") not in ("firing", "resolved"):
            errors.append(FieldError(f"{where}.status", "must be firing or resolved"))
        found.append(alert)
    if errors:
        raise Invalid(errors)
    return found


def _timestamp(text: str | None) -> datetime | None:
    """An Alertmanager time (RFC 3339, nanoseconds allowed); None if absent or unreadable."""
    try:
        return datetime.fromisoformat((text or "").replace("Z", "+00:00"))
    except ValueError:
        return None


def _seconds_between(start: str, end: str | None) -> float | None:
    began, ended = _timestamp(start), _timestamp(end)
    if began is None or ended is None:
        return None
    return (ended - began).total_seconds()
