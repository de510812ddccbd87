"""Service down → Prometheus → Alertmanager → Slack, with the real binaries and production rules."""

import asyncio
import time

from tests.e2e.conftest import MEASURED

QUIET = 6.0
"""Seconds of silence that prove nothing more is coming (`for` 2s + group wait 1s + slack)."""


def firing(message) -> bool:
    return message.title.startswith(":red_circle:")


async def test_linker_down_then_up_sends_one_firing_and_one_resolved_message(
    stack, sim, fake_slack
):
    down_at = time.monotonic()
    sim.set_mode("linker", "failure")
    message = await fake_slack.wait_for(firing)
    MEASURED.append(f"linker down → Slack firing message: {message.received_at - down_at:.1f} s")
    assert message.title == ":red_circle: Linker API is down"
    assert message.field("Reason") == "job_failed"
    assert message.field("Status") == "DOWN (critical)"
    assert message.body["channel"] == "#sefaria-down"
    await asyncio.sleep(QUIET)
    assert fake_slack.titles() == [":red_circle: Linker API is down"]

    up_at = time.monotonic()
    sim.set_mode("linker", "ok")
    resolved = await fake_slack.wait_for(lambda m: m.title.startswith(":large_green_circle:"))
    MEASURED.append(f"linker up → Slack resolved message: {resolved.received_at - up_at:.1f} s")
    assert resolved.title == ":large_green_circle: Resolved: Linker API is down"
    assert resolved.field("Downtime").endswith("s")
    assert resolved.field("Downtime") != "ongoing"
    await asyncio.sleep(QUIET)
    assert len(fake_slack.slack) == 2
    hooks = [m for m in fake_slack.messages if m.path == "/hooks/alertmanager"]
    assert [hook.body["status"] for hook in hooks] == ["firing", "resolved"]


async def test_a_blip_absorbed_by_a_retry_sends_nothing(stack, sim, fake_slack):
    before = sim.requests["sefaria-org"]
    sim.set_mode("sefaria-org", "flaky")  # the next request fails once, the retry passes
    await asyncio.sleep(QUIET)
    assert sim.requests["sefaria-org"] > before + 1
    failures = stack.query('probe_checks_total{service="sefaria-org",result="failure"}')
    assert float(failures[0]["value"][1]) == 0
    assert fake_slack.messages == []


async def test_killed_exporter_fires_exporter_down_and_no_service_alerts(stack, fake_slack):
    killed_at = time.monotonic()
    stack.kill("exporter")
    message = await fake_slack.wait_for(firing)
    MEASURED.append(f"exporter killed → Slack message: {message.received_at - killed_at:.1f} s")
    address = stack.address("exporter")
    assert (
        message.title
        == f":red_circle: The sefaria-status exporter at {address} is not being scraped"
    )
    await asyncio.sleep(QUIET)
    assert fake_slack.titles() == [message.title]


async def test_two_services_down_and_up_reach_slack_once_each_with_the_status_page_hung(
    hung_statuspage, stack, sim, fake_slack
):
    """Alerting never depends on the status page: its hook hangs, Slack hears everything once."""
    sim.set_mode("linker", "failure")
    sim.set_mode("mcp", "error")
    firing = [
        ":red_circle: 2 services are down at once",
        ":red_circle: Linker API is down",
        ":red_circle: MCP server is down",
    ]
    for title in firing:
        await fake_slack.wait_for(lambda m, title=title: m.title == title)
    sim.set_mode("linker", "ok")
    sim.set_mode("mcp", "ok")
    await fake_slack.wait_for(
        lambda m: m.title == ":large_green_circle: Resolved: MCP server is down"
    )
    await fake_slack.wait_for(lambda m: m.title.endswith("Resolved: Linker API is down"))
    await asyncio.sleep(QUIET)  # nothing more comes: each message once
    resolved = [
        title.replace(":red_circle: ", ":large_green_circle: Resolved: ") for title in firing
    ]
    assert sorted(fake_slack.titles()) == sorted(firing + resolved)
    assert [m for m in fake_slack.messages if m.path != "/slack"] == []
    assert hung_statuspage.requests, "Alertmanager never called the status page hook"
    assert all(r.startswith(b"POST /hooks/alertmanager ") for r in hung_statuspage.requests)
