"""The simulated MCP server answers as the SDK's servers do (a second witness for the mcp check),
and each of its failure modes reaches the check as the reason an operator would need."""

import aiohttp
import pytest

from exporter.checks import KINDS, Reason
from tests.exporter.conftest import eventually


@pytest.fixture
def mcp(make_service, base_url):
    def make(path="/mcp", **overrides):
        overrides.setdefault("mcp", {"expect_tools": ["get_text", "text_search"]})
        return make_service(kind="mcp", url=base_url + path, **overrides)

    return make


async def test_it_speaks_both_transports_where_real_servers_do(base_url):
    async with aiohttp.ClientSession() as session:
        async with session.get(base_url + "/mcp") as response:
            assert response.status == 405  # Streamable HTTP: no stream without a session
        headers = {"Accept": "text/event-stream"}
        async with session.get(base_url + "/sse", headers=headers) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            first = await response.content.readuntil(b"\n\n")
    assert first.startswith(b"event: endpoint\ndata: /messages/?session_id=")


@pytest.mark.parametrize(("path", "transport"), [("/mcp", "streamable_http"), ("/sse", "sse")])
async def test_auto_passes_and_leaves_no_session_behind(mcp, ctx, sim, path, transport):
    result = await KINDS["mcp"](mcp(path), ctx)
    assert result.success, result.message
    assert result.mcp.transport == transport
    assert result.mcp.tools == 3
    await eventually(lambda: sim.mcp_sessions == {})  # deleted, or the stream was closed


@pytest.mark.parametrize(
    ("mode", "reason", "attempts", "message"),
    [
        ("error", Reason.HTTP_STATUS, 3, "POST initialize returned unexpected HTTP status 503"),
        ("hang", Reason.TIMEOUT, 2, "POST initialize: "),
        (
            "wrong_content_type",
            Reason.INVALID_RESPONSE,
            1,
            "POST initialize → 200 with content-type 'text/html; charset=utf-8', "
            "expected application/json or text/event-stream",
        ),
        ("close", Reason.INVALID_RESPONSE, 1, "initialize: the event stream ended unanswered"),
        ("missing_tool", Reason.BODY_MISMATCH, 1, "missing tools: text_search"),
        ("rpc_error", Reason.INVALID_RESPONSE, 1, "tools/list → JSON-RPC error -32603: "),
    ],
)
async def test_failure_modes_have_their_reason_and_text(
    mcp, ctx, sim, mode, reason, attempts, message
):
    sim.set_mode("mcp", mode)
    retries = {"attempts": 3 if mode == "error" else 2, "backoff": "10ms"}
    result = await KINDS["mcp"](mcp(timeout="300ms", retries=retries), ctx)
    assert (result.success, result.reason, result.attempts) == (False, reason, attempts)
    assert result.message.startswith(message), result.message
