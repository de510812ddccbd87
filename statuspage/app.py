"""The aiohttp application: `create_app(settings)` builds it without side effects; the HTTP
session, Prometheus client, database pool and rollup task live in `cleanup_ctx`."""

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from statuslog import event
from statuspage import templates
from statuspage.alertmanager import Alertmanager
from statuspage.auth import FailedAttempts
from statuspage.board import BoardSource
from statuspage.keys import (
    ALERTMANAGER,
    BOARD,
    METRICS,
    PROMETHEUS,
    SETTINGS,
    STATIC_URLS,
    STORE,
    TEMPLATES,
)
from statuspage.metrics import Metrics
from statuspage.middleware import observe, security_headers, server_header, unexpected_errors
from statuspage.prometheus import PrometheusClient
from statuspage.rollups import run_rollups
from statuspage.settings import Settings
from statuspage.store import DatabaseUnavailable, SchemaError, Store
from statuspage.tasks import supervise
from statuspage.views import admin, api, feeds, hooks, openapi, public

log = logging.getLogger("statuspage")
STATIC_DIR = Path(__file__).parent / "static"
DATABASE_RETRY_SECONDS = 5.0


def create_app(settings: Settings) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[observe, security_headers, unexpected_errors],
    )
    app.on_response_prepare.append(server_header)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[TEMPLATES] = templates.environment()
    app[STATIC_URLS] = {
        path.name: f"/static/{path.name}?v={_digest(path)}" for path in STATIC_DIR.iterdir()
    }
    app[STORE] = Store(
        settings.database_url,
        errors=metrics.database_errors,
        password=settings.database_password,
        timeout=settings.database_timeout,
    )
    app.cleanup_ctx.append(_http_clients)
    app.cleanup_ctx.append(_database)
    public.register(app)
    api.register(app)
    feeds.register(app)
    openapi.register(app)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_static("/static", STATIC_DIR)
    # Separate budgets: a flood of bad admin tokens never throttles Alertmanager, and back.
    subapps = {"/admin/api": admin.create_admin_app, "/hooks": hooks.create_hooks_app}
    for prefix, create_subapp in subapps.items():
        failures = FailedAttempts(
            settings.auth_failures_per_minute, settings.auth_failures_per_minute_total
        )
        app.add_subapp(prefix, create_subapp(failures))
    return app


async def _http_clients(app: web.Application) -> AsyncIterator[None]:
    settings, metrics = app[SETTINGS], app[METRICS]
    async with aiohttp.ClientSession() as session:
        app[PROMETHEUS] = PrometheusClient(
            session, settings.prometheus_url, settings.prometheus_timeout, metrics.prometheus_errors
        )
        app[BOARD] = BoardSource(
            app[PROMETHEUS],
            app[STORE],
            settings.cache_ttl,
            metrics.cache_requests,
            wait=settings.database_timeout,
        )
        if settings.alertmanager_url:
            app[ALERTMANAGER] = Alertmanager(session, settings.alertmanager_url)
        try:
            yield
        finally:
            await app[BOARD].close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Connect (retrying while PostgreSQL is down: the page serves without it), then keep the
    daily uptime rollups going, supervised."""
    task = asyncio.create_task(
        supervise("database", lambda: _connect_and_roll_up(app), app[METRICS].task_restarts)
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app[STORE].close()


async def _connect_and_roll_up(app: web.Application) -> None:
    store = app[STORE]
    while True:
        try:
            await store.connect()
            break
        except SchemaError as exc:
            event(log, logging.ERROR, "database schema cannot be used; serving without it",
                  error=exc, retry_in=DATABASE_RETRY_SECONDS)  # fmt: skip
        except DatabaseUnavailable as exc:
            event(log, logging.WARNING, "database unavailable", error=exc)
        await asyncio.sleep(DATABASE_RETRY_SECONDS)
    await run_rollups(app[PROMETHEUS], store)


async def _metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy.\n")


async def _ready(request: web.Request) -> web.Response:
    """Ready when both data sources answer; the body names each problem."""
    problems = []
    live = await request.app[BOARD].live.get()
    if live.error or live.value is None:
        problems.append(f"Prometheus: {live.error or 'no data loaded yet'}")
    try:
        await request.app[STORE].ping()
    except DatabaseUnavailable as exc:
        problems.append(str(exc))
    if problems:
        return web.Response(status=503, text="Not ready:\n" + "\n".join(problems) + "\n")
    return web.Response(text="Ready.\n")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
