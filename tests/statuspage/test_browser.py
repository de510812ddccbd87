"""A real browser: headless Chromium loads the status page at desktop and phone widths through
the DevTools protocol, with no console errors (CSP violations included), and saves screenshots;
axe-core (the npm package pinned in package-lock.json) audits the pages in light and dark."""

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.statuspage.helpers import eventually

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (  # headless, and no calls home: this machine has no internet
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
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

    async def load(self, url: str) -> None:
        self.events.clear()
        await self.call("Page.navigate", url=url)
        await self.wait_for("Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        answer = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            raise AssertionError(answer["exceptionDetails"])
        return answer["result"].get("value")

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
            CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
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
    await browser.load(str(client.make_url("/")))
    await asyncio.sleep(0.2)  # let late console messages arrive
    layout = await browser.call(
        "Runtime.evaluate",
        expression="JSON.stringify({overflow: document.documentElement.scrollWidth > innerWidth,"
        " styled: getComputedStyle(document.body).margin === '0px',"
        " banner: document.querySelector('.banner h1').innerText,"
        " refresher: [...document.scripts].map(s => s.src.split('?')[0])})",
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
    assert facts["refresher"] == [str(client.make_url("/static/refresh.js"))]
    assert path.stat().st_size > 10_000


async def open_minor_incident(client: TestClient, auth, body: str) -> dict[str, Any]:
    """A minor incident on the Linker through the admin API, as an operator posts one."""
    answer = await client.post(
        "/admin/api/incidents",
        json={"title": "Search is slow", "impact": "minor", "status": "identified",
              "body": body, "services": ["linker"]},
        headers=auth,
    )  # fmt: skip
    assert answer.status == 201, await answer.text()
    return await answer.json()


async def axe_violations(browser: Browser, url: str) -> list[str]:
    """axe-core's violations on `url` (every rule axe runs by default: WCAG 2.x A/AA and best
    practices), one line each."""
    await browser.load(url)
    await browser.evaluate(AXE.read_text())
    violations = await browser.evaluate(
        "axe.run(document).then(r => r.violations.map(v => v.id + ': ' + v.help + ' — ' +"
        " v.nodes.map(n => n.target.join(' ') + ' (' + n.failureSummary + ')').join('; ')))"
    )
    return [f"{url}: {violation}" for violation in violations]


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_axe_finds_no_accessibility_violations(
    browser: Browser, client: TestClient, auth, scheme: str
) -> None:
    assert AXE.exists(), "axe-core is missing: run `make node_modules/.installed`"
    await browser.call(
        "Emulation.setEmulatedMedia",
        features=[{"name": "prefers-color-scheme", "value": scheme}],
    )
    assert await browser.evaluate(f"matchMedia('(prefers-color-scheme: {scheme})').matches")
    now = datetime.now(UTC)
    window = {"title": "MCP server upgrade", "body": "Short interruptions.", "services": ["mcp"],
              "starts_at": (now - timedelta(minutes=5)).isoformat(),
              "ends_at": (now + timedelta(hours=1)).isoformat()}  # fmt: skip
    assert (await client.post("/admin/api/maintenances", json=window, headers=auth)).status == 201

    async def banner(text: str) -> bool:
        return text in await (await client.get("/")).text()

    await eventually(lambda: banner("Under Maintenance"))
    violations = await axe_violations(browser, str(client.make_url("/")))
    body = "We found the cause.\n\nA fix is on its way."
    incident = await open_minor_incident(client, auth, body)
    await client.post(
        f"/admin/api/incidents/{incident['id']}/updates",
        json={"status": "monitoring", "body": "A fix is deployed."},
        headers=auth,
    )
    await eventually(lambda: banner("Degraded Performance"))
    for path in ("/", f"/incidents/{incident['id']}", "/history", "/incidents/999"):
        violations += await axe_violations(browser, str(client.make_url(path)))
    assert violations == []


LIGHTHOUSE = AXE.parents[1] / ".bin" / "lighthouse"


async def lighthouse_scores(url: str) -> dict[str, float]:
    """Lighthouse (pinned in package-lock.json) with Debian's Chromium: category → 0..100."""
    process = await asyncio.create_subprocess_exec(
        str(LIGHTHOUSE), url, "--only-categories=accessibility,seo", "--output=json",
        "--quiet", f"--chrome-flags={' '.join(CHROMIUM_FLAGS)}",
        env={**os.environ, "CHROME_PATH": CHROMIUM},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    output, errors = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, errors.decode()[-3000:]
    result = json.loads(output)
    failed = [
        f"{name}: {audit['title']}"
        for name, audit in result["audits"].items()
        if audit.get("score") is not None and audit["score"] < 1
        and audit.get("scoreDisplayMode") in ("binary", "numeric")
    ]  # fmt: skip
    print(f"Lighthouse {result['lighthouseVersion']} {url}: failed audits {failed}")
    return {name: round(c["score"] * 100) for name, c in result["categories"].items()}


async def test_lighthouse_scores_accessibility_and_seo_100(client: TestClient, auth) -> None:
    assert LIGHTHOUSE.exists(), "Lighthouse is missing: run `make node_modules/.installed`"
    incident = await open_minor_incident(client, auth, "We found the cause.")
    scores = {
        path: await lighthouse_scores(str(client.make_url(path)))
        for path in ("/", f"/incidents/{incident['id']}")
    }
    print(f"Lighthouse scores: {scores}")
    for path, score in scores.items():
        assert score["accessibility"] == 100, (path, score)
        assert score["seo"] == 100, (path, score)


async def test_the_status_page_refreshes_itself_only_while_visible(
    browser: Browser, client: TestClient
) -> None:
    """refresh.js with the page's clock moved a minute on: while the tab is hidden its checks
    (every 5 s) reload nothing; once visible again, the page reloads."""
    await browser.load(str(client.make_url("/")))
    await browser.evaluate(
        "window.loadedOnce = true; window.hiddenChecks = 0; const realNow = Date.now;"
        " Date.now = () => realNow() + 61000;"
        " Object.defineProperty(document, 'visibilityState', {configurable: true,"
        " get: () => { window.hiddenChecks += 1; return 'hidden'; }})"
    )

    async def checked_while_hidden() -> bool:
        return await browser.evaluate("window.hiddenChecks") >= 2

    await eventually(checked_while_hidden, timeout=15)
    assert await browser.evaluate("window.loadedOnce") is True  # not reloaded while hidden
    browser.events.clear()
    await browser.evaluate(
        "Object.defineProperty(document, 'visibilityState', {configurable: true,"
        " get: () => 'visible'}); document.dispatchEvent(new Event('visibilitychange'))"
    )
    await browser.wait_for("Page.loadEventFired", timeout=15)
    assert await browser.evaluate("window.loadedOnce") is None  # a fresh page
    assert browser.errors == []
