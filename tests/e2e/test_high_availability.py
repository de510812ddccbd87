"""Scaled out, still exactly once: three exporters (locations), a Prometheus pair and a
three-node Alertmanager cluster, all real binaries on loopback, with the production rules and a
recording Slack. Each location checks its own simulation, so an outage can be seen from one
location or from all.

Exactly-once is decided by counting after a quiet period: no message for longer than the
cluster's members wait before sending (twice the peer timeout) plus a group interval, long
enough for any copy (from a second Alertmanager, a second replica, a changed group) to arrive.
"""

import asyncio
import re
import time
import urllib.request
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from stack import Location, Stack, Timings

from exporter.durations import parse_duration
from simulation import Simulation, create_app, services_yaml
from statuspage.live import Live, load_live
from statuspage.prometheus import PrometheusClient
from tests.e2e.conftest import MEASURED, FakeSlack, Message

LOCATIONS = ("eu", "us", "asia")
TIMINGS = Timings.fast()
QUIET = 2 * parse_duration(TIMINGS.peer_timeout) + parse_duration(TIMINGS.group_interval) + 2.0
"""Seconds without a message after which no duplicate can still come (7 s)."""


class Locations:
    """The simulation each location checks."""

    def __init__(self) -> None:
        # Three failures: one check (three attempts) fails, the next one passes.
        self.simulations = {name: Simulation(flaky_failures=3) for name in LOCATIONS}

    def set_mode(self, service: str, mode: str, where: tuple[str, ...] = LOCATIONS) -> None:
        for name in where:
            self.simulations[name].set_mode(service, mode)


@pytest.fixture
async def ha(aiohttp_server, fake_slack, tmp_path):
    locations = Locations()
    configs = []
    for name, simulation in locations.simulations.items():
        server = await aiohttp_server(create_app(simulation), host="127.0.0.1")
        services = tmp_path / f"services-{name}.yml"
        services.write_text(services_yaml(str(server.make_url("")).rstrip("/"), "1s", "50ms"))
        configs.append(Location(name, services))
    stack = Stack(
        workdir=tmp_path / "stack",
        services_file=configs[0].services_file,
        slack_webhook_url=f"{fake_slack.url}/slack",
        timings=TIMINGS,
        statuspage_hook_url=f"{fake_slack.url}/hooks/alertmanager",
        locations=tuple(configs),
        prometheus_replicas=2,
        alertmanager_replicas=3,
    )
    started = time.monotonic()
    # In a thread: the simulations run on this event loop and must keep answering.
    await asyncio.to_thread(stack.start)
    MEASURED.append(
        f"HA stack (3 exporters, 2 Prometheus, 3 Alertmanagers) started in "
        f"{time.monotonic() - started:.1f} s"
    )
    try:
        yield stack, locations
    finally:
        await asyncio.to_thread(stack.stop)


def firing(service_name: str) -> Callable[[Message], bool]:
    return lambda message: message.title == f":red_circle: {service_name} is down"


def resolved(service_name: str) -> Callable[[Message], bool]:
    return lambda message: message.title == f":large_green_circle: Resolved: {service_name} is down"


async def quiet(slack: FakeSlack, seconds: float = QUIET, bound: float = 60.0) -> None:
    """Until no message has arrived for `seconds` (at most `bound`)."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        last = max([started, *(message.received_at for message in slack.messages)])
        if time.monotonic() - last >= seconds:
            return
        await asyncio.sleep(0.1)


async def wait_for_promql(stack: Stack, promql: str, timeout: float = 30.0) -> None:
    """Until every Prometheus replica answers `promql` with data."""
    for prometheus in stack.prometheuses:
        await asyncio.to_thread(stack.wait_for_query, promql, timeout, prometheus)


async def status_page_view(stack: Stack) -> Live:
    """What the status page reads from Prometheus, through its own queries."""
    async with aiohttp.ClientSession() as session:
        return await load_live(PrometheusClient(session, stack.url("prometheus"), 5.0))


def hooks(slack: FakeSlack, service: str) -> list[str]:
    """Statuses of the ServiceDown webhook posts (the status page's) for `service`."""
    return [
        alert["status"]
        for message in slack.messages
        if message.path == "/hooks/alertmanager"
        for alert in message.body["alerts"]
        if alert["labels"].get("service") == service
    ]


def slack_notifications(stack: Stack, alertmanager: str) -> float:
    """Slack notifications this Alertmanager has sent (its own metric)."""
    with urllib.request.urlopen(f"{stack.url(alertmanager)}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(
        r'^alertmanager_notifications_total\{integration="slack"\} (\S+)$', text, re.M
    )
    return float(match[1]) if match else 0.0


async def outage(
    stack: Stack,
    locations: Locations,
    slack: FakeSlack,
    service: str,
    name: str,
    mode: str,
    during: Callable[[], Awaitable[object]] | None = None,
) -> tuple[Message, Message, str]:
    """Take `service` down from every location until its firing message, await `during`, bring
    the service back up, wait for its resolved message and a quiet period. Returns both
    messages and how long each took."""
    down_at = time.monotonic()
    locations.set_mode(service, mode)
    down = await slack.wait_for(firing(name))
    if during is not None:
        await during()
    up_at = time.monotonic()
    locations.set_mode(service, "ok")
    up = await slack.wait_for(resolved(name))
    await quiet(slack)
    latency = (
        f"down → Slack {down.received_at - down_at:.1f} s, "
        f"up → Slack {up.received_at - up_at:.1f} s"
    )
    return down, up, latency


def count(slack: FakeSlack, name: str) -> tuple[int, int]:
    """(firing, resolved) Slack messages about `name`."""
    return sum(map(firing(name), slack.slack)), sum(map(resolved(name), slack.slack))


def exactly_once(slack: FakeSlack, scenario: str, service: str, name: str, latency: str) -> None:
    """One firing and one resolved Slack message about `name`, and one hook post each."""
    MEASURED.append(f"{scenario}: (firing, resolved) = {count(slack, name)}; {latency}")
    assert count(slack, name) == (1, 1)
    assert hooks(slack, service) == ["firing", "resolved"]


def wait_for_the_sender(stack: Stack, before: dict[str, float], timeout: float = 10.0) -> str:
    """The one Alertmanager whose Slack notifications grew since `before`."""
    deadline = time.monotonic() + timeout
    senders: list[str] = []
    while time.monotonic() < deadline and not senders:
        senders = [
            name
            for name in stack.alertmanagers
            if stack.processes[name].running and slack_notifications(stack, name) > before[name]
        ]
        time.sleep(0.1)
    assert len(senders) == 1, senders
    return senders[0]


@pytest.mark.timeout(300)
async def test_one_outage_is_one_message_whatever_the_scale(ha, fake_slack):
    stack, locations = ha
    started = time.monotonic()

    # 1 and 5, side by side on two services. Linker is down from one location of three: the
    # others outvote it. sefaria.org blips: one failed check (all three attempts) from every
    # location, then passing again; ServiceDown's `for:` absorbs it. Nothing is sent.
    failures = 'probe_checks_total{service="sefaria-org", result="failure"}'
    before_blip = {s["metric"]["location"]: float(s["value"][1]) for s in stack.query(failures)}
    locations.set_mode("linker", "failure", ("eu",))
    locations.set_mode("sefaria-org", "flaky")
    await wait_for_promql(stack, 'service:probe_locations_down:count{service="linker"} == 1')
    await wait_for_promql(stack, f"count(increase({failures}[1m]) > 0) == 3")
    await quiet(fake_slack)
    for prometheus in stack.prometheuses:
        state = stack.query('service:probe_success:quorum{service="linker"}', prometheus)
        assert state[0]["value"][1] == "1", prometheus
    assert (await status_page_view(stack)).probes["linker"].up is True
    after_blip = {s["metric"]["location"]: float(s["value"][1]) for s in stack.query(failures)}
    MEASURED.append(
        f"1. down from 1 of 3 locations, and 5. a blip (one failed check) from all: "
        f"{len(fake_slack.messages)} messages"
    )
    assert fake_slack.messages == []
    assert {name: after_blip[name] - before_blip[name] for name in LOCATIONS} == dict.fromkeys(
        LOCATIONS, 1.0
    )
    locations.set_mode("linker", "ok", ("eu",))
    await wait_for_promql(stack, 'service:probe_locations_down:count{service="linker"} == 0')

    # 2. Down from every location: one firing message, one resolved, one hook post each; the
    # status page says down meanwhile.
    async def the_status_page_agrees() -> None:
        live = await status_page_view(stack)
        assert live.probes["linker"].up is False
        assert "linker" in live.down_since

    down, up, latency = await outage(
        stack, locations, fake_slack, "linker", "Linker API", "failure", the_status_page_agrees
    )
    exactly_once(fake_slack, "2. down from 3 of 3", "linker", "Linker API", latency)
    assert len(fake_slack.slack) == 2
    assert down.title.count("Linker API") == 1
    assert down.field("Locations") == "down from 3 of 3 locations: asia, eu, us"
    assert down.field("Reason") == "job_failed"
    assert down.field("Downtime") == "ongoing"
    assert re.fullmatch(r"(\d+m)?\d+s", up.field("Downtime")), up.field("Downtime")

    # 3. The Alertmanager that sent the firing message dies mid-outage (once the others have
    # had the time to learn that it did): another one sends the resolved message, once.
    before = {name: slack_notifications(stack, name) for name in stack.alertmanagers}
    killed: list[str] = []

    async def kill_the_sender() -> None:
        killed.append(await asyncio.to_thread(wait_for_the_sender, stack, before))
        await quiet(fake_slack)
        stack.kill(killed[0])

    *_, latency = await outage(
        stack, locations, fake_slack, "export-server", "Export Server", "error", kill_the_sender
    )
    scenario = f"3. {killed[0]} (the sender) killed mid-outage"
    exactly_once(fake_slack, scenario, "export-server", "Export Server", latency)

    # 4. A Prometheus replica restarts mid-outage: it loses its alert state (not its data),
    # fires the alert again and sends it to every Alertmanager. No extra message, while the
    # outage goes on or after it.
    async def restart_a_replica() -> None:
        await asyncio.to_thread(stack.restart, "prometheus-b")
        refired = 'ALERTS{alertname="ServiceDown", service="mcp", alertstate="firing"}'
        await asyncio.to_thread(stack.wait_for_query, refired, 30, "prometheus-b")
        await quiet(fake_slack)

    *_, latency = await outage(
        stack, locations, fake_slack, "mcp", "MCP server", "error", restart_a_replica
    )
    exactly_once(fake_slack, "4. prometheus-b restarted mid-outage", "mcp", "MCP server", latency)

    MEASURED.append(f"HA scenarios took {time.monotonic() - started:.1f} s")
    assert len(fake_slack.slack) == 6
