"""Real MCP servers from the official Python SDK, served by uvicorn on loopback in the test's
event loop, so a test can look inside the server object (its open sessions) while checking it."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp import types
from mcp.server.fastmcp import FastMCP
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import McpError
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

TOOLS = ("get_text", "text_search", "get_current_calendar")


def sefaria_like(
    name: str = "Sefaria MCP (test)", version: str | None = None, **settings: Any
) -> FastMCP:
    """A FastMCP server with three of the tools Sefaria's MCP server offers.

    Its `initialize` answer names it `name` and, unless `version` is given, the SDK's version.
    """
    server = FastMCP(name, **settings)
    if version is not None:
        server._mcp_server.version = version  # FastMCP takes none; its low-level server holds it

    @server.tool()
    def get_text(reference: str) -> str:
        """Retrieve a text by reference."""
        return reference

    @server.tool()
    def text_search(query: str) -> str:
        """Search the library."""
        return query

    @server.tool()
    def get_current_calendar() -> str:
        """Today's calendar."""
        return "today"

    return server


class BrokenToolIndex(FastMCP):
    """A FastMCP server whose tools/list fails with a JSON-RPC error."""

    async def list_tools(self) -> list[types.Tool]:
        raise McpError(types.ErrorData(code=types.INTERNAL_ERROR, message="tool index unavailable"))


def paged_tools(pages: int) -> Starlette:
    """A low-level SDK server (stateless Streamable HTTP at /mcp) listing one tool per page."""
    server = Server("paged")

    @server.list_tools()
    async def list_tools(request: types.ListToolsRequest) -> types.ListToolsResult:
        page = int(request.params.cursor or 0) if request.params else 0
        tool = types.Tool(name=f"tool_{page}", inputSchema={"type": "object"})
        more = str(page + 1) if page + 1 < pages else None
        return types.ListToolsResult(tools=[tool], nextCursor=more)

    manager = StreamableHTTPSessionManager(app=server, stateless=True)
    return Starlette(
        routes=[Route("/mcp", endpoint=_AsgiEndpoint(manager.handle_request))],
        lifespan=lambda app: manager.run(),
    )


class _AsgiEndpoint:
    """Starlette treats a plain function as a request handler; a class instance as an ASGI app."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@dataclass
class RequestLog:
    """(method, path) of every request the server saw."""

    entries: list[tuple[str, str]] = field(default_factory=list)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def logged(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.entries.append((scope["method"], scope["path"]))
            await app(scope, receive, send)

        return logged

    def take(self) -> list[tuple[str, str]]:
        taken, self.entries = self.entries, []
        return taken


class MovingServer:
    """One URL (/mcp) whose server moves from legacy SSE to Streamable HTTP when told to."""

    def __init__(self, **streamable_settings: Any) -> None:
        self.legacy = sefaria_like(sse_path="/mcp").sse_app()  # no lifespan of its own
        self.streamable = sefaria_like(**streamable_settings).streamable_http_app()
        self.current = self.legacy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.streamable if scope["type"] == "lifespan" else self.current
        await app(scope, receive, send)


class _LoopbackServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals belong to the test run, not to the server under test


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port for the block; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="none", timeout_graceful_shutdown=2
    )
    server = _LoopbackServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
