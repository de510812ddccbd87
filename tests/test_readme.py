"""Every command README.md shows is exercised: by a test (named here, and checked to still run
it), by `make test` itself, or by this file."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme import README, commands

REPO = Path(__file__).resolve().parents[1]
INLINE_COMMAND = re.compile(
    r"`((?:make|\.venv/bin/\S+|python|promtool|amtool|docker compose|docker-compose|curl|kill"
    r"|STATUSPAGE_TOKEN=\S+) [^`]*)`"
)

# (README command pattern, file that exercises it, text in that file showing that it does)
EXERCISED_BY: list[tuple[str, str, str]] = [
    (r"make test$", ".ci/run", "make test"),
    # `make run` and `make demo` call deploy/local/run.py (checked below with `make --dry-run`);
    # `make run` itself would check the real Sefaria, so its tests run it offline.
    (r"make (run|demo)$", "tests/e2e/test_local_run.py", '"local" / "run.py"'),
    (r"make dashboards$", "tests/deploy/test_grafana.py", "grafana_dashboards.main"),
    (r"make bench$", "tests/test_bench.py", "exporter_load.py"),
    (r"\.venv/bin/python bench/", "tests/test_bench.py", "statuspage_load.py"),
    (r"\.venv/bin/python deploy/local/run\.py --help$", "tests/test_readme.py", "run.py --help"),
    (r"(\.venv/bin/)?python -m exporter --config\.check", "tests/exporter/test_cli.py", "check"),
    (r"\.venv/bin/python -m exporter --once$", "tests/exporter/test_cli.py", '"--once"'),
    (r"prometheus --config\.file=", "tests/deploy/test_compose.py", "retention.time=30d"),
    (r"promtool (check|test) ", "tests/deploy/test_prometheus_rules.py", "promtool"),
    (r"amtool check-config", "tests/deploy/test_alertmanager_config.py", "check-config"),
    (
        r"export (DATABASE_URL|ADMIN_TOKENS_FILE)=",
        "tests/statuspage/test_settings_and_cli.py",
        "ADMIN_TOKENS_FILE",
    ),
    # The fuzzed process: the status page started as deployed.
    (r"python -m statuspage$", "tests/statuspage/test_openapi.py", '"-m", "statuspage"'),
    (
        r"\.venv/bin/python -m statuspage --web\.listen-address",
        "tests/e2e/test_local_run.py",
        "127.0.0.1:",
    ),
    (
        r"STATUSPAGE_TOKEN=\S+ python -m statuspage incident",
        "tests/statuspage/test_settings_and_cli.py",
        "STATUSPAGE_TOKEN",
    ),
    (
        r"TOKEN=…; PAGE=|curl -sS ",
        "tests/statuspage/test_readme_examples.py",
        "/admin/api/incidents",
    ),
    (
        r"curl -X POST 'http://127\.0\.0\.1:8000/-/sim/linker\?mode=failure'",
        "tests/e2e/test_local_run.py",
        "/-/sim/linker?mode=failure",
    ),
    (
        r'curl -fsS -X POST -H "Authorization: Bearer \$TOKEN" .*/api/v1/heartbeat/export-job',
        "tests/e2e/test_local_run.py",
        "/api/v1/heartbeat/export-job",
    ),
    (r"curl http://<exporter>:9115/-/healthy", "tests/exporter/test_exporter_app.py", "/-/healthy"),
    (r"kill -HUP <pid>", "tests/exporter/test_exporter_app.py", "signal.SIGHUP"),
    (
        r"curl -X POST http://127\.0\.0\.1:9115/-/reload$",
        "tests/e2e/test_reload.py",
        "post_reload",
    ),
    (r"cp \.env\.example \.env$", "tests/deploy/test_compose.py", ".env.example"),
    (
        r"SLACK_WEBHOOK_URL=\S+ deploy/compose/init-secrets\.sh",
        "tests/deploy/test_compose.py",
        "run_init_secrets",
    ),
    # No Docker engine here: these are checked by docker-compose itself (`config -q`) and by the
    # tests of what the file mounts, runs and publishes.
    (
        r"docker(-| )compose( -f docker-compose\.yml)? (config|up|build)",
        "tests/deploy/test_compose.py",
        '"config", "-q"',
    ),
    (
        r"docker compose -f docker-compose\.yml -f docker-compose\.ha\.yml up -d$",
        "tests/deploy/test_compose.py",
        "resolve(COMPOSE, COMPOSE_HA)",
    ),
    (r"docker compose kill -s HUP ", "tests/e2e/test_reload.py", "docker compose kill -s HUP"),
    (r"docker compose kill -s HUP ", "tests/deploy/test_compose.py", "reloaded_on_sighup"),
    (
        r"docker compose -f docker-compose\.yml -f docker-compose\.ha\.yml kill -s HUP ",
        "tests/deploy/test_compose.py",
        "reloaded_on_sighup(resolved_ha)",
    ),
    (
        r"docker compose exec -T postgres pg_(dump|restore) ",
        "tests/statuspage/test_backup.py",
        "command_starting(IN_CONTAINER + prefix)",
    ),
]
# Commands that run nothing of the project's, with why no test of ours can exercise them.
NOT_OURS = {"git pull": "updates the checkout"}


def readme_commands() -> list[str]:
    return commands() + INLINE_COMMAND.findall(README.read_text())


@pytest.mark.parametrize("command", [c for c in readme_commands() if c not in NOT_OURS])
def test_every_readme_command_is_exercised(command):
    matches = [entry for entry in EXERCISED_BY if re.match(entry[0], command)]
    assert matches, f"README command exercised by no test: {command!r}; add it to EXERCISED_BY"
    for _, path, needle in matches:
        assert needle in (REPO / path).read_text(), f"{path} no longer exercises {command!r}"


def test_every_entry_still_matches_a_readme_command():
    unused = [
        pattern
        for pattern, _, _ in EXERCISED_BY
        if not any(re.match(pattern, command) for command in readme_commands())
    ]
    assert unused == []
    assert set(NOT_OURS) <= set(readme_commands())


def make_dry_run(target: str) -> str:
    result = subprocess.run(
        ["make", "--dry-run", target], cwd=REPO, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_make_targets_run_what_the_tests_exercise():
    targets = {
        "run": "deploy/local/run.py",
        "demo": "deploy/local/run.py --demo",
        "test": "-m pytest",
        "dashboards": "deploy/grafana/grafana_dashboards.py",
        "bench": "bench/statuspage_load.py",
    }
    for target, command in targets.items():
        assert command in make_dry_run(target), target


def test_local_stack_help_lists_every_port_flag():
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy/local/run.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    for name in ("statuspage", "prometheus", "alertmanager", "exporter", "postgres"):
        assert f"--port.{name}" in result.stdout
