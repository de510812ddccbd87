"""The sse check against the simulated legacy MCP event stream, which never ends by itself."""

import time

import pytest

from exporter.checks import KINDS, Reason


@pytest.fixture
def mcp(make_service, base_url):
    def make(**overrides):
        return make_service(kind="sse", url=base_url + "/sse", **overrides)

    return make


async def test_named_event_ends_the_check_long_before_its_timeout(mcp, ctx):
    started = time.monotonic()
    result = await KINDS["sse"](
        mcp(timeout="10s", interval="30s", expect={"event": "endpoint"}), ctx
    )
    assert result.success, result.message
    assert result.status_code == 200
    assert time.monotonic() - started < 1  # the stream stays open; we hang up after the event


async def test_first_event_of_any_name_is_enough_without_expect_event(mcp, ctx):
    assert (await KINDS["sse"](mcp(), ctx)).success


async def test_waiting_for_an_event_that_never_comes_times_out(mcp, ctx):
    service = mcp(timeout="300ms", retries={"attempts": 1}, expect={"event": "never-sent"})
    result = await KINDS["sse"](service, ctx)
    assert result.reason is Reason.TIMEOUT


@pytest.mark.parametrize(
    ("mode", "reason", "status_code"),
    [
        ("wrong_content_type", Reason.HEADER_MISMATCH, 200),
        ("close", Reason.INVALID_RESPONSE, 200),
        ("error", Reason.HTTP_STATUS, 503),
        ("hang", Reason.TIMEOUT, 200),
    ],
)
async def test_failure_modes_have_their_reason(mcp, ctx, sim, mode, reason, status_code):
    sim.set_mode("mcp", mode)
    result = await KINDS["sse"](mcp(timeout="300ms", retries={"attempts": 2}), ctx)
    assert (result.reason, result.success) == (reason, False), result.message
    if reason is not Reason.TIMEOUT:
        assert result.status_code == status_code
