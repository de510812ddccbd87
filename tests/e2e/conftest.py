"""End-to-end fixtures: simulated Sefaria, a fake Slack, and the real stack on loopback."""

import asyncio
import json
import time
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


@pytest.fixture
def sim() -> Simulation:
    return Simulation(flaky_failures=1, polls_to_finish=2)


@pytest.fixture
async def stack(aiohttp_server, sim, fake_slack, tmp_path):
    sim_server = await aiohttp_server(create_app(sim), host="127.0.0.1")
    services = tmp_path / "services.yml"
    base_url = str(sim_server.make_url("")).rstrip("/")
    services.write_text(services_yaml(base_url, "1s", "50ms", HEARTBEAT_TOKEN))
    running = Stack(
        workdir=tmp_path / "stack",
        services_file=services,
        slack_webhook_url=f"{fake_slack.url}/slack",
        timings=Timings.fast(),
        statuspage_hook_url=f"{fake_slack.url}/hooks/alertmanager",
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
