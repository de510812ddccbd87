"""The services file: the shipped default, and a table of invalid files with path and message."""

import textwrap
from pathlib import Path

import pytest

from exporter.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
VALID_SERVICE = "    url: http://127.0.0.1/\n"


def parse(text: str, environ=None):
    return parse_config(textwrap.dedent(text), "test.yml", environ or {})


def test_default_file_has_the_sefaria_services():
    config = load_config(REPO / "deploy/exporter/services.yml", environ={})
    kinds = {service.id: (service.kind, service.enabled) for service in config.services}
    assert kinds == {
        "sefaria-org": ("http", True),
        "linker": ("async_job", True),
        "mcp": ("mcp", True),
        "export-server": ("heartbeat", False),
    }
    linker = next(service for service in config.services if service.id == "linker")
    assert linker.job.poll_url.endswith("/api/async/{id}")
    assert linker.expect.status == frozenset({202})


def test_defaults_apply_and_services_override_them():
    config = parse("""
        defaults: {interval: 2m, timeout: 5s, retries: {attempts: 5, backoff: 200ms}}
        services:
          - {id: a, url: "http://127.0.0.1/"}
          - {id: b, url: "http://127.0.0.1/", interval: 30s, retries: {attempts: 1}}
    """)
    a, b = config.services
    assert (a.interval, a.timeout, a.retries.attempts, a.retries.backoff) == (120, 5, 5, 0.2)
    assert (b.interval, b.retries.attempts, b.retries.backoff) == (30, 1, 0.2)
    assert a.expect.status == frozenset(range(200, 300))
    assert a.name == "a"


def test_inherited_timeout_is_capped_at_a_short_interval():
    (service,) = parse("services: [{id: a, url: 'http://127.0.0.1/', interval: 3s}]").services
    assert service.timeout == 3
    assert service.budget < service.interval


def test_durations_are_at_most_a_day_but_a_heartbeat_may_wait_a_month():
    (weekly,) = parse(
        "services: [{id: a, kind: heartbeat, interval: 7d, grace: 1d, token: abcdefghijklmnopq}]"
    ).services
    assert (weekly.interval, weekly.heartbeat.grace) == (7 * 86400, 86400)
    (daily,) = parse("services: [{id: a, url: 'http://x/', interval: 1d}]").services
    assert daily.interval == 86400


def test_env_tag_reads_secrets_from_the_environment():
    text = """
        services:
          - id: a
            url: http://127.0.0.1/
            headers: {Authorization: !env TOKEN}
    """
    (service,) = parse(text, {"TOKEN": "Bearer xyz"}).services
    assert dict(service.headers) == {"Authorization": "Bearer xyz"}


def test_status_classes_and_codes_combine():
    text = 'services: [{id: a, url: "http://127.0.0.1/", expect: {status: ["2xx", 301]}}]'
    (service,) = parse(text).services
    assert 301 in service.expect.status
    assert 250 in service.expect.status
    assert 302 not in service.expect.status


INVALID = [
    ("services: [{id: a, url: 'http://x/', colour: red}]", "services[0].colour", "unknown key"),
    ("services: [{id: A_b, url: 'http://x/'}]", "services[0].id", "[a-z0-9-]+"),
    ("services: [{id: a}]", "services[0].url", "is required"),
    ("services: [{id: a, url: 'ftp://x/'}]", "services[0].url", "http:// or https://"),
    ("services: [{id: a, url: 'http://x/', interval: 30}]", "services[0].interval", "string"),
    ("services: [{id: a, url: 'http://x/', interval: 5x}]", "services[0].interval", "duration"),
    ("services: [{id: a, url: 'http://x/', public: 'yes'}]", "services[0].public", "true or false"),
    ("services: [{id: a, url: 'http://x/', kind: ftp}]", "services[0].kind", "one of http"),
    ("services: [{id: a, url: 'http://x/', method: FETCH}]", "services[0].method", "one of"),
    (
        "services: [{id: a, url: 'http://x/'}, {id: a, url: 'http://y/'}]",
        "services[1].id",
        "duplicate id 'a'",
    ),
    ("services: [{id: a, url: 'http://x/', kind: async_job}]", "services[0].job", "is required"),
    (
        "services: [{id: a, url: 'http://x/', kind: async_job, job: {poll_url: 'http://x/j'}}]",
        "services[0].job.poll_url",
        "must contain {id}",
    ),
    (
        "services: [{id: a, url: 'http://x/', job: {poll_url: 'http://x/{id}'}}]",
        "services[0].job",
        "only applies to kind async_job",
    ),
    (
        "services: [{id: a, url: 'http://x/', expect: {status: [200, 700]}}]",
        "services[0].expect.status[1]",
        "must be 100-599",
    ),
    (
        "services: [{id: a, url: 'http://x/', expect: {status: ['2xy']}}]",
        "services[0].expect.status[0]",
        'like "2xx"',
    ),
    (
        "services: [{id: a, url: 'http://x/', expect: {body_regex: '(('}}]",
        "services[0].expect.body_regex",
        "regular expression",
    ),
    (
        "services: [{id: a, url: 'http://x/', expect: {event: endpoint}}]",
        "services[0].expect.event",
        "only applies to kind sse",
    ),
    (
        "services: [{id: a, url: 'http://x/', headers: {X-Token: !env UNSET_VAR}}]",
        "services[0].headers.X-Token",
        "environment variable UNSET_VAR is not set",
    ),
    (
        "services: [{id: a, url: 'http://x/', interval: 10s, timeout: 20s}]",
        "services[0].timeout",
        "not be longer than the interval",
    ),
    (
        "services: [{id: a, url: 'http://x/', retries: {attempts: 0}}]",
        "services[0].retries.attempts",
        "from 1 to 10",
    ),
    ("defaults: {timeout: forever}\nservices: []", "defaults.timeout", "duration"),
    ("defaults: {colour: red}\nservices: []", "defaults.colour", "unknown key"),
    ("services: {a: 1}", "services", "must be a list"),
    ("- just a list", "(top level)", "must be a mapping"),
    ("services: [{id: a, url: 'http://x/'", "line 2, column 1", "expected ',' or '}'"),
]


@pytest.mark.parametrize(("text", "path", "message"), INVALID)
def test_invalid_files_name_the_path_and_the_problem(text, path, message):
    with pytest.raises(ConfigError) as raised:
        parse(text)
    matching = [error for error in raised.value.errors if error.startswith(f"{path}: ")]
    assert matching, raised.value.errors
    assert message in matching[0]


def test_every_error_is_reported_at_once():
    text = """
        defaults: {interval: soon}
        services:
          - {id: Bad, url: 'http://x/'}
          - {id: ok, url: 'gopher://x/', kind: async_job}
    """
    with pytest.raises(ConfigError) as raised:
        parse(text)
    paths = [error.split(": ")[0] for error in raised.value.errors]
    assert paths == [
        "defaults.interval",
        "services[0].id",
        "services[1].url",
        "services[1].job",
    ]
    assert "test.yml: 4 error(s)" in str(raised.value)


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yml")
