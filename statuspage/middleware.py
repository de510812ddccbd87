"""Middlewares every response passes through: latency metrics, security headers, and the last
line of defence that turns any unexpected exception into a 500 with an error id (logged with
its traceback) instead of a traceback for the client."""

import logging
import secrets
import time

from aiohttp import web

from statuspage.auth import Handler
from statuspage.keys import METRICS, SETTINGS

log = logging.getLogger("statuspage")
# Scripts only from this origin (the page's small refresh script), no frames, nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PUBLIC_CACHE_CONTROL = "public, max-age=15"
HSTS = "max-age=31536000"
SERVER = "sefaria-status"
"""The `Server` header: no product versions for anyone to match against advisories."""


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
        request.app[METRICS].request_duration.labels(
            _route(request), request.method, str(code)
        ).observe(time.perf_counter() - started)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(request, exc)
        raise
    _secure(request, response)
    return response


@web.middleware
async def unexpected_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost: anything a handler did not expect becomes a plain 500 naming an error id that
    the log line (with the traceback) carries too."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        error_id = secrets.token_hex(8)
        fields = {"error_id": error_id, "method": request.method, "route": _route(request)}
        log.error("unhandled error", exc_info=True, extra={"fields": fields})
        request.app[METRICS].unhandled_errors.inc()
        message = f"internal error (error id {error_id}); please try again later"
        if request.path.startswith(("/api/", "/admin/", "/hooks/")):
            return web.json_response({"error": message, "error_id": error_id}, status=500)
        return web.Response(status=500, text=message + "\n")


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    if request.app[SETTINGS].public_url.startswith("https://"):
        headers["Strict-Transport-Security"] = HSTS
    path = request.path
    if path.startswith(("/admin/", "/hooks/", "/-/", "/metrics")) or response.status >= 400:
        headers["Cache-Control"] = "no-store"
    elif path.startswith("/static/"):
        headers["Cache-Control"] = "public, max-age=86400"
    else:
        headers.setdefault("Cache-Control", PUBLIC_CACHE_CONTROL)
    if path.startswith("/api/v2/"):
        headers["Access-Control-Allow-Origin"] = "*"


async def server_header(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response, including the framework's own, names no
    versions."""
    response.headers["Server"] = SERVER
