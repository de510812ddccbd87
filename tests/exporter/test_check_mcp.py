"""The mcp check against real MCP servers of the official SDK, on both transports.

Sefaria's MCP server is FastMCP over the legacy SSE transport at /sse; current servers speak
Streamable HTTP at /mcp, with or without sessions, answering in JSON or as an event stream.
`transport: auto` must pass on each, and every failure must say what happened.
"""

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.checks import KINDS, CheckContext, CheckResult, Reason
from exporter.config import ServiceConfig
from exporter.exposition import scrape
from exporter.results import ResultsStore
from tests.exporter.conftest import promtool_check_metrics, service_from
from tests.exporter.mcp_servers import (
    TOOLS,
    BrokenToolIndex,
    MovingServer,
    RequestLog,
    paged_tools,
    sefaria_like,
    serving,
)

REPO = Path(__file__).resolve().parents[2]
EXPECTED = ["get_text", "text_search"]
OPENMETRICS = "application/openmetrics-text;version=1.0.0"


@dataclass
class Sdk:
    url: str
    """The MCP endpoint (base URL plus /sse or /mcp)."""
    base: str
    server: object
    log: RequestLog


SDK_SERVERS = {
    "legacy_sse": ({}, "/sse"),
    "streamable_stateful": ({}, "/mcp"),
    "streamable_stateless": ({"stateless_http": True}, "/mcp"),
    "streamable_stateless_json": ({"stateless_http": True, "json_response": True}, "/mcp"),
}


@pytest.fixture
async def sdk(request) -> AsyncIterator[Sdk]:
    settings, path = SDK_SERVERS[request.param]
    server = sefaria_like(**settings)
    app = server.sse_app() if path == "/sse" else server.streamable_http_app()
    log = RequestLog()
    async with serving(log.wrap(app)) as base:
        yield Sdk(base + path, base, server, log)


def mcp_service(url: str, **settings) -> ServiceConfig:
    entry = {"kind": "mcp", "url": url, "timeout": "2s", "interval": "10s"}
    entry["retries"] = settings.pop("retries", {"attempts": 2, "backoff": "10ms"})
    entry["mcp"] = {"expect_tools": EXPECTED, **settings}
    return service_from(entry)


async def check(service: ServiceConfig, ctx: CheckContext) -> CheckResult:
    return await KINDS["mcp"](service, ctx)


@pytest.mark.parametrize("sdk", list(SDK_SERVERS), indirect=True)
async def test_auto_passes_on_every_transport_and_reports_what_it_negotiated(sdk, ctx):
    result = await check(mcp_service(sdk.url), ctx)
    assert result.success, result.message
    assert (result.reason, result.status_code, result.attempts) == (Reason.OK, 200, 1)
    details = result.mcp
    expected_transport = "sse" if sdk.url.endswith("/sse") else "streamable_http"
    assert details.transport == expected_transport
    assert details.server_name == "Sefaria MCP (test)"
    assert details.protocol_version == "2025-11-25"
    assert details.server_version  # the SDK's version
    assert details.tools == len(TOOLS)
    assert 0 < details.initialize_seconds < result.duration_seconds
    assert 0 < details.tools_list_seconds < result.duration_seconds
    assert {"connect", "processing"} <= set(result.phases)


@pytest.mark.parametrize("path", ["/sse", "/mcp"])
async def test_server_chosen_names_become_labels_of_64_characters_in_a_valid_exposition(path, ctx):
    name = ('Sefaria "MCP" \\ ספריא\n' * 500)[:10_000]  # quotes, backslashes, line breaks
    version = "1." * 5_000
    server = sefaria_like(name=name, version=version)
    app = server.sse_app() if path == "/sse" else server.streamable_http_app()
    async with serving(app) as base:
        service = mcp_service(base + path)
        result = await check(service, ctx)
    assert result.success, result.message
    store = ResultsStore()
    store.track([service])
    store.record(service.id, result)
    text = scrape(store.exposition, CollectorRegistry(), "")[0].decode()
    openmetrics = scrape(store.exposition, CollectorRegistry(), OPENMETRICS)[0].decode()
    promtool_check_metrics(text)
    for parsed in (parse_text(text), parse_openmetrics(openmetrics)):
        (info,) = [sample for f in parsed if f.name == "probe_mcp_info" for sample in f.samples]
        assert info.labels["server_name"] == name[:64]
        assert info.labels["server_version"] == version[:64]
        assert len(info.labels["server_name"]) == len(info.labels["server_version"]) == 64


@pytest.mark.parametrize("sdk", ["legacy_sse"], indirect=True)
async def test_auto_falls_back_once_then_remembers_the_transport_until_reload(sdk, ctx):
    service = mcp_service(sdk.url)
    assert (await check(service, ctx)).success
    assert sdk.log.take()[:2] == [("POST", "/sse"), ("GET", "/sse")]  # 405, then the stream
    assert (await check(service, ctx)).success
    assert ("POST", "/sse") not in sdk.log.take()  # straight to the stream
    reloaded = mcp_service(sdk.url)  # a reload makes new service objects
    assert (await check(reloaded, ctx)).success
    assert sdk.log.take()[0] == ("POST", "/sse")


async def test_a_server_that_changes_transport_is_followed_not_paged(ctx):
    """With sessions, GET answers 400 and the same attempt moves on; without, GET opens a stream
    that never names an endpoint: that attempt times out and the retry starts over."""
    for settings, attempts in (({}, 1), ({"stateless_http": True}, 2)):
        moving = MovingServer(**settings)
        log = RequestLog()
        async with serving(log.wrap(moving)) as base:
            service = mcp_service(base + "/mcp")
            service = replace(service, timeout=0.5)
            assert (await check(service, ctx)).mcp.transport == "sse"
            log.take()
            moving.current = moving.streamable
            result = await check(service, ctx)
            assert (result.success, result.mcp.transport, result.attempts) == (
                True, "streamable_http", attempts,
            )  # fmt: skip
            assert log.take()[0] == ("GET", "/mcp")  # the remembered transport first
            assert (await check(service, ctx)).success
            assert log.take()[0] == ("POST", "/mcp")  # then the one that answered


@pytest.mark.parametrize("sdk", ["streamable_stateful"], indirect=True)
async def test_fifty_checks_leave_no_session_open_on_a_stateful_server(sdk, ctx):
    sessions = sdk.server.session_manager._server_instances  # the SDK's own session table
    service = mcp_service(sdk.url)
    counts = []
    for _ in range(50):
        assert (await check(service, ctx)).success
        counts.append(len(sessions))
    assert counts == [0] * 50
    assert sdk.log.entries.count(("DELETE", "/mcp")) == 50


@pytest.mark.parametrize("sdk", ["streamable_stateful", "legacy_sse"], indirect=True)
async def test_a_missing_tool_is_named_and_not_retried(sdk, ctx):
    service = mcp_service(sdk.url, expect_tools=["get_text", "get_manuscript_image"])
    result = await check(service, ctx)
    assert (result.success, result.reason, result.attempts) == (False, Reason.BODY_MISMATCH, 1)
    assert result.message == "missing tools: get_manuscript_image"
    assert result.mcp.tools == len(TOOLS)  # what the server did list is still reported


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
async def test_a_json_rpc_error_is_reported_with_its_code_and_message(path, ctx):
    server = BrokenToolIndex("broken")
    app = server.sse_app() if path == "/sse" else server.streamable_http_app()
    async with serving(app) as base:
        result = await check(mcp_service(base + path), ctx)
    assert (result.success, result.reason, result.attempts) == (False, Reason.INVALID_RESPONSE, 1)
    assert result.message == "tools/list → JSON-RPC error -32603: tool index unavailable"
    assert result.mcp.server_name == "broken"  # initialize had worked
    assert result.mcp.tools is None


@pytest.mark.parametrize(
    ("sdk", "wrong_path"),
    [("legacy_sse", "/mcp"), ("streamable_stateful", "/sse"), ("legacy_sse", "/")],
    indirect=["sdk"],
)
async def test_a_wrong_path_says_there_is_no_mcp_endpoint_there(sdk, wrong_path, ctx):
    result = await check(mcp_service(sdk.base + wrong_path), ctx)
    assert (result.success, result.reason, result.attempts) == (False, Reason.HTTP_STATUS, 1)
    assert result.status_code == 404
    assert result.message == (
        "POST initialize → 404; GET event stream → 404: no MCP endpoint at this URL"
    )


@pytest.mark.parametrize("sdk", ["legacy_sse"], indirect=True)
async def test_a_pinned_transport_is_the_only_one_tried(sdk, ctx):
    result = await check(mcp_service(sdk.url, transport="streamable_http"), ctx)
    assert result.message == (
        "POST initialize → 405: no MCP endpoint for transport streamable_http at this URL"
    )
    assert ("GET", "/sse") not in sdk.log.entries
    assert (await check(mcp_service(sdk.url, transport="sse"), ctx)).success


async def test_every_page_of_tools_is_read(ctx):
    async with serving(paged_tools(pages=3)) as base:
        service = mcp_service(base + "/mcp", expect_tools=["tool_0", "tool_2"])
        result = await check(service, ctx)
    assert result.success, result.message
    assert result.mcp.tools == 3


async def test_endless_pages_end_the_check(ctx):
    async with serving(paged_tools(pages=1000)) as base:
        result = await check(mcp_service(base + "/mcp"), ctx)
    assert (result.reason, result.message) == (
        Reason.INVALID_RESPONSE,
        "tools/list: more than 20 pages",
    )


async def test_the_shipped_url_of_a_legacy_server_fails_with_the_reason_in_once(tmp_path):
    """`python -m exporter --once`: Sefaria's server (legacy SSE) checked at /mcp, then /sse."""
    async with serving(sefaria_like().sse_app()) as base:
        outputs = {}
        for path in ("/mcp", "/sse"):
            config = tmp_path / f"services{path.replace('/', '-')}.yml"
            config.write_text(
                f"services:\n  - {{id: mcp, kind: mcp, url: '{base}{path}', "
                "mcp: {expect_tools: [get_text, text_search]}}\n"
            )
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "exporter", "--config.file", str(config), "--once",
                stdout=asyncio.subprocess.PIPE, cwd=REPO,
            )  # fmt: skip
            stdout, _ = await asyncio.wait_for(process.communicate(), 30)
            outputs[path] = (process.returncode, stdout.decode())
    code, out = outputs["/mcp"]
    assert code == 1
    assert "POST initialize → 404; GET event stream → 404: no MCP endpoint at this URL" in out
    code, out = outputs["/sse"]
    assert code == 0, out
    assert " up " in out.splitlines()[1]


# Failures no SDK server produces, from small purpose-built servers.


async def serve_routes(aiohttp_server, **routes) -> str:
    app = web.Application()
    for route, handler in routes.items():
        method, _, path = route.partition(" ")
        app.router.add_route(method, path, handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def event_stream(
    request: web.Request, *chunks: bytes, then_wait: float = 0
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await asyncio.sleep(then_wait)
    return response


async def test_a_stream_that_never_sends_endpoint_times_out_naming_the_step(aiohttp_server, ctx):
    async def silent(request):
        return await event_stream(request, b": connected\n\n", then_wait=3600)

    base = await serve_routes(aiohttp_server, **{"GET /sse": silent})
    service = service_from(
        {
            "kind": "mcp",
            "url": base + "/sse",
            "timeout": "300ms",
            "interval": "5s",
            "retries": {"attempts": 2, "backoff": "10ms"},
        }
    )
    result = await check(service, ctx)
    assert (result.reason, result.attempts) == (Reason.TIMEOUT, 2)  # timeouts are retried
    assert result.message.startswith("GET event stream: waiting for the endpoint event: ")


async def test_a_first_event_other_than_endpoint_is_named(aiohttp_server, ctx):
    async def chatty(request):
        return await event_stream(request, b"event: message\ndata: {}\n\n", then_wait=3600)

    base = await serve_routes(aiohttp_server, **{"GET /sse": chatty})
    result = await check(mcp_service(base + "/sse"), ctx)
    assert (result.reason, result.attempts) == (Reason.INVALID_RESPONSE, 1)
    assert (
        result.message == "POST initialize → 405; the first event is 'message', expected 'endpoint'"
    )


async def test_an_endpoint_on_another_origin_is_refused(aiohttp_server, ctx):
    async def elsewhere(request):
        return await event_stream(
            request, b"event: endpoint\ndata: https://evil.example/messages\n\n", then_wait=3600
        )

    base = await serve_routes(aiohttp_server, **{"GET /sse": elsewhere})
    result = await check(mcp_service(base + "/sse", transport="sse"), ctx)
    assert result.message == "the endpoint event points to another origin (https://evil.example)"


async def test_streams_and_bodies_are_read_up_to_max_body_bytes(aiohttp_server, ctx):
    sent = []

    async def endless_notifications(request):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        note = b'event: message\ndata: {"jsonrpc": "2.0", "method": "notifications/progress"}\n\n'
        try:
            for _ in range(100_000):
                await response.write(note)
                sent.append(len(note))
        except ConnectionError:
            pass
        return response

    async def huge_json(request):
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {"x": "y" * 200_000}})

    base = await serve_routes(
        aiohttp_server, **{"POST /stream": endless_notifications, "POST /json": huge_json}
    )
    settings = {"kind": "mcp", "url": base + "/stream", "max_body_bytes": 65536}
    result = await check(service_from(settings), ctx)
    assert result.message == "initialize: no answer in 65536 bytes"
    assert sum(sent) < 10_000_000  # we hung up; the server did not get to send it all
    result = await check(service_from({**settings, "url": base + "/json"}), ctx)
    assert (
        result.message == "initialize: body is larger than max_body_bytes, cannot parse it as JSON"
    )


async def test_the_negotiated_version_and_session_go_with_every_later_request(aiohttp_server, ctx):
    seen = []

    async def older_server(request):
        message = await request.json()
        seen.append((request.method, message.get("method"), dict(request.headers)))
        if "id" not in message:
            return web.Response(status=202)
        result = {"tools": [{"name": "get_text"}, {"name": "text_search"}]}
        if message["method"] == "initialize":
            result = {"protocolVersion": "2025-03-26", "serverInfo": {"name": "old"}}
        answer = {"jsonrpc": "2.0", "id": message["id"], "result": result}
        return web.json_response(answer, headers={"Mcp-Session-Id": "s-1"})

    async def delete(request):
        seen.append(("DELETE", None, dict(request.headers)))
        return web.Response(status=405)  # a server may refuse to end sessions

    base = await serve_routes(aiohttp_server, **{"POST /mcp": older_server, "DELETE /mcp": delete})
    result = await check(mcp_service(base + "/mcp"), ctx)
    assert result.success, result.message
    assert result.mcp.protocol_version == "2025-03-26"
    steps = [(method, rpc) for method, rpc, _ in seen]
    assert steps == [
        ("POST", "initialize"),
        ("POST", "notifications/initialized"),
        ("POST", "tools/list"),
        ("DELETE", None),
    ]
    initialize_headers = seen[0][2]
    assert initialize_headers["Accept"] == "application/json, text/event-stream"
    assert initialize_headers["Content-Type"] == "application/json"
    assert "Mcp-Session-Id" not in initialize_headers
    for _, _, headers in seen[1:]:
        assert headers["Mcp-Session-Id"] == "s-1"
        assert headers["MCP-Protocol-Version"] == "2025-03-26"


async def test_server_errors_are_retried_and_client_errors_are_not(aiohttp_server, ctx):
    hits = {"503": 0, "401": 0}

    def status(code):
        async def answer(request):
            hits[str(code)] += 1
            return web.Response(status=code)

        return answer

    base = await serve_routes(
        aiohttp_server, **{"POST /503": status(503), "POST /401": status(401)}
    )
    unavailable = await check(
        mcp_service(base + "/503", retries={"attempts": 3, "backoff": "10ms"}), ctx
    )
    assert (unavailable.reason, unavailable.attempts, hits["503"]) == (Reason.HTTP_STATUS, 3, 3)
    assert unavailable.message == "POST initialize returned unexpected HTTP status 503"
    refused = await check(
        mcp_service(base + "/401", retries={"attempts": 3, "backoff": "10ms"}), ctx
    )
    assert (refused.reason, refused.attempts, hits["401"]) == (Reason.HTTP_STATUS, 1, 1)
