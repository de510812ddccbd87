"""The http check against the simulated sefaria.org and small purpose-built servers."""

import asyncio
import itertools
import time

import pytest
from aiohttp import web

from exporter.checks import KINDS, CheckContext, Reason
from exporter.checks.retry import retry_policy
from simulation.app import HUGE_BODY_BYTES
from tests.exporter.tls import CertificateAuthority

TEXTS = "/api/texts/Genesis.1.1"
GENESIS_EXPECT = {"status": [200], "json": {"ref": "Genesis 1:1", "he": "exists"}}
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


async def serve_root(aiohttp_server, handler, ssl=None) -> str:
    """The URL of a loopback server answering GET / with `handler`."""
    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app, host="127.0.0.1", ssl=ssl)
    return str(server.make_url("/"))


async def noting_root(aiohttp_server, note, ssl=None) -> tuple[str, list]:
    """A loopback server answering GET / with "ok": its URL, and `note(request)` of each request."""
    noted = []

    async def answer(request):
        noted.append(note(request))
        return web.Response(text="ok")

    return await serve_root(aiohttp_server, answer, ssl), noted


def peer_of(request: web.Request) -> tuple[str, int]:
    """The client's address and port: which connection a request came on."""
    return request.transport.get_extra_info("peername")


@pytest.fixture
def sefaria(make_service, base_url):
    def make(**overrides):
        entry = {"url": base_url + TEXTS, "expect": GENESIS_EXPECT, **overrides}
        return make_service(**entry)

    return make


async def test_healthy_service_passes_with_phases(sefaria, ctx):
    result = await KINDS["http"](sefaria(), ctx)
    assert result.success, result.message
    assert result.reason is Reason.OK
    assert result.status_code == 200
    assert result.attempts == 1
    assert {"connect", "processing", "transfer"} <= set(result.phases)
    assert 0 < result.duration_seconds < 1
    assert result.cert_expiry is None  # plain http


async def test_server_error_is_retried_then_reported(sefaria, ctx, sim):
    sim.set_mode("sefaria-org", "error")
    result = await KINDS["http"](sefaria(), ctx)
    assert not result.success
    assert result.reason is Reason.HTTP_STATUS
    assert result.status_code == 500
    assert result.attempts == 3
    assert sim.requests["sefaria-org"] == 3


async def test_fails_twice_then_passes_counts_three_attempts(sefaria, ctx, sim):
    sim.set_mode("sefaria-org", "flaky")
    result = await KINDS["http"](sefaria(), ctx)
    assert result.success, result.message
    assert result.attempts == 3


async def test_backoff_doubles_each_retry_up_to_16_backoffs_plus_up_to_one_of_jitter(
    make_service, ctx, aiohttp_server, monkeypatch
):
    arrivals = []

    async def unavailable(request):
        arrivals.append(time.monotonic())
        return web.Response(status=503)

    url = await serve_root(aiohttp_server, unavailable)
    backoff = 0.02
    retries = {"attempts": 7, "backoff": "20ms"}
    service = make_service(url=url, interval="10s", retries=retries)
    waits = []

    async def timed_sleep(seconds):
        waits.append(seconds)
        await asyncio.sleep(seconds)

    monkeypatch.setattr(retry_policy(service.retries), "sleep", timed_sleep)
    result = await KINDS["http"](service, ctx)
    assert (result.reason, result.status_code, result.attempts) == (Reason.HTTP_STATUS, 503, 7)
    doubled = [backoff * factor for factor in (1, 2, 4, 8, 16, 16)]  # capped at 16 backoffs
    jitter = [wait - base for wait, base in zip(waits, doubled, strict=True)]
    assert all(0 <= extra <= backoff for extra in jitter), jitter
    assert len(set(jitter)) > 1  # drawn anew for each wait, not a fixed extra
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == len(waits)
    assert all(gap >= wait - 0.001 for gap, wait in zip(gaps, waits, strict=True)), (gaps, waits)


async def test_client_error_is_not_retried(make_service, ctx, aiohttp_server):
    hits = []

    async def not_found(request):
        hits.append(request.path)
        return web.Response(status=404)

    url = await serve_root(aiohttp_server, not_found)
    result = await KINDS["http"](make_service(url=url), ctx)
    assert (result.reason, result.status_code, result.attempts) == (Reason.HTTP_STATUS, 404, 1)
    assert len(hits) == 1


async def test_hanging_service_times_out_within_budget(sefaria, ctx, sim):
    sim.set_mode("sefaria-org", "hang")
    service = sefaria(timeout="300ms", interval="1s", retries={"attempts": 5, "backoff": "10ms"})
    started = time.monotonic()
    result = await KINDS["http"](service, ctx)
    elapsed = time.monotonic() - started
    assert result.reason is Reason.TIMEOUT
    assert result.transient
    assert 2 <= result.attempts <= 4  # stopped by the 1s budget, not by the 5 attempts
    assert elapsed < 1.5  # never outlives the interval (plus scheduling slack)


async def test_slow_headers_past_timeout_fail_and_within_timeout_pass(sefaria, ctx, sim):
    sim.set_mode("sefaria-org", "slow")
    fast_timeout = sefaria(timeout="200ms", retries={"attempts": 1, "backoff": "10ms"})
    assert (await KINDS["http"](fast_timeout, ctx)).reason is Reason.TIMEOUT
    patient = await KINDS["http"](sefaria(timeout="2s"), ctx)
    assert patient.success
    assert patient.phases["processing"] >= 0.45  # the server's 0.5 s think time


async def test_redirect_is_followed_or_reported(sefaria, ctx, sim):
    sim.set_mode("sefaria-org", "redirect")
    assert (await KINDS["http"](sefaria(), ctx)).success
    no_follow = await KINDS["http"](sefaria(follow_redirects=False), ctx)
    assert (no_follow.reason, no_follow.status_code) == (Reason.HTTP_STATUS, 302)


async def test_wrong_json_is_a_body_mismatch(sefaria, ctx, sim):
    sim.set_mode("sefaria-org", "wrong_json")
    result = await KINDS["http"](sefaria(), ctx)
    assert result.reason is Reason.BODY_MISMATCH
    assert "'ref'" in result.message
    assert result.attempts == 1  # content mismatches are not retried


async def test_body_and_header_expectations(sefaria, ctx):
    ok = sefaria(
        expect={
            "body_contains": ["Genesis"],
            "body_regex": "beginn?ing",
            "headers": {"Content-Type": "application/json.*"},
        }
    )
    assert (await KINDS["http"](ok, ctx)).success
    missing = sefaria(expect={"body_contains": ["Exodus"]})
    assert (await KINDS["http"](missing, ctx)).reason is Reason.BODY_MISMATCH
    wrong_header = sefaria(expect={"headers": {"content-type": "text/html"}})
    assert (await KINDS["http"](wrong_header, ctx)).reason is Reason.HEADER_MISMATCH


async def test_non_json_body_is_invalid_response(make_service, ctx, aiohttp_server):
    async def maintenance(request):
        return web.Response(text="<html>maintenance</html>")

    url = await serve_root(aiohttp_server, maintenance)
    service = make_service(url=url, expect={"json": {"ok": "exists"}})
    assert (await KINDS["http"](service, ctx)).reason is Reason.INVALID_RESPONSE


async def test_huge_body_is_read_only_up_to_the_limit(sefaria, ctx, sim):
    sim.set_mode("sefaria-org", "huge")
    service = sefaria(expect={"status": [200]}, max_body_bytes=65536)
    result = await KINDS["http"](service, ctx)
    assert result.success
    assert sim.requests["sefaria-org"] == 1
    await asyncio.sleep(0.2)  # let the server notice the hang-up
    # Socket buffers hold a few MB at most; the check read 64 KiB and closed the connection.
    assert sim.huge_bytes_sent < HUGE_BODY_BYTES // 4


async def test_connection_refused_is_connect_error(make_service, ctx, unused_tcp_port):
    service = make_service(url=f"http://127.0.0.1:{unused_tcp_port}/")
    result = await KINDS["http"](service, ctx)
    assert (result.reason, result.status_code, result.attempts) == (Reason.CONNECT_ERROR, 0, 3)


async def test_unresolvable_host_is_connect_error(make_service, ctx):
    service = make_service(url="http://no-such-host.invalid/", retries={"attempts": 1})
    result = await KINDS["http"](service, ctx)
    assert result.reason is Reason.CONNECT_ERROR
    assert "no-such-host.invalid" in result.message


async def test_localhost_name_is_resolved_as_its_own_phase(make_service, ctx, sim_server):
    service = make_service(url=f"http://localhost:{sim_server.port}/api/texts/x")
    result = await KINDS["http"](service, ctx)
    assert result.success, result.message
    assert "resolve" in result.phases


async def test_secret_headers_are_sent_but_never_in_repr(make_service, ctx, aiohttp_server):
    url, seen = await noting_root(aiohttp_server, lambda request: request.headers["Authorization"])
    service = make_service(url=url, headers={"Authorization": "Bearer s3"})
    assert (await KINDS["http"](service, ctx)).success
    assert seen == ["Bearer s3"]
    assert "s3" not in repr(service)


async def test_kept_connection_is_reused_between_checks(make_service, ctx, aiohttp_server):
    url, peers = await noting_root(aiohttp_server, peer_of)
    service = make_service(url=url, reuse_connection=True)
    first = await KINDS["http"](service, ctx)
    second = await KINDS["http"](service, ctx)
    assert first.success
    assert second.success
    assert "connect" in first.phases
    assert "connect" not in second.phases
    assert peers[0] == peers[1]  # one connection served both
    await ctx.aclose(service)
    assert service.id not in ctx.kept_clients


async def test_checks_run_concurrently(sefaria, ctx, sim):
    sim.set_mode("sefaria-org", "slow")
    service = sefaria(timeout="2s")
    started = time.monotonic()
    results = await asyncio.gather(*(KINDS["http"](service, ctx) for _ in range(10)))
    assert all(result.success for result in results)
    assert time.monotonic() - started < 2.5  # ten 0.5 s checks, not 5 s in a row


async def test_checks_sharing_one_retry_policy_count_their_own_attempts(
    make_service, ctx, aiohttp_server
):
    async def ok(request):
        await asyncio.sleep(0.02)
        return web.Response(text="ok")

    async def unavailable(request):
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/down", unavailable)
    server = await aiohttp_server(app, host="127.0.0.1")
    up = make_service(url=str(server.make_url("/ok")))
    down = make_service(url=str(server.make_url("/down")))
    assert retry_policy(up.retries) is retry_policy(down.retries)  # built once, shared
    results = await asyncio.gather(*(KINDS["http"](service, ctx) for service in [up, down] * 10))
    assert [(result.success, result.attempts) for result in results] == [(True, 1), (False, 3)] * 10


async def test_every_check_is_a_new_visitor_with_no_cookie_and_its_own_connection(
    make_service, ctx, aiohttp_server
):
    seen = []
    peers = []

    async def remember_me(request):
        seen.append((request.headers.get("Cookie"), request.headers.get("Connection")))
        peers.append(peer_of(request))
        response = web.Response(text="ok")
        response.set_cookie("session", "abc")
        return response

    url = await serve_root(aiohttp_server, remember_me)
    service = make_service(url=url)
    first = await KINDS["http"](service, ctx)
    second = await KINDS["http"](service, ctx)
    assert "connect" in first.phases
    assert "connect" in second.phases
    assert seen == [(None, "close"), (None, "close")]
    assert peers[0] != peers[1]  # two connections, from two client ports


@pytest.fixture
async def proxy():
    """A would-be proxy on loopback: the first bytes of every connection it gets, answering none."""
    received: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(1024))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", received


@pytest.mark.parametrize(("scheme", "reuse_connection"), [("http", False), ("https", False),
                                                          ("https", True)])  # fmt: skip
async def test_proxy_environment_variables_are_ignored(
    scheme, reuse_connection, proxy, make_service, aiohttp_server, tmp_path, monkeypatch
):
    proxy_url, proxy_received = proxy
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, proxy_url)
        monkeypatch.setenv(name.lower(), proxy_url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    ca = CertificateAuthority(tmp_path)
    tls = ca.issue("target").server_context() if scheme == "https" else None
    url, hits = await noting_root(aiohttp_server, lambda request: request.path, ssl=tls)
    service = make_service(url=url, reuse_connection=reuse_connection)
    ctx = CheckContext(ssl_context=ca.client_context())  # its client is made with them set
    try:
        result = await KINDS["http"](service, ctx)
    finally:
        await ctx.aclose()
    assert result.success, result.message
    assert hits == ["/"]
    assert proxy_received == []
