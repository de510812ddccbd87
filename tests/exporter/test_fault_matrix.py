"""Every network fault at once against the real exporter process, with a healthy service beside.

One exporter (`python -m exporter`, trusting a test CA through OpenSSL's SSL_CERT_FILE) checks a
service per fault on loopback servers, every second, for several rounds. Each fault must end with
its reason within a bounded time; the healthy control service, checked every 100 ms, must stay on
schedule throughout; memory and file descriptors must not grow with the rounds.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.exporter.conftest import promtool_check_metrics
from tests.exporter.tls import CertificateAuthority, self_signed

REPO = Path(__file__).resolve().parents[2]
INTERVAL, TIMEOUT, CONTROL_INTERVAL = 1.0, 0.3, 0.1  # seconds
ROUNDS = 8
GIB = 1 << 30
OPENMETRICS = "application/openmetrics-text;version=1.0.0"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    name: str
    reason: str
    message: str = ""
    """Text the check's message must contain: the fault was seen for what it is."""
    service: dict[str, Any] = field(default_factory=dict)


FAULTS = [
    Fault("refused", "connect_error", "refused"),
    Fault("reset", "connect_error", "reset"),
    Fault("unresolvable", "connect_error", "cannot resolve"),
    Fault("hang", "timeout"),
    Fault("headers-then-hang", "timeout"),
    Fault("drip", "timeout"),
    Fault("huge-body", "ok", service={"expect": {"status": [200]}}),
    Fault("self-signed", "tls_error", "self-signed"),
    Fault("expired", "tls_error", "expired"),
    Fault("wrong-host", "tls_error", "mismatch"),
    Fault("garbage", "invalid_response"),
    Fault("job-never-done", "job_timeout", "not finished"),
    Fault("silent-sse", "timeout", service={"kind": "sse"}),
    Fault("valid-tls", "ok"),  # proves the test CA is trusted, so the TLS faults are what fail
]


@dataclass
class Servers:
    """The loopback servers behind the faults, and what they saw."""

    urls: dict[str, str] = field(default_factory=dict)
    huge_bytes_sent: list[int] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def raw(self, name: str, handler: Handler) -> None:
        """A TCP server that reads a request's head, then behaves as `handler` says."""

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                await handler(reader, writer)
            except (OSError, asyncio.IncompleteReadError):
                pass  # the check hung up, as it should
            finally:
                writer.transport.abort()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.urls[name] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

        async def close() -> None:
            server.close()
            await server.wait_closed()

        self.closers.append(close)

    async def app(self, name: str, app: web.Application, **site: Any) -> None:
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0, **site)
        await tcp.start()
        port = tcp._server.sockets[0].getsockname()[1]
        scheme = "https" if site.get("ssl_context") else "http"
        self.urls[name] = f"{scheme}://127.0.0.1:{port}/"
        self.closers.append(runner.cleanup)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the check gives up and closes


async def _headers_then_hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    await reader.read()


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not writer.is_closing():
        writer.write(b".")
        await writer.drain()
        await asyncio.sleep(0.05)


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(bytes(range(256)) * 4 + b"\r\n\r\n")
    await writer.drain()


def _huge(sent: list[int]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {GIB}\r\n\r\n".encode())
        chunk, total = bytes(65536), 0
        try:
            while total < GIB:
                writer.write(chunk)
                await writer.drain()
                total += len(chunk)
        finally:
            sent.append(total)

    return handler


def _ok_app() -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    return app


def _job_app() -> web.Application:
    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"task_id": "7"}, status=202)

    async def poll(request: web.Request) -> web.Response:
        return web.json_response({"state": "PENDING"})

    app = web.Application()
    app.router.add_post("/", submit)
    app.router.add_get("/tasks/{task_id}", poll)
    return app


def _silent_sse_app() -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(3600)  # headers, then never an event
        return response

    app = web.Application()
    app.router.add_get("/", stream)
    return app


async def start_servers(tmp: Path) -> tuple[Servers, CertificateAuthority]:
    servers = Servers()
    ca = CertificateAuthority(tmp)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        servers.urls["refused"] = f"http://127.0.0.1:{unused.getsockname()[1]}/"
    servers.urls["unresolvable"] = "http://no-such-host.invalid/"
    for name, handler in [
        ("reset", _reset),
        ("hang", _hang),
        ("headers-then-hang", _headers_then_hang),
        ("drip", _drip),
        ("garbage", _garbage),
        ("huge-body", _huge(servers.huge_bytes_sent)),
    ]:
        await servers.raw(name, handler)
    certificates = {
        "valid-tls": ca.issue("valid"),
        "expired": ca.issue("expired", days=1, starts=datetime.now(UTC) - timedelta(days=10)),
        "wrong-host": ca.issue("wrong-host", host="other.test"),
        "self-signed": self_signed(tmp),
    }
    for name, certificate in certificates.items():
        await servers.app(name, _ok_app(), ssl_context=certificate.server_context())
    await servers.app("control", _ok_app())
    await servers.app("job-never-done", _job_app())
    await servers.app("silent-sse", _silent_sse_app())
    return servers, ca


def milliseconds(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def services_file(path: Path, urls: dict[str, str]) -> None:
    services = [
        {"id": "control", "url": urls["control"], "interval": milliseconds(CONTROL_INTERVAL)}
    ]
    for fault in FAULTS:
        entry = {"id": fault.name, "url": urls[fault.name], **fault.service}
        if fault.name == "job-never-done":
            poll_url = urls[fault.name] + "tasks/{id}"
            job = {"poll_url": poll_url, "poll_interval": "50ms", "deadline": milliseconds(TIMEOUT)}
            entry |= {"kind": "async_job", "method": "POST", "job": job}
        services.append(entry)
    defaults = {
        "interval": milliseconds(INTERVAL),
        "timeout": milliseconds(TIMEOUT),
        "retries": {"attempts": 1, "backoff": "10ms"},
    }
    path.write_text(json.dumps({"defaults": defaults, "services": services}))


def process_usage(pid: int) -> tuple[float, int]:
    """RSS in MiB and open file descriptors of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class MatrixRun:
    results: dict[str, dict]
    metrics_text: str
    metrics_openmetrics: str
    usage_warm: tuple[float, int]
    usage_end: tuple[float, int]
    control_checks: float
    control_overruns: float
    measured_seconds: float
    huge_bytes_sent: list[int]


def checks_done(entry: dict) -> int:
    return entry["checks"]["success"] + entry["checks"]["failure"]


class ExporterClient:
    """The running exporter, read over HTTP as an operator would."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session = session
        self._base = base

    async def wait_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with self._session.get(f"{self._base}/-/healthy") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise AssertionError("the exporter did not start")

    async def results(self) -> dict[str, dict]:
        async with self._session.get(f"{self._base}/api/v1/results") as response:
            return {entry["service"]: entry for entry in (await response.json())["services"]}

    async def once_every_service_has(self, checks: int, timeout: float = 30) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            results = await self.results()
            if min(checks_done(entry) for entry in results.values()) >= checks:
                return results
            await asyncio.sleep(0.1)
        raise AssertionError(f"not every service had {checks} checks within {timeout} s")

    async def metrics(self, accept: str = "") -> str:
        headers = {"Accept": accept} if accept else {}
        async with self._session.get(f"{self._base}/metrics", headers=headers) as response:
            return await response.text()


async def run_matrix(tmp: Path) -> MatrixRun:
    servers, ca = await start_servers(tmp)
    config = tmp / "services.yml"
    services_file(config, servers.urls)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "exporter", "--config.file", str(config), "--log.level", "error"),
        *("--web.listen-address", f"127.0.0.1:{port}"),
        cwd=REPO,
        env={**os.environ, "SSL_CERT_FILE": str(ca.cert_file)},
    )
    try:
        async with aiohttp.ClientSession() as session:
            exporter = ExporterClient(session, f"http://127.0.0.1:{port}")
            await exporter.wait_healthy()
            warm = await exporter.once_every_service_has(2)
            usage_warm = process_usage(process.pid)
            started = time.monotonic()
            final = await exporter.once_every_service_has(ROUNDS)
            measured = time.monotonic() - started
            usage_end = process_usage(process.pid)
            text, openmetrics = await exporter.metrics(), await exporter.metrics(OPENMETRICS)
        control_before, control_after = warm["control"], final["control"]
        return MatrixRun(
            results=final,
            metrics_text=text,
            metrics_openmetrics=openmetrics,
            usage_warm=usage_warm,
            usage_end=usage_end,
            control_checks=checks_done(control_after) - checks_done(control_before),
            control_overruns=control_after["overruns"] - control_before["overruns"],
            measured_seconds=measured,
            huge_bytes_sent=list(servers.huge_bytes_sent),
        )
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
        await servers.close()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> MatrixRun:
    return asyncio.run(run_matrix(tmp_path_factory.mktemp("faults")))


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_fault_ends_with_its_reason_in_bounded_time(matrix, fault):
    entry = matrix.results[fault.name]
    assert entry["reason"] == fault.reason, entry["message"]
    assert fault.message in entry["message"]
    assert entry["duration_seconds"] < TIMEOUT + 0.6  # slack for a loaded machine, not seconds


def test_huge_body_is_read_only_up_to_max_body_bytes(matrix):
    assert matrix.huge_bytes_sent, "the huge body was never requested"
    # 1 MiB read, the rest refused: socket buffers hold a few MiB at most, never the GiB.
    assert max(matrix.huge_bytes_sent) < 32 << 20


def test_control_service_stays_on_schedule_throughout(matrix):
    assert matrix.results["control"]["reason"] == "ok"
    expected = matrix.measured_seconds / CONTROL_INTERVAL
    # A fault that held the event loop would make most of them late; a busy machine, a few.
    assert matrix.control_checks >= 0.6 * expected
    assert matrix.control_overruns <= 0.25 * matrix.control_checks


def test_memory_and_file_descriptors_do_not_grow_with_the_rounds(matrix):
    (rss_warm, fds_warm), (rss_end, fds_end) = matrix.usage_warm, matrix.usage_end
    assert rss_end - rss_warm < 20, f"RSS grew from {rss_warm:.1f} to {rss_end:.1f} MiB"
    assert fds_end <= fds_warm + len(FAULTS), f"open files grew from {fds_warm} to {fds_end}"


def test_metrics_during_faults_pass_promtool_and_the_openmetrics_parser(matrix):
    promtool_check_metrics(matrix.metrics_text)
    families = {
        family.name for family in text_string_to_metric_families(matrix.metrics_openmetrics)
    }
    assert {
        "probe_success",
        "probe_result_info",
        "status_exporter_scheduling_lag_seconds",
    } <= families
