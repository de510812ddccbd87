"""The exporter's HTTP face: /metrics, health, readiness, reload and a JSON view of the results."""

import asyncio
import dataclasses
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from exporter.exposition import scrape
from exporter.heartbeat.api import add_routes as add_heartbeat_routes
from exporter.results import ServiceRecord
from exporter.runtime import Exporter

EXPORTER: Final = web.AppKey("exporter", Exporter)

_INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>sefaria-status exporter</title>
</head><body><h1>sefaria-status exporter</h1><ul>
<li><a href="metrics">/metrics</a></li><li><a href="api/v1/results">/api/v1/results</a></li>
<li><a href="-/healthy">/-/healthy</a></li><li><a href="-/ready">/-/ready</a></li>
</ul></body></html>
"""


def create_app(exporter: Exporter) -> web.Application:
    """The aiohttp app; checks start and stop with it (cleanup_ctx), nothing runs before."""
    app = web.Application()
    app[EXPORTER] = exporter
    app.cleanup_ctx.append(_exporter_lifetime)
    app.router.add_get("/", _index)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_post("/-/reload", _reload)
    app.router.add_get("/api/v1/results", _results)
    add_heartbeat_routes(app, exporter)
    return app


async def _exporter_lifetime(app: web.Application) -> AsyncIterator[None]:
    exporter = app[EXPORTER]
    await exporter.start()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, exporter.reload_soon)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await exporter.stop()


async def _index(request: web.Request) -> web.Response:
    return web.Response(text=_INDEX, content_type="text/html")


async def _metrics(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    accept = request.headers.get("Accept", "")
    body, content_type = scrape(exporter.store.exposition, exporter.registry, accept)
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy.\n")


async def _ready(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    if exporter.ready:
        return web.Response(text="Ready.\n")
    waiting = sum(1 for record in exporter.store if record.latest is None)
    return web.Response(status=503, text=f"Not ready: {waiting} service(s) not checked yet.\n")


async def _reload(request: web.Request) -> web.Response:
    """Prometheus' lifecycle convention: refused unless enabled; a bad file is the client's 400."""
    exporter = request.app[EXPORTER]
    if not exporter.settings.enable_lifecycle:
        return web.Response(status=403, text="Lifecycle API is not enabled.\n")
    error = await exporter.reload()
    if error is not None:
        return web.Response(status=400, text=f"failed to reload config: {error}\n")
    return web.Response(text="Config reloaded.\n")


async def _results(request: web.Request) -> web.Response:
    records = sorted(request.app[EXPORTER].store, key=lambda record: record.service.id)
    return web.json_response({"services": [_record_json(record) for record in records]})


def _record_json(record: ServiceRecord) -> dict[str, Any]:
    """Everything an engineer debugging a check wants, except secrets (headers, URLs)."""
    service, result = record.service, record.latest
    entry: dict[str, Any] = {
        "service": service.id,
        "name": service.name,
        "group": service.group,
        "kind": service.kind,
        "public": service.public,
        "interval_seconds": service.interval,
        "up": record.up,
        "last_run": _iso(record.last_run),
        "last_change": _iso(record.last_change),
        "checks": {"success": record.successes, "failure": record.failures},
        "overruns": record.overruns,
        "cert_expiry": _iso(record.cert_expiry),
    }
    if result is not None:
        entry |= {
            "reason": result.reason.value,
            "message": result.message,
            "status_code": result.status_code,
            "attempts": result.attempts,
            "duration_seconds": result.duration_seconds,
            "phases": dict(result.phases),
        }
        for name in ("mcp", "heartbeat"):
            details = getattr(result, name)
            if details is not None:
                entry[name] = dataclasses.asdict(details)
    return entry


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
