"""The simulated MCP server, answering as the official SDK's servers do on both transports.

Streamable HTTP at `/mcp`: POST JSON-RPC (a session id comes with the `initialize` answer and is
required afterwards), DELETE ends the session, GET answers 405. Legacy SSE at `/sse`: the stream's
first event, `endpoint`, names `/messages/?session_id=…`, where messages are POSTed; their answers
come as `message` events on the stream.
"""

import asyncio
import json
import uuid
from typing import Any, Final

from aiohttp import web

from simulation.state import SIMULATION, Simulation

VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
TOOLS: Final = ("get_text", "text_search", "get_current_calendar")
SESSION_HEADER: Final = "Mcp-Session-Id"
KEEP_ALIVE_SECONDS: Final = 15
HANG_UP_POLL_SECONDS: Final = 0.2
"""How soon a legacy stream notices that its client hung up (and the session ends)."""


def add_routes(app: web.Application) -> None:
    app.router.add_post("/mcp", _streamable_post)
    app.router.add_delete("/mcp", _streamable_delete)
    app.router.add_get("/sse", _legacy_stream)
    app.router.add_post("/messages/", _legacy_message)


async def _streamable_post(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATION]
    mode = sim.hit("mcp")
    if (refused := await _refusal(mode)) is not None:
        return refused
    try:
        message = json.loads(await request.read())
    except ValueError:
        return _transport_error(400, -32700, "Parse error")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return _transport_error(400, -32600, "Invalid Request")
    if message.get("method") == "initialize":
        session = uuid.uuid4().hex
        sim.mcp_sessions[session] = None
    else:
        session = request.headers.get(SESSION_HEADER, "")
        if not session:
            return _transport_error(400, -32600, "Bad Request: Missing session ID")
        if session not in sim.mcp_sessions:
            return _transport_error(404, -32600, "Not Found: Invalid or expired session ID")
    headers = {SESSION_HEADER: session}
    if "id" not in message:
        return web.Response(status=202, headers=headers)
    if mode == "close":  # an event stream that ends before the answer
        response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await response.prepare(request)
        return response
    return web.json_response(_answer(sim, mode, message), headers=headers)


async def _streamable_delete(request: web.Request) -> web.Response:
    sessions = request.app[SIMULATION].mcp_sessions
    session = request.headers.get(SESSION_HEADER, "")
    if not session:
        return _transport_error(400, -32600, "Bad Request: Missing session ID")
    if sessions.pop(session, "unknown") == "unknown":
        return _transport_error(404, -32600, "Not Found: Invalid or expired session ID")
    return web.Response(status=200)


async def _legacy_stream(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATION]
    mode = sim.hit("mcp")
    if mode in ("error", "wrong_content_type") and (refused := await _refusal(mode)) is not None:
        return refused
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    if mode == "close":
        return response
    if mode == "hang":
        await asyncio.sleep(3600)
    session = uuid.uuid4().hex
    answers: asyncio.Queue[dict] = asyncio.Queue()
    sim.mcp_sessions[session] = answers
    try:
        await response.write(f"event: endpoint\ndata: /messages/?session_id={session}\n\n".encode())
        quiet = 0.0
        while request.transport is not None and not request.transport.is_closing():
            try:  # a real event stream stays open until the client hangs up
                answer = await asyncio.wait_for(answers.get(), HANG_UP_POLL_SECONDS)
            except TimeoutError:
                quiet += HANG_UP_POLL_SECONDS
                if quiet >= KEEP_ALIVE_SECONDS:
                    await response.write(b": keep-alive\n\n")
                    quiet = 0.0
                continue
            await response.write(f"event: message\ndata: {json.dumps(answer)}\n\n".encode())
    except ConnectionResetError:
        pass
    finally:
        sim.mcp_sessions.pop(session, None)
    return response


async def _legacy_message(request: web.Request) -> web.Response:
    sim = request.app[SIMULATION]
    answers = sim.mcp_sessions.get(request.query.get("session_id", ""))
    if answers is None:
        return web.Response(status=404, text="Could not find session")
    try:
        message = json.loads(await request.read())
    except ValueError:
        return web.Response(status=400, text="Could not parse message")
    if isinstance(message, dict) and "id" in message:
        answers.put_nowait(_answer(sim, sim.modes["mcp"], message))
    return web.Response(status=202, text="Accepted")


async def _refusal(mode: str) -> web.Response | None:
    """The answer of a broken server, before any MCP: 503, a web page, or none at all."""
    if mode == "error":
        return web.Response(status=503, text="unavailable")
    if mode == "wrong_content_type":
        return web.Response(text="<html>not an MCP server</html>", content_type="text/html")
    if mode == "hang":
        await asyncio.sleep(3600)
    return None


def _answer(sim: Simulation, mode: str, message: dict[str, Any]) -> dict[str, Any]:
    method, request_id = message.get("method"), message.get("id")
    if method == "initialize":
        params = message.get("params") or {}
        requested = params.get("protocolVersion") if isinstance(params, dict) else None
        result: dict[str, Any] = {
            "protocolVersion": requested if requested in VERSIONS else VERSIONS[-1],
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "Sefaria MCP (simulated)", "version": "0.0.0"},
        }
    elif method == "tools/list" and mode == "rpc_error":
        error = {"code": -32603, "message": "tool index unavailable"}
        return {"jsonrpc": "2.0", "id": request_id, "error": error}
    elif method == "tools/list":
        names = [name for name in TOOLS if not (mode == "missing_tool" and name == "text_search")]
        tools = [{"name": name, "inputSchema": {"type": "object"}} for name in names]
        result = {"tools": tools}
    elif method == "ping":
        result = {}
    else:
        error = {"code": -32601, "message": "Method not found"}
        return {"jsonrpc": "2.0", "id": request_id, "error": error}
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _transport_error(status: int, code: int, message: str) -> web.Response:
    body = {"jsonrpc": "2.0", "id": "server-error", "error": {"code": code, "message": message}}
    return web.json_response(body, status=status)
