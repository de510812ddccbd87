"""Statuspage v2-compatible JSON (`/api/v2/*.json`): same field names and enum values, so tools
written for Atlassian Statuspage read this page unchanged.

Extension: a component whose live data is missing or stale has status `degraded_performance`
(never `operational`) and `status_known: false`.
"""

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from statuspage.board import Board, Component
from statuspage.keys import BOARD, SETTINGS
from statuspage.settings import Settings
from statuspage.status import Status, overall_status
from statuspage.store import Incident, Maintenance

INCIDENT_LIMIT = 50


def register(app: web.Application) -> None:
    add = app.router.add_get
    add("/api/v2/summary.json", _board_view("summary", summary))
    add("/api/v2/status.json", _board_view("status", lambda b, s: {"status": _status(b)}))
    add("/api/v2/components.json", _board_view("components", components))
    add("/api/v2/incidents/unresolved.json", _board_view("unresolved", unresolved))
    add("/api/v2/scheduled-maintenances/upcoming.json", _board_view("upcoming", upcoming))
    add("/api/v2/scheduled-maintenances/active.json", _board_view("active", active))
    add("/api/v2/incidents.json", _board_view("incidents", incidents))
    add("/api/v2/scheduled-maintenances.json", _board_view("maintenances", maintenances))


def _board_view(name: str, build: Callable[[Board, Settings], dict[str, Any]]):
    """A handler whose JSON depends on the board only, so it is serialized once per board."""

    async def handler(request: web.Request) -> web.Response:
        board = await request.app[BOARD].board()
        settings = request.app[SETTINGS]

        def render(board: Board) -> bytes:
            return json.dumps({"page": page(board, settings)} | build(board, settings)).encode()

        body = board.render(f"api:{name}", render)
        return web.Response(body=body, content_type="application/json")

    return handler


def page(board: Board, settings: Settings) -> dict[str, Any]:
    return {
        "id": _slug(settings.page_title),
        "name": settings.page_title,
        "url": settings.public_url,
        "time_zone": "Etc/UTC",
        "updated_at": _iso(datetime.fromtimestamp(board.built_at, UTC)),
    }


def summary(board: Board, settings: Settings) -> dict[str, Any]:
    return {
        **components(board, settings),
        "incidents": [incident(i, board, settings) for i in board.unresolved],
        "scheduled_maintenances": [
            maintenance(m, board, settings)
            for m in (*board.active_maintenances, *board.upcoming_maintenances)
        ],
        "status": _status(board),
    }


def components(board: Board, settings: Settings) -> dict[str, Any]:
    page_id = _slug(settings.page_title)
    updated = _iso(datetime.fromtimestamp(board.built_at, UTC))
    entries: list[dict[str, Any]] = []
    for position, (group, members) in enumerate(board.groups, start=1):
        group_id = f"group-{_slug(group)}"
        entries.append(
            _component(group_id, group, _worst(members), position, page_id, updated)
            | {"group": True, "group_id": None, "components": [c.info.id for c in members]}
        )
        for index, member in enumerate(members, start=1):
            entries.append(
                _component(member.info.id, member.info.name, member.status, index, page_id, updated)
                | {"group": False, "group_id": group_id}
            )
    return {"components": entries}


def unresolved(board: Board, settings: Settings) -> dict[str, Any]:
    return {"incidents": [incident(i, board, settings) for i in board.unresolved]}


def upcoming(board: Board, settings: Settings) -> dict[str, Any]:
    return {
        "scheduled_maintenances": [
            maintenance(m, board, settings) for m in board.upcoming_maintenances
        ]
    }


def active(board: Board, settings: Settings) -> dict[str, Any]:
    return {
        "scheduled_maintenances": [
            maintenance(m, board, settings) for m in board.active_maintenances
        ]
    }


def incidents(board: Board, settings: Settings) -> dict[str, Any]:
    latest = board.records.latest if board.records else board.unresolved
    return {"incidents": [incident(i, board, settings) for i in latest[:INCIDENT_LIMIT]]}


def maintenances(board: Board, settings: Settings) -> dict[str, Any]:
    if board.records:
        windows = board.records.latest_maintenances[:INCIDENT_LIMIT]
    else:
        windows = (*board.active_maintenances, *board.upcoming_maintenances)
    return {"scheduled_maintenances": [maintenance(m, board, settings) for m in windows]}


def incident(found: Incident, board: Board, settings: Settings) -> dict[str, Any]:
    monitoring = [u.created_at for u in found.updates if u.status == "monitoring"]
    return {
        "id": str(found.id),
        "name": found.title,
        "status": found.status,
        "created_at": _iso(found.created_at),
        "updated_at": _iso(found.updated_at),
        "monitoring_at": _iso(min(monitoring)) if monitoring else None,
        "resolved_at": _iso(found.resolved_at),
        "impact": found.impact.value,
        "shortlink": f"{settings.public_url}/incidents/{found.id}",
        "started_at": _iso(found.created_at),
        "page_id": _slug(settings.page_title),
        "incident_updates": [
            {
                "id": str(update.id),
                "status": update.status,
                "body": update.body,
                "incident_id": str(found.id),
                "created_at": _iso(update.created_at),
                "updated_at": _iso(update.created_at),
                "display_at": _iso(update.created_at),
                "affected_components": None,
            }
            for update in found.updates
        ],
        "components": _affected(found.services, board, settings),
    }


def maintenance(window: Maintenance, board: Board, settings: Settings) -> dict[str, Any]:
    state = window.state(datetime.fromtimestamp(board.built_at, UTC))
    return {
        "id": f"m{window.id}",
        "name": window.title,
        "status": state,
        "created_at": _iso(window.created_at),
        "updated_at": _iso(window.updated_at),
        "monitoring_at": None,
        "resolved_at": _iso(window.ends_at) if state == "completed" else None,
        "impact": "maintenance",
        "shortlink": f"{settings.public_url}/",
        "started_at": _iso(window.starts_at),
        "page_id": _slug(settings.page_title),
        "scheduled_for": _iso(window.starts_at),
        "scheduled_until": _iso(window.ends_at),
        "incident_updates": [
            {
                "id": f"m{window.id}-1",
                "status": "scheduled",
                "body": window.body or window.title,
                "incident_id": f"m{window.id}",
                "created_at": _iso(window.created_at),
                "updated_at": _iso(window.updated_at),
                "display_at": _iso(window.created_at),
                "affected_components": None,
            }
        ],
        "components": _affected(window.services, board, settings),
    }


def _component(
    component_id: str, name: str, status: Status, position: int, page_id: str, updated: str
) -> dict[str, Any]:
    return {
        "id": component_id,
        "name": name,
        "status": status.api_value,
        "status_known": status is not Status.UNKNOWN,
        "created_at": updated,
        "updated_at": updated,
        "position": position,
        "description": None,
        "showcase": True,
        "start_date": None,
        "page_id": page_id,
        "only_show_if_degraded": False,
    }


def _affected(services: Iterable[str], board: Board, settings: Settings) -> list[dict[str, Any]]:
    """Only public components: an incident never reveals a private service."""
    updated = _iso(datetime.fromtimestamp(board.built_at, UTC))
    page_id = _slug(settings.page_title)
    found = [c for s in services if (c := board.component(s)) is not None]
    return [
        _component(c.info.id, c.info.name, c.status, 0, page_id, updated)
        | {"group": False, "group_id": f"group-{_slug(c.info.group)}"}
        for c in found
    ]


def _worst(members: list[Component]) -> Status:
    return overall_status([member.status for member in members], []).status


def _status(board: Board) -> dict[str, str]:
    return {"indicator": board.overall.indicator, "description": board.overall.description}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "status"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
