"""https checks against a real local TLS server whose certificates come from a test CA."""

import ssl
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.checks import KINDS, CheckContext, Reason
from exporter.results import ResultsStore
from tests.exporter.conftest import FakeClock, metric_value
from tests.exporter.tls import Certificate, CertificateAuthority


@pytest.fixture
def ca(tmp_path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path)


@pytest.fixture
def first_cert(ca) -> Certificate:
    return ca.issue("first", days=10)


@pytest.fixture
def server_context(first_cert) -> ssl.SSLContext:
    return first_cert.server_context()


@pytest.fixture
async def tls_server(aiohttp_server, server_context) -> TestServer:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    return await aiohttp_server(app, host="127.0.0.1", ssl=server_context)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tls_ctx(ca, clock) -> AsyncIterator[CheckContext]:
    context = CheckContext(ssl_context=ca.client_context(), clock=clock)
    yield context
    await context.aclose()


async def test_https_check_times_the_handshake_and_reads_the_expiry(
    make_service, tls_server, tls_ctx, first_cert
):
    service = make_service(url=str(tls_server.make_url("/")))
    result = await KINDS["http"](service, tls_ctx)
    assert result.success, result.message
    assert {"connect", "tls", "processing", "transfer"} <= set(result.phases)
    assert result.cert_expiry == first_cert.not_after.timestamp()


async def test_kept_connection_is_renewed_so_a_new_certificate_shows(
    make_service, tls_server, tls_ctx, ca, first_cert, server_context, clock
):
    """A kept connection has no handshake to read a renewed certificate from, so it is
    opened anew once it is an hour old (`kept_connection_max_age`)."""
    assert tls_ctx.kept_connection_max_age == 3600  # what README promises
    service = make_service(url=str(tls_server.make_url("/")), reuse_connection=True)
    store = ResultsStore()
    store.track([service])

    def exported_expiry() -> float | None:
        return metric_value(store.exposition, "probe_ssl_earliest_cert_expiry", {"service": "svc"})

    first = await KINDS["http"](service, tls_ctx)
    store.record("svc", first)
    assert "tls" in first.phases
    assert exported_expiry() == first_cert.not_after.timestamp()

    renewed = ca.issue("renewed", days=90)
    renewed.serve_from(server_context)  # the server presents it from its next handshake on
    clock.now += tls_ctx.kept_connection_max_age - 1
    reused = await KINDS["http"](service, tls_ctx)
    store.record("svc", reused)
    assert reused.success, reused.message
    assert "tls" not in reused.phases  # the same connection, no handshake
    assert exported_expiry() == first_cert.not_after.timestamp()

    clock.now += 2
    recycled = await KINDS["http"](service, tls_ctx)
    store.record("svc", recycled)
    assert recycled.success, recycled.message
    assert "tls" in recycled.phases
    assert exported_expiry() == renewed.not_after.timestamp()


async def test_certificate_from_an_unknown_authority_is_a_tls_error(
    make_service, tls_server, tmp_path
):
    (tmp_path / "other").mkdir()
    stranger = CertificateAuthority(tmp_path / "other", name="another CA")
    context = CheckContext(ssl_context=stranger.client_context())
    try:
        result = await KINDS["http"](make_service(url=str(tls_server.make_url("/"))), context)
    finally:
        await context.aclose()
    assert result.reason is Reason.TLS_ERROR
    assert "certificate verify failed" in result.message
