"""Alertmanager's inhibitions, evaluated by the real Alertmanager with the production file: a
dead exporter holds back only its own alerts, never what the other locations still report; a
critical alert holds back the warning of the same name for the same service only."""

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


def service_alert(name: str, severity: str, service: str, **labels: str) -> dict[str, str]:
    return {"alertname": name, "severity": severity, "service": service, **labels}


def inhibited(url: str) -> dict[tuple[str, ...], bool]:
    """(alertname, service, location, severity) → whether Alertmanager holds the alert back."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        alerts: list[dict[str, Any]] = json.load(response)
    return {
        tuple(
            a["labels"].get(k, "") for k in ("alertname", "service", "location", "severity")
        ): bool(a["status"]["inhibitedBy"])
        for a in alerts
    }


def test_inhibitions_hold_back_only_what_they_should(tmp_path):
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
                service_alert("ServiceDown", "critical", "linker"),
                service_alert("ServiceDown", "critical", "mcp"),
                # Both levels for one service, the warning alone for another, and a warning of
                # another name: only the first warning is held back.
                service_alert("TLSCertificateExpiring", "critical", "linker"),
                service_alert("TLSCertificateExpiring", "warning", "linker"),
                service_alert("TLSCertificateExpiring", "warning", "mcp"),
                service_alert("ErrorBudgetBurn", "critical", "mcp", window="fast"),
                service_alert("ErrorBudgetBurn", "warning", "mcp", window="slow"),
                service_alert("ErrorBudgetBurn", "warning", "linker", window="slow"),
                service_alert("ServiceDegraded", "warning", "linker"),
            ],
        )
        expected = {
            ("ExporterDown", "", "eu", "critical"): False,
            ("ProbesStale", "linker", "eu", "critical"): True,
            ("ProbesStale", "mcp", "us", "critical"): False,
            ("ServiceDown", "linker", "", "critical"): False,
            ("ServiceDown", "mcp", "", "critical"): False,
            ("TLSCertificateExpiring", "linker", "", "critical"): False,
            ("TLSCertificateExpiring", "linker", "", "warning"): True,
            ("TLSCertificateExpiring", "mcp", "", "warning"): False,
            ("ErrorBudgetBurn", "mcp", "", "critical"): False,
            ("ErrorBudgetBurn", "mcp", "", "warning"): True,
            ("ErrorBudgetBurn", "linker", "", "warning"): False,
            ("ServiceDegraded", "linker", "", "warning"): False,
        }
        deadline = time.monotonic() + 15
        while (seen := inhibited(url)) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen == expected
    finally:
        alertmanager.stop()
