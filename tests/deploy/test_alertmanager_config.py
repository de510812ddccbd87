"""The production Alertmanager file, templates included, checked by the real amtool."""

import subprocess
from pathlib import Path

import yaml
from stack import Timings

from exporter.durations import parse_duration
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


def test_the_last_cluster_member_decides_before_the_next_flush():
    """In a cluster of three, the last member waits twice the peer timeout (15s by default)
    before it checks what the others sent. If that wait outlasted the group interval, it would
    send its stale copy of a notification the others had already superseded (a firing message
    after the resolved one)."""
    config = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    assert parse_duration(config["route"]["group_interval"]) > 2 * 15
    fast = Timings.fast()
    assert 2 * parse_duration(fast.peer_timeout) < parse_duration(fast.group_interval)


def test_the_commented_receivers_are_valid_once_enabled(tmp_path):
    """README: Discord, PagerDuty and email are "commented and ready to enable". Enabled here as
    an operator would (uncommented, each given a route), the file still passes amtool."""
    text = (ALERTMANAGER / "alertmanager.yml").read_text()
    head, marker, commented = text.partition("  # Other receivers, ready to enable")
    assert marker
    _, _, commented = commented.partition("\n")
    uncommented = "\n".join(line.replace("# ", "", 1) for line in commented.splitlines())
    config = yaml.safe_load(head + uncommented)
    added = {"discord", "pagerduty", "email"}
    assert added <= {receiver["name"] for receiver in config["receivers"]}
    config["route"]["routes"][:0] = [
        {"receiver": name, "matchers": [f'team="{name}"'], "continue": True} for name in added
    ]
    config["templates"] = [str(ALERTMANAGER / "templates" / "*.tmpl")]
    enabled = tmp_path / "alertmanager.yml"
    enabled.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_tool("amtool", "check-config", str(enabled), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - 6 receivers" in result.stdout
