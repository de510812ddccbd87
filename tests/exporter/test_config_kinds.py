"""The services file for the pushed and protocol kinds: `mcp` and `heartbeat`."""

import textwrap

import pytest

from exporter.config import HEARTBEAT_EVALUATION_INTERVAL, ConfigError, parse_config

TOKEN = "0123456789abcdef-token"


def parse(text: str, environ=None):
    return parse_config(textwrap.dedent(text), "test.yml", environ or {})


def test_mcp_defaults_to_auto_and_no_expected_tools():
    (service,) = parse("services: [{id: m, kind: mcp, url: 'https://x/mcp'}]").services
    assert (service.mcp.transport, service.mcp.expect_tools) == ("auto", ())
    assert service.check_interval == service.interval == 60


def test_mcp_block_is_read():
    text = """
        services:
          - id: m
            kind: mcp
            url: https://x/sse
            mcp: {transport: sse, expect_tools: [get_text, text_search]}
    """
    (service,) = parse(text).services
    assert service.mcp.transport == "sse"
    assert service.mcp.expect_tools == ("get_text", "text_search")


def test_heartbeat_needs_no_url_and_reads_its_token_from_the_environment():
    text = """
        defaults: {timeout: 5s, retries: {attempts: 2}}
        services:
          - id: export
            kind: heartbeat
            interval: 24h
            grace: 2h
            token: !env EXPORT_HEARTBEAT_TOKEN
    """
    (service,) = parse(text, {"EXPORT_HEARTBEAT_TOKEN": TOKEN}).services
    assert (service.url, service.interval, service.heartbeat.grace) == ("", 86400, 7200)
    assert service.heartbeat.token == TOKEN
    assert TOKEN not in repr(service)
    assert service.check_interval == HEARTBEAT_EVALUATION_INTERVAL
    assert service.first_check_spread == 0


def test_heartbeat_grace_defaults_to_a_tenth_of_the_interval_and_may_be_zero():
    text = f"""
        services:
          - {{id: a, kind: heartbeat, interval: 10h, token: {TOKEN}}}
          - {{id: b, kind: heartbeat, interval: 5s, grace: 0s, token: {TOKEN}}}
    """
    a, b = parse(text).services
    assert a.heartbeat.grace == 3600
    assert b.heartbeat.grace == 0
    assert b.check_interval == 5  # never evaluated less often than its interval


INVALID = [
    (
        "services: [{id: a, kind: mcp, url: 'http://x/', mcp: {transport: websocket}}]",
        "services[0].mcp.transport",
        "must be one of auto, streamable_http, sse",
    ),
    (
        "services: [{id: a, kind: mcp, url: 'http://x/', mcp: {expect_tools: get_text}}]",
        "services[0].mcp.expect_tools",
        "must be a list",
    ),
    (
        "services: [{id: a, kind: mcp, url: 'http://x/', mcp: {tools: [a]}}]",
        "services[0].mcp.tools",
        "unknown key",
    ),
    (
        "services: [{id: a, kind: mcp, url: 'http://x/', expect: {status: [200]}}]",
        "services[0].expect",
        "does not apply to kind mcp",
    ),
    (
        "services: [{id: a, url: 'http://x/', mcp: {transport: sse}}]",
        "services[0].mcp",
        "only applies to kind mcp",
    ),
    ("services: [{id: a, kind: heartbeat}]", "services[0].token", "is required"),
    (
        "services: [{id: a, kind: heartbeat, token: short}]",
        "services[0].token",
        "at least 16 visible ASCII characters",
    ),
    (
        "services: [{id: a, kind: heartbeat, token: 'has spaces in the token'}]",
        "services[0].token",
        "no spaces",
    ),
    (
        f"services: [{{id: a, kind: heartbeat, token: {TOKEN}, url: 'http://x/'}}]",
        "services[0].url",
        "does not apply to kind heartbeat",
    ),
    (
        f"services: [{{id: a, kind: heartbeat, token: {TOKEN}, timeout: 5s}}]",
        "services[0].timeout",
        "does not apply to kind heartbeat",
    ),
    (
        f"services: [{{id: a, kind: heartbeat, token: {TOKEN}, grace: soon}}]",
        "services[0].grace",
        "duration",
    ),
    (
        "services: [{id: a, kind: heartbeat, token: !env UNSET_TOKEN}]",
        "services[0].token",
        "environment variable UNSET_TOKEN is not set",
    ),
    (
        f"services: [{{id: a, url: 'http://x/', grace: 1h, token: {TOKEN}}}]",
        "services[0].grace",
        "only applies to kind heartbeat",
    ),
]


@pytest.mark.parametrize(("text", "path", "message"), INVALID)
def test_invalid_files_name_the_path_and_the_problem(text, path, message):
    with pytest.raises(ConfigError) as raised:
        parse(text)
    errors = raised.value.errors
    assert any(e.startswith(f"{path}: ") and message in e for e in errors), errors
    assert TOKEN not in str(raised.value)


def test_a_disabled_heartbeat_service_may_wait_for_its_token():
    (service,) = parse("services: [{id: a, kind: heartbeat, enabled: false}]").services
    assert (service.enabled, service.heartbeat.token) == (False, "")
