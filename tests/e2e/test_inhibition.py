"""Alertmanager's inhibitions, evaluated by the real Alertmanager with the production file: a
dead exporter holds back only its own alerts, never what the other locations still report."""

import json
import time
import urllib.request
from typing import Any

from stack import (
    DEPLOY,
    Process,
    Timings,
    alertmanager_flags,
    find_binary,
    free_port,
    render_alertmanager,
)

EXPORTER = {"job": "sefaria-status-exporter", "severity": "critical"}


def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {}} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", body, {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def inhibited(url: str) -> dict[tuple[str, ...], bool]:
    """(alertname, service, location) → whether Alertmanager holds the alert back."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        alerts: list[dict[str, Any]] = json.load(response)
    return {
        tuple(a["labels"].get(k, "") for k in ("alertname", "service", "location")): bool(
            a["status"]["inhibitedBy"]
        )
        for a in alerts
    }


def test_a_dead_exporter_holds_back_only_its_own_alerts(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("slack-webhook-url", "statuspage-hook-token"):
        (secrets / name).write_text("http://127.0.0.1:9/nowhere")
    config = tmp_path / "alertmanager.yml"
    production = (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
    config.write_text(render_alertmanager(production, Timings(), secrets, None))
    address = f"127.0.0.1:{free_port()}"
    argv = alertmanager_flags(config, tmp_path / "data", address, f"http://{address}")
    url = f"http://{address}"
    alertmanager = Process(
        "alertmanager",
        [find_binary("prometheus-alertmanager"), *argv],
        tmp_path / "alertmanager.log",
        f"{url}/-/ready",
    )
    alertmanager.start()
    try:
        alertmanager.wait_ready()
        eu = {"instance": "eu.example.org:9115", "location": "eu"}
        us = {"instance": "us.example.org:9115", "location": "us"}
        post_alerts(
            url,
            [
                {"alertname": "ExporterDown", **EXPORTER, **eu},
                {"alertname": "ProbesStale", **EXPORTER, **eu, "service": "linker"},
                {"alertname": "ProbesStale", **EXPORTER, **us, "service": "mcp"},
                {"alertname": "ServiceDown", "severity": "critical", "service": "linker"},
                {"alertname": "ServiceDown", "severity": "critical", "service": "mcp"},
            ],
        )
        expected = {
            ("ExporterDown", "", "eu"): False,
            ("ProbesStale", "linker", "eu"): True,
            ("ProbesStale", "mcp", "us"): False,
            ("ServiceDown", "linker", ""): False,
            ("ServiceDown", "mcp", ""): False,
        }
        deadline = time.monotonic() + 15
        while (seen := inhibited(url)) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen == expected
    finally:
        alertmanager.stop()
