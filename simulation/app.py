"""A local stand-in for Sefaria's services whose failure modes can be switched at run time.

The exporter tests, the end-to-end tests and `make demo` all use it, so every failure the
exporter knows how to report can be produced on loopback:

    GET  /api/texts/{ref}        sefaria.org (http check)
    POST /api/find-refs          Linker job submit (async_job check)
    GET  /api/async/{id}         Linker job poll
    POST /mcp                    MCP server, Streamable HTTP (mcp check); GET answers 405
    GET  /sse                    the same MCP server over the legacy SSE transport
    GET  /export/healthz         Export Server
    GET  /-/sim                  current modes;  POST /-/sim/{service}?mode=M  switches one
"""

import asyncio
import json
from typing import Final

from aiohttp import web

from simulation import mcp
from simulation.state import MODES, SIMULATION, Simulation

HUGE_BODY_BYTES: Final = 50 * 1024 * 1024
_GENESIS = {"ref": "Genesis 1:1", "he": ["בְּרֵאשִׁ֖ית"], "text": ["In the beginning"]}


async def _texts(request: web.Request) -> web.StreamResponse:
    mode = request.app[SIMULATION].hit("sefaria-org")
    if mode == "error":
        return web.json_response({"error": "internal"}, status=500)
    if mode == "hang":
        await asyncio.sleep(3600)
    if mode == "slow":
        await asyncio.sleep(request.app[SIMULATION].slow_seconds)
    if mode == "redirect":
        raise web.HTTPFound(f"/api/v3/texts/{request.match_info['ref']}")
    if mode == "wrong_json":
        return web.json_response({"ref": "Exodus 1:1"})
    if mode == "huge":
        return await _huge_body(request)
    return web.json_response(_GENESIS)


async def _texts_v3(request: web.Request) -> web.Response:
    return web.json_response(_GENESIS)


async def _huge_body(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = HUGE_BODY_BYTES
    await response.prepare(request)
    sim = request.app[SIMULATION]
    chunk = b" " * 65536
    try:
        for _ in range(HUGE_BODY_BYTES // len(chunk)):
            await response.write(chunk)
            sim.huge_bytes_sent += len(chunk)
    except ConnectionError:
        pass  # the client hung up, as a well-behaved probe does
    return response


async def _submit(request: web.Request) -> web.Response:
    sim = request.app[SIMULATION]
    mode = sim.hit("linker")
    if mode in ("error", "submit_500"):
        return web.json_response({"error": "internal"}, status=500)
    if mode == "not_json":
        return web.Response(status=202, text="<html>accepted</html>", content_type="text/html")
    if mode == "no_task_id":
        return web.json_response({"status": "queued"}, status=202)
    task_id = f"{mode}-{next(sim._task_ids)}"
    return web.json_response({"task_id": task_id}, status=200 if mode == "submit_200" else 202)


async def _poll(request: web.Request) -> web.Response:
    sim = request.app[SIMULATION]
    task_id = request.match_info["task_id"]
    mode = task_id.rsplit("-", 1)[0]
    if sim.modes["linker"] == "poll_404" or mode == "poll_404":
        return web.json_response({"error": "no such task"}, status=404)
    polls = sim._polls[task_id] = sim._polls.get(task_id, 0) + 1
    if mode == "never" or polls < sim.polls_to_finish:
        return web.json_response(
            {"task_id": task_id, "state": "PENDING" if polls == 1 else "STARTED"}
        )
    if mode == "failure":
        return web.json_response({"task_id": task_id, "state": "FAILURE", "error": "boom"})
    result = {"results": [{"refs": ["Job 1:1"]}]}
    return web.json_response({"task_id": task_id, "state": "SUCCESS", "result": result})


async def _export_health(request: web.Request) -> web.Response:
    if request.app[SIMULATION].hit("export-server") == "error":
        return web.json_response({"status": "down"}, status=503)
    return web.json_response({"status": "ok"})


async def _show(request: web.Request) -> web.Response:
    sim = request.app[SIMULATION]
    return web.json_response(
        {
            "modes": sim.modes,
            "requests": sim.requests,
            "mcp_sessions": len(sim.mcp_sessions),
            "choices": MODES,
        }
    )


async def _switch(request: web.Request) -> web.Response:
    service = request.match_info["service"]
    mode = request.query.get("mode", "")
    try:
        request.app[SIMULATION].set_mode(service, mode)
    except ValueError as exc:
        return web.json_response({"error": str(exc), "choices": MODES}, status=400)
    return web.json_response({"service": service, "mode": mode})


def create_app(simulation: Simulation | None = None) -> web.Application:
    """The simulated services as one aiohttp app (no side effects until it is served)."""
    app = web.Application()
    app[SIMULATION] = simulation or Simulation()
    app.router.add_get("/api/texts/{ref}", _texts)
    app.router.add_get("/api/v3/texts/{ref}", _texts_v3)
    app.router.add_post("/api/find-refs", _submit)
    app.router.add_get("/api/async/{task_id}", _poll)
    mcp.add_routes(app)
    app.router.add_get("/export/healthz", _export_health)
    app.router.add_get("/-/sim", _show)
    app.router.add_post("/-/sim/{service}", _switch)
    return app


def services_yaml(
    base_url: str,
    interval: str = "5s",
    backoff: str = "100ms",
    heartbeat_token: str | None = None,
) -> str:
    """A services file pointing the exporter at a simulation served at `base_url`; with a
    `heartbeat_token`, also a daily job (`export-job`) that reports to the exporter."""
    services = {
        "defaults": {
            "interval": interval,
            "timeout": "2s",
            "retries": {"attempts": 3, "backoff": backoff},
        },
        "services": [
            {
                "id": "sefaria-org",
                "name": "sefaria.org",
                "group": "Sefaria",
                "url": f"{base_url}/api/texts/Genesis.1.1",
                "expect": {"status": [200], "json": {"ref": "Genesis 1:1", "he": "exists"}},
            },
            {
                "id": "linker",
                "name": "Linker API",
                "group": "Sefaria",
                "kind": "async_job",
                "method": "POST",
                "url": f"{base_url}/api/find-refs",
                "json": {"text": {"title": "", "body": "Job 1:1"}},
                "expect": {"status": [202]},
                "job": {
                    "poll_url": f"{base_url}/api/async/{{id}}",
                    "poll_interval": "100ms",
                    "deadline": interval,
                    "expect_json": {"result": "exists"},
                },
            },
            {
                "id": "mcp",
                "name": "MCP server",
                "group": "Developers",
                "kind": "mcp",
                "url": f"{base_url}/mcp",
                "mcp": {"expect_tools": ["get_text", "text_search"]},
            },
            {
                "id": "export-server",
                "name": "Export Server",
                "group": "Sefaria",
                "url": f"{base_url}/export/healthz",
            },
        ],
    }
    if heartbeat_token is not None:
        services["services"].append(
            {
                "id": "export-job",
                "name": "Nightly export",
                "group": "Sefaria",
                "kind": "heartbeat",
                "interval": "24h",
                "grace": "1h",
                "token": heartbeat_token,
            }
        )
    return json.dumps(services, indent=2)
