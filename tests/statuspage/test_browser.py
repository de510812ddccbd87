"""A real browser: headless Chromium loads the status page at desktop and phone widths through
the DevTools protocol, with no console errors (CSP violations included), and saves screenshots."""

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.statuspage.helpers import eventually

CHROMIUM = "/usr/bin/chromium"
VIEWPORTS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}


class Browser:
    """Just enough of the Chrome DevTools protocol: navigate, collect errors, screenshot."""

    def __init__(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        self.websocket = websocket
        self.ids = itertools.count(1)
        self.errors: list[str] = []
        self.events: list[str] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        await self.websocket.send_json({"id": message_id, "method": method, "params": params})
        while True:
            message = await self._receive(30)
            if message.get("id") == message_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    async def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while event not in self.events:
            self._event(await self._receive(deadline - time.monotonic()))

    async def _receive(self, timeout: float) -> dict[str, Any]:
        return json.loads((await self.websocket.receive(timeout=timeout)).data)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method", ""), message.get("params", {})
        self.events.append(method)
        if method == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"]["text"])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning"):
            self.errors.append(str(params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            self.errors.append(params["entry"]["text"])


@pytest.fixture
async def browser():
    profile = Path(tempfile.mkdtemp(prefix="statuspage-chromium-"))
    process = await asyncio.create_subprocess_exec(
        *[
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"

        async def port() -> str | None:
            return port_file.read_text().split()[0] if port_file.exists() else None

        devtools = f"http://127.0.0.1:{await eventually(port, timeout=30)}"
        async with aiohttp.ClientSession() as session:
            targets = await (await session.get(f"{devtools}/json/list")).json()
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                browser = Browser(ws)
                for domain in ("Page", "Runtime", "Log"):
                    await browser.call(f"{domain}.enable")
                yield browser
    finally:
        process.terminate()
        await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_status_page_in_chromium(
    browser: Browser, client: TestClient, auth, tmp_path, viewport: str
) -> None:
    await client.post(
        "/admin/api/incidents",
        json={"title": "Search is slow", "impact": "minor", "status": "identified",
              "body": "We found the cause.\n\nA fix is on its way.", "services": ["sefaria-org"]},
        headers=auth,
    )  # fmt: skip
    width, height, mobile = VIEWPORTS[viewport]
    await browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=width, height=height, deviceScaleFactor=1, mobile=mobile,
    )  # fmt: skip
    await browser.call("Page.navigate", url=str(client.make_url("/")))
    await browser.wait_for("Page.loadEventFired")
    await asyncio.sleep(0.2)  # let late console messages arrive
    layout = await browser.call(
        "Runtime.evaluate",
        expression="JSON.stringify({overflow: document.documentElement.scrollWidth > innerWidth,"
        " styled: getComputedStyle(document.body).margin === '0px',"
        " banner: document.querySelector('.banner h1').innerText})",
        returnByValue=True,
    )
    facts = json.loads(layout["result"]["value"])
    screenshot = await browser.call("Page.captureScreenshot", format="png")
    path = tmp_path / f"status-page-{viewport}.png"
    path.write_bytes(base64.b64decode(screenshot["data"]))
    print(f"screenshot: {path}")
    assert browser.errors == []
    assert facts["styled"], "the stylesheet did not load (CSP or path)"
    assert not facts["overflow"], "the page is wider than the viewport"
    assert "Degraded Performance" in facts["banner"]
    assert path.stat().st_size > 10_000
