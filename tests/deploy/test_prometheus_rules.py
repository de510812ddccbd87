"""The production Prometheus files, checked and unit-tested by the real promtool."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import run_tool

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tool("promtool", *args, cwd=PROMETHEUS)


def test_config_is_valid():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_are_valid():
    files = sorted(str(path.relative_to(PROMETHEUS)) for path in PROMETHEUS.glob("rules/*.yml"))
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", sorted(p.name for p in (PROMETHEUS / "tests").glob("*.yml")))
def test_rule_unit_tests_pass(test_file):
    result = promtool("test", "rules", f"tests/{test_file}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_unit_test_the_required_annotations_and_a_runbook():
    rules = yaml.safe_load((PROMETHEUS / "rules" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    tested = "\n".join(path.read_text() for path in (PROMETHEUS / "tests").glob("*.yml"))
    readme = (PROMETHEUS.parents[1] / "README.md").read_text()
    for alert in alerts:
        assert re.search(f"alertname: {alert['alert']}\\b", tested), f"{alert['alert']}: no test"
        assert f"### Runbook: {alert['annotations']['runbook']}\n" in readme, alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        assert {"summary", "description", "runbook"} <= alert["annotations"].keys(), alert["alert"]
