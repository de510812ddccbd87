"""End-to-end fixtures: simulated Sefaria, a fake Slack, and the real stack on loopback."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from stack import Stack, Timings

from simulation import Simulation, create_app, services_yaml

MEASURED: list[str] = []
HEARTBEAT_TOKEN = "e2e-heartbeat-token-0123456789"


@dataclass
class Message:
    received_at: float
    path: str
    body: dict[str, Any]

    @property
    def title(self) -> str:
        return self.body["attachments"][0]["title"]

    def field(self, title: str) -> str:
        fields = self.body["attachments"][0]["fields"]
        return next(item["value"] for item in fields if item["title"] == title)


@dataclass
class FakeSlack:
    """Records every webhook POST: Slack messages and the status page hook."""

    messages: list[Message] = field(default_factory=list)

    @property
    def slack(self) -> list[Message]:
        return [message for message in self.messages if message.path == "/slack"]

    def titles(self) -> list[str]:
        return [message.title for message in self.slack]

    async def wait_for(self, predicate, timeout: float = 45.0) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.slack:
                if predicate(message):
                    return message
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching Slack message in {timeout:g}s; got {self.titles()}")


@pytest.fixture
async def fake_slack(aiohttp_server):
    recorder = FakeSlack()

    async def record(request: web.Request) -> web.Response:
        body = json.loads(await request.text())
        recorder.messages.append(Message(time.monotonic(), request.path, body))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/slack", record)
    app.router.add_post("/hooks/alertmanager", record)
    server = await aiohttp_server(app, host="127.0.0.1")
    recorder.url = str(server.make_url("")).rstrip("/")
    return recorder


class HungStatusPage:
    """A status page that accepts the hook's connections, reads the request and never answers,
    as a frozen process would."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.url = ""
        self._release = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            await self._release.wait()
        writer.close()

    def release(self) -> None:
        self._release.set()


@pytest.fixture
async def hung_statuspage() -> AsyncIterator[HungStatusPage]:
    """Requested by a test, it takes the status page's place in that test's stack."""
    hung = HungStatusPage()
    server = await asyncio.start_server(hung.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung.url = f"http://127.0.0.1:{port}/hooks/alertmanager"
    try:
        yield hung
    finally:
        hung.release()
        server.close()
        await server.wait_closed()


@pytest.fixture
def sim() -> Simulation:
    return Simulation(flaky_failures=1, polls_to_finish=2)


@pytest.fixture
async def stack(request, aiohttp_server, sim, fake_slack, tmp_path):
    sim_server = await aiohttp_server(create_app(sim), host="127.0.0.1")
    hook_url = f"{fake_slack.url}/hooks/alertmanager"
    if "hung_statuspage" in request.fixturenames:
        hook_url = request.getfixturevalue("hung_statuspage").url
    services = tmp_path / "services.yml"
    base_url = str(sim_server.make_url("")).rstrip("/")
    services.write_text(services_yaml(base_url, "1s", "50ms", HEARTBEAT_TOKEN))
    running = Stack(
        workdir=tmp_path / "stack",
        services_file=services,
        slack_webhook_url=f"{fake_slack.url}/slack",
        timings=Timings.fast(),
        statuspage_hook_url=hook_url,
    )
    # Started in a thread: the simulated services run on this event loop and must keep answering.
    await asyncio.to_thread(running.start)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("end-to-end alert latency")
        for line in MEASURED:
            terminalreporter.write_line(line)
