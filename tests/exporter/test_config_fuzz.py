"""Hostile services files: each one written by hand is refused naming where and what, and no
random mutation of the shipped file gets a traceback, a hang or a config that breaks at run time."""

import asyncio
import re
import sys
import time

import httpx
import pytest

from exporter import yaml_loader
from exporter.config import Config, ConfigError, load_config
from tests.exporter.config_corpus import HOSTILE, REPO, Hostile, mutations
from tests.readme import README

_KEY = r"""(?:[A-Za-z0-9_-]+|'(?:[^'\\]|\\.)*'…?|"(?:[^"\\]|\\.)*"…?)"""
_YAML_PATH = rf"{_KEY}(?:\[\d+\]|\.{_KEY})*…?"
LOCATED = re.compile(rf"^(?:line \d+, column \d+|\(file\)|\(top level\)|{_YAML_PATH}): \S")
"""Every error begins with where: a YAML path (keys that are not plain words quoted), a line and
column, the file itself, or its top level."""
MUTATIONS = 400
SECONDS_PER_FILE = 5.0
"""Far above the few milliseconds a file takes: only a hang (the alias bomb took minutes) fails."""
CLI_SAMPLE = (
    "latin-1 byte",
    "UTF-16 with BOM",
    "500-deep flow nesting",
    "5000-digit integer",
    "alias bomb",
    "duplicate key in a service",
    "port 99999",
    "400-digit interval",
)


def load(tmp_path, content: bytes) -> tuple[Config | ConfigError, float]:
    path = tmp_path / "services.yml"
    path.write_bytes(content)
    started = time.monotonic()
    try:
        outcome: Config | ConfigError = load_config(path, environ={})
    except ConfigError as exc:
        outcome = exc
    return outcome, time.monotonic() - started


def assert_runs(config: Config) -> None:
    """What the loader accepts, the HTTP client can send."""
    for service in config.services:
        httpx.Request(service.method, service.url, headers=dict(service.headers), json=service.json)
        if service.job is not None:
            httpx.Request("GET", service.job.poll_url.replace("{id}", "3f2a"))
        assert 0 < service.timeout <= service.interval <= 86_400


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile_file_is_refused_naming_where_and_what(tmp_path, case: Hostile):
    outcome, _ = load(tmp_path, case.content)
    assert isinstance(outcome, ConfigError), f"accepted: {case.name}"
    at_place = [error for error in outcome.errors if error.startswith(case.where)]
    assert at_place, outcome.errors
    assert case.message in at_place[0]
    assert all(LOCATED.match(error) for error in outcome.errors), outcome.errors


def test_pure_python_parser_refuses_the_same_files(tmp_path, monkeypatch):
    """Where PyYAML has no libyaml, its own parser feeds the same checks."""
    monkeypatch.setattr(yaml_loader, "_Loader", yaml_loader._PythonLoader)
    for case in HOSTILE:
        outcome, _ = load(tmp_path, case.content)
        assert isinstance(outcome, ConfigError), f"accepted: {case.name}"
        assert all(LOCATED.match(error) for error in outcome.errors), outcome.errors


@pytest.mark.parametrize("parser", ["_LibyamlLoader", "_PythonLoader"])
def test_many_tiny_values_stop_at_the_node_limit(tmp_path, monkeypatch, parser):
    """`0,` is a node in two bytes: the byte limit alone would let 4 million through. The real
    limit (500,000) takes seconds to reach, so this test lowers it."""
    monkeypatch.setattr(yaml_loader, "_Loader", getattr(yaml_loader, parser))
    monkeypatch.setattr(yaml_loader, "MAX_NODES", 1000)
    content = b"services:\n  - {id: a, url: 'http://x/', json: [" + b"0," * 2000 + b"]}\n"
    outcome, _ = load(tmp_path, content)
    assert isinstance(outcome, ConfigError)
    (error,) = outcome.errors
    assert error.startswith("services[0].json[990]: the file has more than 1000 keys and values")


def test_random_mutations_of_the_shipped_file_load_or_fail_with_a_location(tmp_path):
    slowest = 0.0
    refused = 0
    for name, content in mutations(seed=13, count=MUTATIONS):
        outcome, seconds = load(tmp_path, content)
        slowest = max(slowest, seconds)
        if isinstance(outcome, ConfigError):
            refused += 1
            assert outcome.errors, name
            assert all(LOCATED.match(error) for error in outcome.errors), (name, outcome.errors)
        else:
            assert_runs(outcome)
    assert slowest < SECONDS_PER_FILE
    assert refused > MUTATIONS / 2  # the mutations do break the file, mostly


async def test_config_check_exits_1_with_a_location_and_no_traceback(tmp_path):
    cases = [case for case in HOSTILE if case.name in CLI_SAMPLE]
    assert len(cases) == len(CLI_SAMPLE)

    async def check(index: int, case: Hostile) -> tuple[Hostile, int, str]:
        path = tmp_path / f"{index}.yml"
        path.write_bytes(case.content)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "exporter",
            "--config.check",
            "--config.file",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        return case, process.returncode, stderr.decode()

    for case, code, stderr in await asyncio.gather(*map(check, range(len(cases)), cases)):
        assert code == 1, (case.name, stderr)
        assert "Traceback" not in stderr
        assert f"\n{case.where}" in stderr, (case.name, stderr)
        assert case.message in stderr


def test_readme_shows_what_a_refused_file_prints(tmp_path, monkeypatch):
    shown = re.search(r"refuses it with every problem.*?\n```\n(.*?)```", README.read_text(), re.S)
    (tmp_path / "services.yml").write_text(
        "services:\n"
        "  - {id: a, url: 'http://127.0.0.1:99999/'}\n"
        "  - id: b\n"
        "    url: http://127.0.0.1/\n"
        "    interval: \u0661\u0660s\n"
        '    headers: {X-Token: "abc\\r\\n"}\n'
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as refused:
        load_config("services.yml", environ={})
    assert str(refused.value) == shown[1].strip()
