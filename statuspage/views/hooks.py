"""`/hooks/alertmanager`: Alertmanager's webhook opens and resolves automatic incidents.

A firing `ServiceDown` opens one incident per service, keyed on the service and not on the
alert's fingerprint: however many exporters, Prometheus replicas or Alertmanagers report one
outage, and however often they retry or repeat, it is one incident. Its resolution posts one
resolved update with the downtime; a late copy of the firing notification, started before that
end, opens nothing.

The payload is validated like the admin API's (types, plain text, capped lengths). Alerts about
services Prometheus does not know, or about private (`public: false`) ones, open nothing: the
status page is public, and Slack still gets every alert from Alertmanager itself.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from statuslog import event
from statuspage.auth import FailedAttempts, require_token
from statuspage.keys import BOARD, STORE
from statuspage.status import Impact
from statuspage.templates import duration
from statuspage.validation import SERVICE_ID_MAX, TITLE_MAX, FieldError, Invalid, plain_text
from statuspage.views.admin import json_errors, read_json, service_catalog

log = logging.getLogger("statuspage.hooks")
ALERT = "ServiceDown"
KEY_MAX = 100
"""Longest fingerprint or timestamp accepted (Alertmanager's are 16 and about 30 characters)."""


def create_hooks_app(failures: FailedAttempts) -> web.Application:
    app = web.Application(middlewares=[require_token(failures, "hook"), json_errors])
    app.router.add_post("/alertmanager", alertmanager)
    return app


async def alertmanager(request: web.Request) -> web.Response:
    alerts = _alerts(await read_json(request))
    store = request.config_dict[STORE]
    board = request.config_dict[BOARD]
    known = await service_catalog(request)  # 503 without it: Alertmanager retries
    opened = resolved = ignored = 0
    for alert in alerts:
        labels, service = alert["labels"], alert["labels"]["service"]
        info = known.get(service)
        shown_publicly = info is not None and info.public
        name = info.name if shown_publicly else "The service"
        key = f"{ALERT}:{service}"
        if alert["status"] == "firing" and not shown_publicly:
            ignored += 1
            reason = "private service" if info else "unknown service"
            event(log, logging.INFO, "alert ignored", service=service, reason=reason)
            continue
        if alert["status"] == "firing":
            created = await store.create_incident(
                title=_summary(alert) or f"{name} is down",
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
    return web.json_response({"opened": opened, "resolved": resolved, "ignored": ignored})


def _alerts(payload: Any) -> list[dict[str, Any]]:
    """The ServiceDown alerts of a webhook payload (version 4). Every alert is checked for the
    payload's shape; ServiceDown ones, which become incidents, for plain, bounded text too."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise Invalid([FieldError("alerts", "must be a list (Alertmanager webhook payload)")])
    errors = [
        FieldError(name, "must be a string")
        for name in ("version", "status", "receiver", "groupKey")
        if not isinstance(payload.get(name, ""), str)
    ]
    found = []
    for index, alert in enumerate(payload["alerts"]):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            errors.append(FieldError(where, "must be an alert object"))
            continue
        problems = _shape_problems(alert)
        if not problems and alert["labels"].get("alertname") == ALERT:
            problems = [
                *_text_problems(alert, "fingerprint", KEY_MAX, required=True),
                *_text_problems(alert, "startsAt", KEY_MAX, required=True),
                *_text_problems(alert, "endsAt", KEY_MAX, required=False),
                *_text_problems(
                    alert["labels"], "service", SERVICE_ID_MAX, required=True, at="labels"
                ),
                *_text_problems(
                    alert.get("annotations", {}),
                    "summary",
                    TITLE_MAX,
                    required=False,
                    at="annotations",
                ),
            ]
            found.append(alert)
        errors += [FieldError(f"{where}.{field}", reason) for field, reason in problems]
    if errors:
        raise Invalid(errors)
    return found


def _shape_problems(alert: dict[str, Any]) -> list[tuple[str, str]]:
    """What makes `alert` no Alertmanager alert: types of the fields it must or may have."""
    problems = []
    for name in ("labels", "annotations"):
        value = alert.get(name, {})
        if not isinstance(value, dict):
            problems.append((name, "must be an object"))
        elif not all(isinstance(v, str) for v in value.values()):
            problems.append((name, "must map names to strings"))
    if alert.get("status") not in ("firing", "resolved"):
        problems.append(("status", "must be firing or resolved"))
    for name in ("fingerprint", "startsAt", "endsAt"):
        value = alert.get(name, "" if name == "endsAt" else None)
        if not isinstance(value, str):
            problems.append((name, "is required" if value is None else "must be a string"))
        elif len(value) > KEY_MAX:
            problems.append((name, f"must be at most {KEY_MAX} characters"))
    if not alert.get("fingerprint", "x"):
        problems.append(("fingerprint", "must not be empty"))
    if not isinstance(alert.get("generatorURL", ""), str):
        problems.append(("generatorURL", "must be a string"))
    if "labels" not in alert:
        problems.append(("labels", "is required"))
    return problems


def _text_problems(
    values: dict[str, Any], name: str, max_length: int, *, required: bool, at: str = ""
) -> list[tuple[str, str]]:
    field = f"{at}.{name}" if at else name
    value = values.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, str) or not value.strip():
        return [(field, "is required" if value is None else "must be a non-empty string")]
    problem = plain_text(value, max_length)[1]
    return [(field, problem)] if problem else []


def _summary(alert: dict[str, Any]) -> str | None:
    """The alert's summary annotation as a title (validated in _alerts), if it has one."""
    summary = alert.get("annotations", {}).get("summary")
    return plain_text(summary, TITLE_MAX)[0] if summary is not None else None


def _timestamp(text: str | None) -> datetime | None:
    """An Alertmanager time (RFC 3339, nanoseconds allowed) in UTC; None if absent, unreadable,
    without a zone, or outside what a datetime holds in UTC (Go's zero time is sent as
    `0001-01-01T00:00:00Z`)."""
    try:
        moment = datetime.fromisoformat((text or "").replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _seconds_between(start: str, end: str | None) -> float | None:
    began, ended = _timestamp(start), _timestamp(end)
    if began is None or ended is None:
        return None
    return (ended - began).total_seconds()
