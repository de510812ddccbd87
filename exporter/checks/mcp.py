"""`kind: mcp`: talk to an MCP server the way a client does, over either of its HTTP transports.

One conversation: `initialize` (the result must name a protocol version and the server),
`notifications/initialized`, then `tools/list` page by page, and the expected tools must be there.

- **Streamable HTTP** (current servers, usually `/mcp`): every JSON-RPC message is a POST whose
  answer is plain JSON or an event stream. The session id and the negotiated protocol version go
  with every later request, and the session is deleted at the end, so a check a minute leaves no
  sessions behind on the server.
- **Legacy HTTP+SSE** (protocol 2024-11-05, e.g. `/sse`): a GET opens an event stream whose first
  event, `endpoint`, names the URL to POST messages to; answers arrive as `message` events on that
  stream, which is closed at the end.

`transport: auto` follows the specification's backwards-compatibility rule: POST `initialize` to
the URL and, on 400, 404 or 405, open the legacy stream instead. The transport that answered is
remembered for the service until the next reload and tried first; once it fails before any MCP
answer it is forgotten and the retry follows the specification's order again, so a server that
changes transport is followed, not paged.

Content and protocol failures end the check at once; transport errors, timeouts and 5xx are
retried like every kind's. Every body and stream is read up to `max_body_bytes` only.
"""

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final, NoReturn
from urllib.parse import urljoin, urlsplit

import httpx

from exporter.checks.base import CheckContext, CheckResult, McpDetails, Reason
from exporter.checks.events import Event, StreamTooLong, read_events
from exporter.checks.expect import InvalidJSON, parse_json
from exporter.checks.http import status_failure
from exporter.checks.retry import with_retries
from exporter.checks.transport import Exchange, client_for, exchange
from exporter.config import ServiceConfig

PROTOCOL_VERSION: Final = "2025-11-25"
"""The newest revision this check speaks; a server that does not speak it answers with its own."""
CLIENT_INFO: Final = {"name": "sefaria-status", "version": "0.1"}
NOT_THIS_TRANSPORT: Final = frozenset({400, 404, 405})
MAX_TOOL_PAGES: Final = 20
LABEL_LENGTH: Final = 64
"""Server-chosen values become label values: they are cut to this many characters."""
JSON_TYPE: Final = "application/json"
EVENT_STREAM: Final = "text/event-stream"
STREAMABLE_HTTP: Final = "streamable_http"
LEGACY_SSE: Final = "sse"


async def run(service: ServiceConfig, ctx: CheckContext) -> CheckResult:
    started = time.perf_counter()
    deadline = time.monotonic() + service.budget
    progress = _Progress()
    async with client_for(service, ctx) as client:

        async def attempt(timeout: float) -> CheckResult:
            progress.step = ""
            ends_at = time.monotonic() + timeout
            return await _attempt(_Link(client, service, progress, ends_at), ctx)

        retried = await with_retries(service, deadline, attempt)
    result = retried.outcome
    if result.reason is Reason.TIMEOUT and result.transient and progress.step:
        # A timeout cut the attempt short: say what it was waiting for.
        result = replace(result, message=f"{progress.step}: {result.message}")
    return replace(
        result, attempts=retried.attempts, duration_seconds=time.perf_counter() - started
    )


@dataclass
class _Progress:
    """What the running attempt is doing, so that a timeout can name the step it interrupted."""

    step: str = ""


@dataclass
class _Link:
    """What one attempt's conversations share: the client, the service and the attempt's end."""

    client: httpx.AsyncClient
    service: ServiceConfig
    progress: _Progress
    ends_at: float

    def remaining(self) -> float:
        return max(0.001, self.ends_at - time.monotonic())


class _Failed(Exception):
    """Ends the conversation with this result."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


class _WrongTransport(Exception):
    """The first request answered 400, 404 or 405: no server of this transport at the URL."""

    def __init__(self, step: str, response: httpx.Response, exchanged: Exchange) -> None:
        super().__init__(f"{step} → {response.status_code}")
        self.status_code = response.status_code
        self.phases = MappingProxyType(dict(exchanged.phases))


async def _attempt(link: _Link, ctx: CheckContext) -> CheckResult:
    assert link.service.mcp is not None, "config validation guarantees an mcp block"
    order = _transport_order(link.service, ctx)
    tried: list[str] = []
    for transport in order:
        conversation = _CONVERSATIONS[transport](link)
        try:
            result = await conversation.run()
        except _WrongTransport as wrong:
            tried.append(str(wrong))
            if len(tried) < len(order):
                continue
            _forget(link.service, ctx)
            where = "" if link.service.mcp.transport == "auto" else f" for transport {transport}"
            return CheckResult.failure(
                Reason.HTTP_STATUS,
                f"{'; '.join(tried)}: no MCP endpoint{where} at this URL",
                status_code=wrong.status_code,
                phases=wrong.phases,
            )
        except BaseException:  # a timeout or a transport error: retried, in the usual order
            _forget(link.service, ctx)
            raise
        if result.mcp is None:
            _forget(link.service, ctx)
        elif link.service.mcp.transport == "auto":
            ctx.mcp_transports[link.service.id] = (link.service, transport)
        if tried and result.mcp is None:  # this transport failed too, before any MCP answer
            result = replace(result, message="; ".join([*tried, result.message]))
        return result
    raise AssertionError("every transport order is non-empty")


def _forget(service: ServiceConfig, ctx: CheckContext) -> None:
    """A transport that failed before any MCP answer is not tried first again: the next attempt
    follows the specification's order, so a server that changed transport is found again."""
    ctx.mcp_transports.pop(service.id, None)


def _transport_order(service: ServiceConfig, ctx: CheckContext) -> tuple[str, ...]:
    assert service.mcp is not None
    if service.mcp.transport != "auto":
        return (service.mcp.transport,)
    remembered = ctx.mcp_transports.get(service.id)
    if remembered is not None and remembered[0] is service and remembered[1] == LEGACY_SSE:
        return (LEGACY_SSE, STREAMABLE_HTTP)
    return (STREAMABLE_HTTP, LEGACY_SSE)


class _Conversation:
    """initialize → notifications/initialized → tools/list, over one transport (subclasses)."""

    transport: str

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.service = link.service
        self.ids = itertools.count(1)
        self.status_code = 0
        self.phases: MappingProxyType = MappingProxyType({})
        self.cert_expiry: float | None = None
        self.server: McpDetails | None = None

    async def run(self) -> CheckResult:
        """The conversation's result; raises _WrongTransport, or a transport error to retry."""
        try:
            async with self.connected():
                try:
                    result = await self.converse()
                except _Failed as failed:
                    result = failed.result
                await self.end_session()
                return result
        except _Failed as failed:
            return failed.result

    async def converse(self) -> CheckResult:
        await self.initialize()
        tools = await self.list_tools()
        assert self.service.mcp is not None
        missing = [name for name in self.service.mcp.expect_tools if name not in tools]
        if missing:
            self.fail(Reason.BODY_MISMATCH, f"missing tools: {', '.join(missing)}")
        return CheckResult(True, Reason.OK, **self.details())

    async def initialize(self) -> None:
        started = time.perf_counter()
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        }
        result = await self.request("initialize", params, first=True)
        version, server = result.get("protocolVersion"), result.get("serverInfo")
        if not isinstance(version, str) or not version:
            self.fail(Reason.INVALID_RESPONSE, "initialize: the result names no protocolVersion")
        if not isinstance(server, dict) or not isinstance(server.get("name"), str):
            self.fail(Reason.INVALID_RESPONSE, "initialize: the result has no serverInfo.name")
        self.server = McpDetails(
            transport=self.transport,
            protocol_version=_label(version),
            server_name=_label(server["name"]),
            server_version=_label(str(server.get("version", ""))),
            initialize_seconds=time.perf_counter() - started,
        )
        await self.notify("notifications/initialized")

    async def list_tools(self) -> list[str]:
        started = time.perf_counter()
        names: list[str] = []
        cursor = None
        for _ in range(MAX_TOOL_PAGES):
            result = await self.request("tools/list", {"cursor": cursor} if cursor else {})
            tools = result.get("tools")
            if not isinstance(tools, list):
                self.fail(Reason.INVALID_RESPONSE, "tools/list: the result has no tools list")
            names += [tool["name"] for tool in tools if isinstance(tool, dict) and "name" in tool]
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        else:
            self.fail(Reason.INVALID_RESPONSE, f"tools/list: more than {MAX_TOOL_PAGES} pages")
        assert self.server is not None
        self.server = replace(
            self.server, tools=len(names), tools_list_seconds=time.perf_counter() - started
        )
        return names

    # What a transport provides.

    def connected(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def request(self, method: str, params: dict[str, Any], first: bool = False) -> dict:
        raise NotImplementedError

    async def notify(self, method: str) -> None:
        raise NotImplementedError

    async def end_session(self) -> None:
        """Release what the server keeps for this conversation (nothing by default)."""

    # Shared by both transports.

    def message(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON-RPC request (with a new id) or, without params, a notification."""
        if params is None:
            return {"jsonrpc": "2.0", "method": method}
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self.ids), "method": method}
        return body | ({"params": params} if params else {})

    def record(self, ex: Exchange, first: bool) -> None:
        """The first request is the main one: its status, phases and certificate are reported."""
        if first:
            self.status_code = ex.response.status_code
            self.phases = MappingProxyType(ex.phases)
            self.cert_expiry = ex.cert_expiry

    async def answer_on(self, events: AsyncIterator[Event], request_id: int, method: str) -> dict:
        """The result of request `request_id` from an event stream, skipping other messages."""
        while True:
            try:
                event = await anext(events, None)
            except StreamTooLong:
                limit = self.service.max_body_bytes
                self.fail(Reason.INVALID_RESPONSE, f"{method}: no answer in {limit} bytes")
            if event is None:
                self.fail(Reason.INVALID_RESPONSE, f"{method}: the event stream ended unanswered")
            if event.name != "message" or not event.data.strip():
                continue  # e.g. a priming event that only carries an id
            try:
                message = json.loads(event.data)
            except ValueError:
                self.fail(Reason.INVALID_RESPONSE, f"{method}: a message event is not JSON")
            if isinstance(message, dict) and message.get("id") == request_id:
                return self.result_of(message, method)

    def result_of(self, message: Any, method: str) -> dict:
        """The `result` of a JSON-RPC answer; a JSON-RPC error ends the check with its text."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            self.fail(Reason.INVALID_RESPONSE, f"{method}: the answer is not JSON-RPC 2.0")
        error = message.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            text = error.get("message") if isinstance(error, dict) else error
            self.fail(Reason.INVALID_RESPONSE, f"{method} → JSON-RPC error {code}: {_short(text)}")
        result = message.get("result")
        if not isinstance(result, dict):
            self.fail(Reason.INVALID_RESPONSE, f"{method}: the answer has no result object")
        return result

    def check_status(self, ex: Exchange, step: str, first: bool) -> None:
        """A first request's 400/404/405 means another transport; any other non-2xx ends here."""
        status = ex.response.status_code
        if first and status in NOT_THIS_TRANSPORT:
            raise _WrongTransport(step, ex.response, ex)
        if not 200 <= status < 300:
            ex.mark_transfer_done()
            self.status_code = status
            raise _Failed(status_failure(ex.response, step, **self.details()))

    def details(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "phases": self.phases,
            "cert_expiry": self.cert_expiry,
            "mcp": self.server,
        }

    def fail(self, reason: Reason, message: str) -> NoReturn:
        raise _Failed(CheckResult.failure(reason, message, **self.details()))


class _StreamableHttp(_Conversation):
    transport = STREAMABLE_HTTP

    def __init__(self, link: _Link) -> None:
        super().__init__(link)
        self.session_id: str | None = None

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        yield  # every message is its own request

    async def request(self, method: str, params: dict[str, Any], first: bool = False) -> dict:
        body = self.message(method, params)
        step = f"POST {method}"
        self.link.progress.step = step
        async with self.post(body) as ex:
            self.record(ex, first)
            self.check_status(ex, step, first)
            if first:
                self.session_id = ex.response.headers.get("mcp-session-id")
            content_type = ex.response.headers.get("content-type", "")
            if content_type.startswith(EVENT_STREAM):
                events = read_events(ex.response.aiter_bytes(), self.service.max_body_bytes)
                try:
                    return await self.answer_on(events, body["id"], method)
                finally:
                    ex.mark_transfer_done()
                    await events.aclose()
            if content_type.startswith(JSON_TYPE):
                return self.result_of(await self.json_body(ex, method), method)
            self.fail(
                Reason.INVALID_RESPONSE,
                f"{step} → {ex.response.status_code} with content-type {content_type!r}, "
                f"expected {JSON_TYPE} or {EVENT_STREAM}",
            )

    async def notify(self, method: str) -> None:
        step = f"POST {method}"
        self.link.progress.step = step
        async with self.post(self.message(method)) as ex:
            self.check_status(ex, step, first=False)

    async def end_session(self) -> None:
        """DELETE the session; a server that keeps none may refuse (405), which is fine."""
        if self.session_id is None:
            return
        self.link.progress.step = "DELETE session"
        with contextlib.suppress(httpx.HTTPError, TimeoutError):
            async with asyncio.timeout(self.link.remaining() * 0.9):
                await self.link.client.delete(
                    self.service.parsed_url,
                    headers=dict(self.service.headers) | self.session_headers(),
                    timeout=self.link.remaining(),
                )

    def post(self, body: dict[str, Any]) -> contextlib.AbstractAsyncContextManager[Exchange]:
        headers = {"Accept": f"{JSON_TYPE}, {EVENT_STREAM}", **self.session_headers()}
        link = self.link
        return exchange(
            link.client, self.service, "POST", self.service.parsed_url, link.remaining(),
            json=body, headers=headers,
        )  # fmt: skip

    def session_headers(self) -> dict[str, str]:
        headers = {}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        if self.server is not None:
            headers["MCP-Protocol-Version"] = self.server.protocol_version
        return headers

    async def json_body(self, ex: Exchange, method: str) -> Any:
        body, truncated = await ex.read_body(self.service.max_body_bytes)
        try:
            return parse_json(body, truncated)
        except InvalidJSON as exc:
            self.fail(Reason.INVALID_RESPONSE, f"{method}: {exc}")


class _LegacySse(_Conversation):
    transport = LEGACY_SSE

    def __init__(self, link: _Link) -> None:
        super().__init__(link)
        self.endpoint = ""
        self.events: AsyncIterator[Event] | None = None

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        """Open the event stream and learn the message endpoint from its first event."""
        step = "GET event stream"
        self.link.progress.step = step
        headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache"}
        async with exchange(
            self.link.client, self.service, "GET", self.service.parsed_url, self.link.remaining(),
            headers=headers,
        ) as ex:  # fmt: skip
            self.record(ex, first=True)
            self.check_status(ex, step, first=True)
            content_type = ex.response.headers.get("content-type", "")
            if not content_type.startswith(EVENT_STREAM):
                self.fail(
                    Reason.INVALID_RESPONSE,
                    f"{step} → {ex.response.status_code} with content-type {content_type!r}, "
                    f"expected {EVENT_STREAM}",
                )
            self.events = read_events(ex.response.aiter_bytes(), self.service.max_body_bytes)
            try:
                self.link.progress.step = f"{step}: waiting for the endpoint event"
                self.endpoint = await self.endpoint_from(await self.first_event())
                ex.mark_transfer_done()
                yield
            finally:
                await self.events.aclose()

    async def first_event(self) -> Event:
        assert self.events is not None
        try:
            event = await anext(self.events, None)
        except StreamTooLong:
            limit = self.service.max_body_bytes
            self.fail(Reason.INVALID_RESPONSE, f"no endpoint event in the first {limit} bytes")
        if event is None:
            self.fail(Reason.INVALID_RESPONSE, "the event stream ended before its endpoint event")
        return event

    async def endpoint_from(self, event: Event) -> str:
        if event.name != "endpoint":
            self.fail(
                Reason.INVALID_RESPONSE,
                f"the first event is {_short(event.name)!r}, expected 'endpoint'",
            )
        endpoint = urljoin(self.service.url, event.data.strip())
        if _origin(endpoint) != _origin(self.service.url):
            self.fail(
                Reason.INVALID_RESPONSE,
                f"the endpoint event points to another origin ({_short(_origin(endpoint))})",
            )
        return endpoint

    async def request(self, method: str, params: dict[str, Any], first: bool = False) -> dict:
        body = self.message(method, params)
        await self.send(body, method)
        self.link.progress.step = f"waiting for the {method} answer on the event stream"
        assert self.events is not None
        return await self.answer_on(self.events, body["id"], method)

    async def notify(self, method: str) -> None:
        await self.send(self.message(method), method)

    async def send(self, body: dict[str, Any], method: str) -> None:
        step = f"POST {method} to the message endpoint"
        self.link.progress.step = step
        async with exchange(
            self.link.client, self.service, "POST", self.endpoint, self.link.remaining(),
            json=body,
        ) as ex:  # fmt: skip
            self.record(ex, first=False)
            self.check_status(ex, step, first=False)


_CONVERSATIONS: Final[dict[str, type[_Conversation]]] = {
    STREAMABLE_HTTP: _StreamableHttp,
    LEGACY_SSE: _LegacySse,
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _label(value: str) -> str:
    return value[:LABEL_LENGTH]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."
