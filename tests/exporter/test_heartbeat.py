"""Heartbeat services: a batch job reports to the exporter, which judges the reports by the clock.

The rules are tested on the pure evaluation with explicit times; the endpoint, the state file and
restarts on the real exporter app with an injected clock.
"""

import asyncio
import errno
import json
import logging
import os
from pathlib import Path

import pytest

from exporter.app import create_app
from exporter.checks import Reason
from exporter.checks.heartbeat import evaluate
from exporter.config import load_config
from exporter.heartbeat import api as heartbeat_api
from exporter.heartbeat.state import HeartbeatBook, Report, Watch
from exporter.runtime import Exporter, Settings
from tests.exporter.conftest import FakeClock, eventually, metric_value, service_from

TOKEN = "job-token-0123456789abcdef"
DAY, GRACE = 86400, 7200
EXPORT = {"kind": "heartbeat", "interval": "24h", "grace": "2h", "token": TOKEN}


@pytest.mark.parametrize(
    ("watch", "now", "up", "reason", "message"),
    [
        (None, 0, True, Reason.OK, "no report yet"),
        (Watch(since=0), DAY + GRACE, True, Reason.OK, "no report yet"),
        (
            Watch(since=0),
            DAY + GRACE + 1,
            False,
            Reason.HEARTBEAT_MISSED,
            "no report in the 1d2h1s since watching began (expected every 1d + 2h grace)",
        ),
        (
            Watch(0, Report(50_000, ok=True)),
            50_000 + 3 * 3600,
            True,
            Reason.OK,
            "last report 3h ago",
        ),
        (
            Watch(0, Report(50_000, ok=True)),
            50_000 + DAY + GRACE + 60,
            False,
            Reason.HEARTBEAT_MISSED,
            "last report 1d2h1m ago (expected every 1d + 2h grace)",
        ),
        (
            Watch(0, Report(50_000, ok=False, message="disk full")),
            50_010,
            False,
            Reason.JOB_FAILED,
            "the job reported a failure 10s ago: disk full",
        ),
        (
            Watch(0, Report(50_000, ok=False)),
            50_000 + DAY + GRACE + 1,
            False,
            Reason.HEARTBEAT_MISSED,
            "last report 1d2h1s ago (expected every 1d + 2h grace)",
        ),
    ],
)
def test_evaluation(watch, now, up, reason, message):
    result = evaluate(service_from(EXPORT), watch, now)
    assert (result.success, result.reason, result.message) == (up, reason, message)
    last = watch.last if watch is not None else None
    start = last.at if last else watch.since if watch else now
    assert result.heartbeat.deadline == start + DAY + GRACE
    assert result.heartbeat.last_report == (last.at if last else None)


@pytest.fixture
def clock() -> FakeClock:
    clock = FakeClock()
    clock.now = 1_000_000.0
    return clock


@pytest.fixture
def config_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "services.yml"
    path.write_text(
        json.dumps(
            {
                "services": [
                    {"id": "export", "kind": "heartbeat", "interval": "1s", "grace": "500ms",
                     "token": TOKEN},
                    {"id": "dump", "kind": "heartbeat", "interval": "24h", "token": TOKEN,
                     "enabled": False},
                    {"id": "web", "url": f"{base_url}/api/texts/Genesis.1.1", "interval": "10s"},
                ]
            }
        )
    )  # fmt: skip
    return path


@pytest.fixture
def start(aiohttp_client, config_file: Path, clock: FakeClock):
    async def started():
        exporter = Exporter(load_config(config_file), Settings(config_file), clock)
        client = await aiohttp_client(create_app(exporter))
        await eventually(lambda: exporter.store.get("export").latest is not None)
        return exporter, client

    return started


def metric(exporter: Exporter, name: str, **labels: str) -> float | None:
    return metric_value(exporter.store.exposition, name, {"service": "export", **labels})


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


REFUSED = "no enabled heartbeat service with this id takes this token"


async def test_a_ping_is_up_at_once_and_silence_past_interval_plus_grace_is_down(start, clock):
    exporter, client = await start()
    assert metric(exporter, "probe_success") == 1  # waiting for its first report
    assert metric(exporter, "probe_heartbeat_last_report_timestamp_seconds") is None
    assert metric(exporter, "probe_interval_seconds") == 1  # evaluated every second
    response = await client.post("/api/v1/heartbeat/export", headers=bearer())
    assert response.status == 200
    assert await response.json() == {
        "service": "export", "up": True, "reason": "ok", "message": "last report just now",
    }  # fmt: skip
    assert metric(exporter, "probe_heartbeat_last_report_timestamp_seconds") == clock.now
    assert metric(exporter, "probe_heartbeat_deadline_timestamp_seconds") == clock.now + 1.5
    clock.now += 2  # silence past interval + grace: the next evaluation says so
    await eventually(lambda: metric(exporter, "probe_success") == 0)
    assert metric(exporter, "probe_result_info", reason="heartbeat_missed") == 1
    await client.post("/api/v1/heartbeat/export", headers=bearer())
    assert metric(exporter, "probe_success") == 1


async def test_a_failed_run_is_down_at_once_with_its_message(start):
    exporter, client = await start()
    response = await client.post(
        "/api/v1/heartbeat/export/fail", headers=bearer(), data="export failed:\nS3 timeout"
    )
    assert response.status == 200
    assert (await response.json())["up"] is False
    assert metric(exporter, "probe_success") == 0
    assert metric(exporter, "probe_result_info", reason="job_failed") == 1
    results = await (await client.get("/api/v1/results")).json()
    (export,) = [entry for entry in results["services"] if entry["service"] == "export"]
    assert export["message"] == "the job reported a failure just now: export failed: S3 timeout"
    assert export["heartbeat"]["last_report"] is not None


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "error"),
    [
        ("export", {}, b"", 401, "send the service's token as 'Authorization: Bearer <token>'"),
        ("export", {"Authorization": TOKEN}, b"", 401, "Bearer <token>"),
        ("nope", {}, b"", 401, "Bearer <token>"),
        ("export", bearer("wrong-token-0123456789"), b"", 403, REFUSED),
        ("export/fail", bearer(TOKEN + "x"), b"", 403, REFUSED),
        ("export", bearer("é" * 20), b"", 403, REFUSED),
        ("web", bearer(), b"", 403, REFUSED),
        ("dump", bearer(), b"", 403, REFUSED),
        ("nope", bearer(), b"", 403, REFUSED),
        ("nope", bearer(), b"x" * 1025, 403, REFUSED),
        ("export/fail", bearer(), b"x" * 1025, 413, "longer than 1024 bytes"),
        ("export/fail", bearer(), b"\xff\xfe", 400, "must be UTF-8 text"),
    ],
)
async def test_refused_reports_say_why_and_change_nothing(
    start, config_file, path, headers, body, status, error
):
    exporter, client = await start()
    state_file = config_file.with_name("services.heartbeats.json")
    await eventually(state_file.exists)  # watching began: written once at start
    before = state_file.read_bytes()
    checks_before = metric(exporter, "probe_checks_total", result="success")
    response = await client.post(f"/api/v1/heartbeat/{path}", headers=headers, data=body)
    assert response.status == status
    assert error in (await response.json())["error"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert state_file.read_bytes() == before
    assert exporter.heartbeats.get("export").last is None
    assert metric(exporter, "probe_heartbeat_last_report_timestamp_seconds") is None
    assert metric(exporter, "probe_checks_total", result="success") == checks_before


async def test_without_its_token_no_one_can_tell_which_ids_exist(start, caplog):
    """A wrong token for a real heartbeat service, the id of a service of another kind (private
    or not), a disabled heartbeat and an id that names nothing get the very same answer; only the
    log tells them apart."""
    _, client = await start()
    answers = set()
    for path, token in (("export", "wrong-token-0123456789"), ("web", TOKEN), ("dump", TOKEN),
                        ("no-such-service", TOKEN), ("export/fail", "wrong-token-0123456789"),
                        ("no-such-service/fail", TOKEN)):  # fmt: skip
        response = await client.post(f"/api/v1/heartbeat/{path}", headers=bearer(token))
        headers = {k: v for k, v in response.headers.items() if k not in ("Date", "Server")}
        answers.add((response.status, await response.read(), tuple(sorted(headers.items()))))
    (answer,) = answers
    assert answer[0] == 403
    refused = [r.fields for r in caplog.records if r.getMessage() == "heartbeat refused"]
    assert [(f["service"], f["known"]) for f in refused] == [
        ("export", True), ("web", False), ("dump", False), ("no-such-service", False),
        ("export", True), ("no-such-service", False),
    ]  # fmt: skip


async def test_tokens_are_compared_with_hmac_compare_digest(start, monkeypatch):
    _, client = await start()
    compared = []

    def compare_digest(a, b):
        compared.append((a, b))
        return real(a, b)

    real = heartbeat_api.hmac.compare_digest
    monkeypatch.setattr(heartbeat_api.hmac, "compare_digest", compare_digest)
    assert (await client.post("/api/v1/heartbeat/export", headers=bearer())).status == 200
    assert compared == [(TOKEN.encode(), TOKEN.encode())]
    compared.clear()
    assert (await client.post("/api/v1/heartbeat/nope", headers=bearer())).status == 403
    assert [given for given, _ in compared] == [TOKEN.encode()]


async def test_only_post_reports(start):
    _, client = await start()
    assert (await client.get("/api/v1/heartbeat/export", headers=bearer())).status == 405


async def test_the_last_report_survives_a_restart(start, config_file, clock):
    exporter, client = await start()
    await client.post("/api/v1/heartbeat/export", headers=bearer())
    reported_at = clock.now
    await client.close()  # stops the exporter (cleanup_ctx)
    state = json.loads(config_file.with_name("services.heartbeats.json").read_text())
    assert state["services"]["export"]["last_report"]["at"] == reported_at

    clock.now += 1  # restarted a second later: still within interval + grace of that report
    exporter, _ = await start()
    last_report = "probe_heartbeat_last_report_timestamp_seconds"
    assert metric(exporter, last_report) == reported_at
    assert metric(exporter, "probe_success") == 1
    clock.now += 1  # now 2 s after the report, past 1 s + 500 ms
    await eventually(lambda: metric(exporter, "probe_success") == 0)


async def test_a_damaged_state_file_is_logged_and_replaced(start, config_file, caplog):
    state_file = config_file.with_name("services.heartbeats.json")
    state_file.write_text("{not json")
    with caplog.at_level(logging.ERROR):
        _, client = await start()
    assert any(record.getMessage() == "cannot read heartbeat state" for record in caplog.records)
    assert (await client.post("/api/v1/heartbeat/export", headers=bearer())).status == 200
    assert json.loads(state_file.read_text())["services"]["export"]["last_report"]["ok"] is True


@pytest.mark.parametrize("failing_step", ["fsync", "replace"])
async def test_a_save_that_fails_midway_leaves_the_previous_file_and_the_report_counts(
    start, config_file, clock, monkeypatch, caplog, failing_step
):
    exporter, client = await start()
    state_file = config_file.with_name("services.heartbeats.json")
    assert (await client.post("/api/v1/heartbeat/export", headers=bearer())).status == 200
    saved = state_file.read_bytes()
    succeeded_at = clock.now
    real_step = getattr(os, failing_step)

    def disk_full(*args):  # the new version is written, then its flush or rename fails
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing_step, disk_full)
    clock.now += 0.1
    with caplog.at_level(logging.ERROR):
        response = await client.post(
            "/api/v1/heartbeat/export/fail", headers=bearer(), data="export failed"
        )
    assert response.status == 200
    assert (await response.json())["up"] is False  # the report counts, in memory
    assert metric(exporter, "probe_result_info", reason="job_failed") == 1
    assert any(record.getMessage() == "cannot write heartbeat state" for record in caplog.records)
    assert state_file.read_bytes() == saved  # the previous version, whole
    last_saved = json.loads(saved)["services"]["export"]["last_report"]
    assert (last_saved["at"], last_saved["ok"]) == (succeeded_at, True)
    assert sorted(path.name for path in config_file.parent.iterdir()) == [
        "services.heartbeats.json", "services.yml",
    ]  # fmt: skip

    monkeypatch.setattr(os, failing_step, real_step)  # space again: the next report is saved
    clock.now += 0.1
    assert (await client.post("/api/v1/heartbeat/export", headers=bearer())).status == 200
    assert json.loads(state_file.read_text())["services"]["export"]["last_report"]["at"] == (
        clock.now
    )
    assert (await client.get("/-/healthy")).status == 200


async def test_concurrent_reports_leave_one_whole_state_file(tmp_path, clock):
    path = tmp_path / "state.json"
    book = HeartbeatBook(path, clock)
    await asyncio.gather(*(book.report(f"job-{n}", n % 2 == 0, f"run {n}") for n in range(50)))
    state = json.loads(path.read_text())
    assert len(state["services"]) == 50
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left


async def test_a_state_file_that_cannot_be_written_is_logged_and_the_report_still_counts(
    tmp_path, clock, caplog
):
    book = HeartbeatBook(tmp_path / "missing-directory" / "state.json", clock)
    with caplog.at_level(logging.ERROR):
        watch = await book.report("job", ok=True, message="")
    assert watch.last == Report(clock.now, ok=True)
    assert any(record.getMessage() == "cannot write heartbeat state" for record in caplog.records)
