"""The production Alertmanager file, templates included, checked by the real amtool."""

import subprocess
from pathlib import Path

import yaml

from tests.deploy.tools import run_tool

ALERTMANAGER = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tool("amtool", *args, cwd=ALERTMANAGER)


def test_config_and_templates_are_valid():
    result = amtool("check-config", "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


def test_no_secret_is_committed_and_slack_resolves():
    config = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    slack = [c for r in config["receivers"] for c in r.get("slack_configs", [])]
    assert slack
    for receiver in slack:
        assert "api_url" not in receiver
        assert receiver["api_url_file"].startswith("/run/secrets/")
        assert receiver["send_resolved"] is True
        assert receiver["channel"] == "#sefaria-down"
    assert config["route"]["group_by"] == ["alertname", "service", "location", "instance"]
