"""The aiohttp application: `create_app(settings)` builds it without side effects; the HTTP
session, Prometheus client, database pool and rollup task live in `cleanup_ctx`."""

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from statuslog import event
from statuspage import templates
from statuspage.alertmanager import Alertmanager
from statuspage.auth import FailedAttempts, Handler
from statuspage.board import BoardSource
from statuspage.keys import (
    ALERTMANAGER,
    BOARD,
    METRICS,
    PROMETHEUS,
    SETTINGS,
    STATIC_URL,
    STORE,
    TEMPLATES,
)
from statuspage.metrics import Metrics
from statuspage.prometheus import PrometheusClient
from statuspage.rollups import run_rollups
from statuspage.settings import Settings
from statuspage.store import DatabaseUnavailable, Store
from statuspage.views import admin, api, feeds, hooks, public

log = logging.getLogger("statuspage")
STATIC_DIR = Path(__file__).parent / "static"
DATABASE_RETRY_SECONDS = 5.0
# No scripts, no frames, nothing from elsewhere: the pages are plain HTML and one stylesheet.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
PUBLIC_CACHE_CONTROL = "public, max-age=15"


def create_app(settings: Settings) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes, middlewares=[observe, security_headers]
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[TEMPLATES] = templates.environment()
    app[STATIC_URL] = f"/static/style.css?v={_digest(STATIC_DIR / 'style.css')}"
    app[STORE] = Store(
        settings.database_url, errors=metrics.database_errors, password=settings.database_password
    )
    app.cleanup_ctx.append(_http_clients)
    app.cleanup_ctx.append(_database)
    public.register(app)
    api.register(app)
    feeds.register(app)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_static("/static", STATIC_DIR)
    failures = FailedAttempts(settings.auth_failures_per_minute)
    app.add_subapp("/admin/api", admin.create_admin_app(failures))
    app.add_subapp("/hooks", hooks.create_hooks_app(failures))
    return app


async def _http_clients(app: web.Application) -> AsyncIterator[None]:
    settings, metrics = app[SETTINGS], app[METRICS]
    async with aiohttp.ClientSession() as session:
        app[PROMETHEUS] = PrometheusClient(
            session, settings.prometheus_url, settings.prometheus_timeout, metrics.prometheus_errors
        )
        app[BOARD] = BoardSource(
            app[PROMETHEUS], app[STORE], settings.cache_ttl, metrics.cache_requests
        )
        if settings.alertmanager_url:
            app[ALERTMANAGER] = Alertmanager(session, settings.alertmanager_url)
        yield


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Connect (retrying while PostgreSQL is down: the page serves without it), then keep the
    daily uptime rollups going."""
    task = asyncio.create_task(_connect_and_roll_up(app))
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
        except DatabaseUnavailable as exc:
            event(log, logging.WARNING, "database unavailable", error=exc)
            await asyncio.sleep(DATABASE_RETRY_SECONDS)
    await run_rollups(app[PROMETHEUS], store)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request latency by route template (never by raw path: bounded label values)."""
    started = time.perf_counter()
    code = 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except web.HTTPException as exc:
        code = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        request.app[METRICS].request_duration.labels(name, request.method, str(code)).observe(
            time.perf_counter() - started
        )


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(request, exc)
        raise
    _secure(request, response)
    return response


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    path = request.path
    if path.startswith(("/admin/", "/hooks/", "/-/", "/metrics")) or response.status >= 400:
        headers["Cache-Control"] = "no-store"
    elif path.startswith("/static/"):
        headers["Cache-Control"] = "public, max-age=86400"
    else:
        headers.setdefault("Cache-Control", PUBLIC_CACHE_CONTROL)
    if path.startswith("/api/v2/"):
        headers["Access-Control-Allow-Origin"] = "*"


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
