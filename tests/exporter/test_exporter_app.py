"""The running exporter over HTTP: readiness, metrics, reload (HTTP and SIGHUP), isolation."""

import asyncio
import itertools
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import runtime
from exporter.app import create_app
from exporter.config import load_config
from exporter.runtime import Exporter, Settings
from exporter.scheduler import Scheduler
from simulation import services_yaml
from tests.exporter.config_corpus import HOSTILE
from tests.exporter.conftest import eventually, metric_value


def write_config(path: Path, base_url: str, interval="200ms", tweak=None) -> None:
    document = json.loads(services_yaml(base_url, interval=interval, backoff="10ms"))
    for service in document["services"]:
        service["timeout"] = "150ms" if interval == "200ms" else "1s"
        service.get("job", {})["poll_interval"] = "20ms"
    if tweak:
        tweak(document)
    path.write_text(json.dumps(document))


@pytest.fixture
def config_file(tmp_path, base_url):
    path = tmp_path / "services.yml"
    write_config(path, base_url)
    return path


@pytest.fixture
def make_exporter(aiohttp_client, config_file):
    async def make(max_concurrent=64, **settings):
        settings = {"enable_lifecycle": True, **settings}
        exporter = Exporter(
            load_config(config_file), Settings(config_file, max_concurrent, **settings)
        )
        client = await aiohttp_client(create_app(exporter))
        return exporter, client

    return make


def reload_successful(exporter) -> float | None:
    return exporter.registry.get_sample_value("status_exporter_config_last_reload_successful")


def write_slow_file(path: Path, megabytes: int = 2) -> None:
    """A file that takes about a second to parse (one long JSON body), refused at the end."""
    items = ", ".join(['"lorem ipsum dolor"'] * (megabytes * 1024 * 1024 // 21))
    path.write_text(f"services:\n  - id: a\n    url: http://x/\n    json: [{items}]\n    x: 1\n")


def exported(exporter, name, **labels):
    return metric_value(exporter.store.exposition, name, labels)


def success(exporter, service):
    return exported(exporter, "probe_success", service=service)


def checks(exporter, service, result="success"):
    return exported(exporter, "probe_checks_total", service=service, result=result) or 0


async def test_ready_after_first_round_and_metrics_for_every_service(make_exporter):
    exporter, client = await make_exporter()
    await eventually(lambda: exporter.ready)
    assert (await client.get("/-/ready")).status == 200
    assert (await client.get("/-/healthy")).status == 200
    for service in ("sefaria-org", "linker", "mcp", "export-server"):
        assert success(exporter, service) == 1, service
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'probe_success{service="linker"} 1.0' in text
    per_service = [
        sample
        for family in text_string_to_metric_families(text)
        if family.name.startswith("probe_") or family.name == "status_exporter_check_overruns"
        for sample in family.samples
    ]
    assert len(per_service) > 50
    assert [sample for sample in per_service if "service" not in sample.labels] == []


async def test_not_ready_until_every_service_has_a_result(make_exporter, sim):
    sim.set_mode("sefaria-org", "hang")  # its first check cannot end before its 190 ms budget
    exporter, client = await make_exporter()
    response = await client.get("/-/ready")
    assert response.status == 503
    assert "not checked yet" in await response.text()
    await eventually(lambda: exporter.ready)
    assert (await client.get("/-/ready")).status == 200


async def test_ready_stays_ready_through_a_reload_that_adds_a_service_not_yet_checked(
    make_exporter, config_file, base_url, sim
):
    exporter, client = await make_exporter()
    await eventually(lambda: exporter.ready)
    sim.set_mode("sefaria-org", "hang")  # the added service's first check takes a second at least

    def add_service(document):
        (sefaria,) = [service for service in document["services"] if service["id"] == "sefaria-org"]
        document["services"].append(sefaria | {"id": "added", "interval": "10s", "timeout": "1s"})

    write_config(config_file, base_url, tweak=add_service)
    assert (await client.post("/-/reload")).status == 200
    assert exporter.store.get("added").latest is None
    assert success(exporter, "added") is None
    response = await client.get("/-/ready")
    assert response.status == 200, await response.text()


async def test_outage_shows_as_down_with_its_reason_then_recovers(make_exporter, sim):
    exporter, client = await make_exporter()
    await eventually(lambda: exporter.ready)
    sim.set_mode("linker", "failure")
    await eventually(lambda: success(exporter, "linker") == 0)
    assert exported(exporter, "probe_result_info", service="linker", reason="job_failed") == 1
    assert success(exporter, "sefaria-org") == 1
    body = await (await client.get("/api/v1/results")).json()
    linker = next(entry for entry in body["services"] if entry["service"] == "linker")
    assert (linker["up"], linker["reason"]) == (False, "job_failed")
    assert "FAILURE" in linker["message"]
    mcp = next(entry for entry in body["services"] if entry["service"] == "mcp")
    assert (mcp["mcp"]["transport"], mcp["mcp"]["tools"]) == ("streamable_http", 3)
    sim.set_mode("linker", "ok")
    await eventually(lambda: success(exporter, "linker") == 1)


async def test_reload_adds_removes_changes_and_keeps_unchanged_schedules(
    make_exporter, config_file, base_url
):
    exporter, client = await make_exporter()
    await eventually(lambda: exporter.ready)
    loops_before = exporter.scheduler.loops

    def tweak(document):
        services = {service["id"]: service for service in document["services"]}
        del services["export-server"]
        services["mcp"]["interval"] = "300ms"
        services["extra"] = {**services["sefaria-org"], "id": "extra", "name": "Extra"}
        document["services"] = list(services.values())

    write_config(config_file, base_url, tweak=tweak)
    response = await client.post("/-/reload")
    assert response.status == 200, await response.text()
    loops_after = exporter.scheduler.loops
    assert loops_after["sefaria-org"] is loops_before["sefaria-org"]
    assert loops_after["linker"] is loops_before["linker"]
    assert loops_after["mcp"] is not loops_before["mcp"]
    assert "export-server" not in loops_after
    assert success(exporter, "export-server") is None
    await eventually(lambda: success(exporter, "extra") == 1)
    assert exported(exporter, "probe_interval_seconds", service="mcp") == 0.3
    assert exporter.registry.get_sample_value("status_exporter_config_last_reload_successful") == 1


async def test_bad_file_keeps_the_running_config(make_exporter, config_file, caplog):
    exporter, client = await make_exporter()
    await eventually(lambda: exporter.ready)
    good = exporter.config
    config_file.write_text("services:\n  - {id: Bad, url: 'ftp://x/'}\n")
    response = await client.post("/-/reload")
    assert response.status == 400
    text = await response.text()
    assert "services[0].id" in text
    assert "services[0].url" in text
    assert exporter.config is good
    assert exporter.registry.get_sample_value("status_exporter_config_last_reload_successful") == 0
    assert len(exporter.scheduler.loops) == 4
    before = checks(exporter, "sefaria-org")
    await eventually(lambda: checks(exporter, "sefaria-org") > before)
    logged = [
        record.fields.get("error", "") for record in caplog.records if hasattr(record, "fields")
    ]
    assert any("services[0].url" in error for error in logged)


async def test_reload_only_accepts_post(make_exporter):
    _, client = await make_exporter()
    assert (await client.get("/-/reload")).status == 405


async def test_http_reload_needs_the_lifecycle_flag_and_sighup_does_not(
    make_exporter, config_file, base_url
):
    exporter, client = await make_exporter(enable_lifecycle=False)
    write_config(config_file, base_url, tweak=lambda doc: doc["services"].pop())
    response = await client.post("/-/reload")
    assert response.status == 403
    assert await response.text() == "Lifecycle API is not enabled.\n"
    assert "export-server" in exporter.scheduler.loops
    os.kill(os.getpid(), signal.SIGHUP)
    await eventually(lambda: "export-server" not in exporter.scheduler.loops)


RELOADED_HOSTILE = [
    case
    for case in HOSTILE
    if case.name
    in ("UTF-16 with BOM", "500-deep flow nesting", "5000-digit integer", "alias bomb", "port -1")
]


@pytest.mark.parametrize("case", RELOADED_HOSTILE, ids=[case.name for case in RELOADED_HOSTILE])
async def test_hostile_file_is_a_400_naming_where_and_the_running_config_stays(
    make_exporter, config_file, caplog, case
):
    exporter, client = await make_exporter()
    good = exporter.config
    config_file.write_bytes(case.content)
    response = await client.post("/-/reload")
    assert response.status == 400
    body = await response.text()
    assert f"\n{case.where}" in body
    assert case.message in body
    assert exporter.config is good
    assert reload_successful(exporter) == 0
    assert (await client.get("/-/healthy")).status == 200
    logged = [getattr(record, "fields", {}).get("error", "") for record in caplog.records]
    assert any(error.startswith(case.where) for error in logged)
    assert not [record for record in caplog.records if record.exc_info]  # no traceback


async def test_a_file_is_parsed_off_the_event_loop(make_exporter, config_file):
    """/-/healthy keeps answering while a file that takes about a second to parse is read; had
    the parse run on the event loop, one gap between answers would span all of it."""
    _, client = await make_exporter()
    write_slow_file(config_file)
    started = time.monotonic()
    reload = asyncio.create_task(client.post("/-/reload"))
    answers = [started]
    while not reload.done():
        assert (await client.get("/-/healthy")).status == 200
        answers.append(time.monotonic())
    reload_seconds = time.monotonic() - started
    assert (await reload).status == 400
    longest_gap = max(b - a for a, b in itertools.pairwise(answers))
    assert len(answers) > 3
    assert longest_gap < reload_seconds / 2, (longest_gap, reload_seconds)


async def test_a_reload_that_takes_longer_than_its_budget_is_refused(make_exporter, config_file):
    exporter, client = await make_exporter(reload_timeout=0.01)
    good = exporter.config
    write_slow_file(config_file)
    response = await client.post("/-/reload")
    assert response.status == 400
    assert "(file): not read within 0.01s" in await response.text()
    assert exporter.config is good
    assert reload_successful(exporter) == 0


async def test_a_loader_bug_is_a_refused_reload_not_a_500(make_exporter, monkeypatch, caplog):
    def broken_loader(path):
        raise RuntimeError("bug")

    exporter, client = await make_exporter()
    monkeypatch.setattr(runtime, "load_config", broken_loader)
    response = await client.post("/-/reload")
    assert response.status == 400
    assert "(file): could not be read: RuntimeError('bug')" in await response.text()
    assert reload_successful(exporter) == 0
    assert not [record for record in caplog.records if record.exc_info]


async def test_a_loop_that_dies_is_logged_and_restarted_by_the_next_reload(
    make_exporter, caplog, monkeypatch
):
    exporter, _ = await make_exporter()
    scheduler: Scheduler = exporter.scheduler
    report = scheduler._report

    def buggy_report(service, result):  # only a bug can end a loop: this one stands in for it
        if service.id == "export-server":
            raise RuntimeError("a bug")
        report(service, result)

    monkeypatch.setattr(scheduler, "_report", buggy_report)
    await eventually(lambda: "export-server" not in scheduler.loops)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage().startswith("service loop stopped by an internal error")
    assert record.fields == {"service": "export-server"}
    assert record.exc_info[0] is RuntimeError
    scheduler.apply(exporter.config.enabled)
    assert "export-server" in scheduler.loops  # started again


async def test_sighup_reloads_the_config_file(make_exporter, config_file, base_url):
    exporter, _ = await make_exporter()
    write_config(config_file, base_url, tweak=lambda doc: doc["services"].pop())
    os.kill(os.getpid(), signal.SIGHUP)
    await eventually(lambda: "export-server" not in exporter.scheduler.loops)


async def test_hanging_service_does_not_delay_the_others(make_exporter, sim):
    sim.set_mode("sefaria-org", "hang")
    exporter, _ = await make_exporter()
    await asyncio.sleep(1.5)
    # 200 ms interval: about 7 checks of a one-request service in 1.5 s while sefaria-org hangs.
    assert checks(exporter, "export-server") >= 5
    assert checks(exporter, "sefaria-org", "failure") >= 3
    assert exported(exporter, "status_exporter_check_overruns_total", service="export-server") == 0


async def test_a_full_concurrency_bound_is_counted_as_lag_and_overruns(make_exporter, sim):
    sim.set_mode("sefaria-org", "hang")
    exporter, _ = await make_exporter(max_concurrent=1)
    await asyncio.sleep(1.5)
    overruns = sum(
        exported(exporter, "status_exporter_check_overruns_total", service=s)
        for s in ("sefaria-org", "linker", "mcp", "export-server")
    )
    assert overruns > 0
    assert exporter.registry.get_sample_value("status_exporter_scheduling_lag_seconds_sum") > 0.1


SECRETS = ("secret-in-header", "secret-in-userinfo", "secret-in-path", "secret-in-query")


async def test_results_api_never_shows_headers_or_the_urls_userinfo_path_or_query(
    tmp_path, base_url, aiohttp_client, monkeypatch, unused_tcp_port, caplog
):
    """Services passing and failing every way an error text can tell: none shows a secret."""
    monkeypatch.setenv("SIM_TOKEN", "secret-in-header")
    tail = "secret-in-path?key=secret-in-query"
    urls = {
        "ok": f"{base_url}/api/texts/{tail}",
        "not-found": f"{base_url}/{tail}",
        "refused": f"http://user:secret-in-userinfo@127.0.0.1:{unused_tcp_port}/{tail}",
        "unresolvable": f"http://user:secret-in-userinfo@no-such-host.invalid/{tail}",
        "mcp": f"{base_url}/{tail}",
    }
    path = tmp_path / "services.yml"
    path.write_text(
        "defaults: {interval: 300ms, retries: {attempts: 1}}\nservices:\n"
        + "".join(
            f"  - {{id: {service_id}, url: '{url}', headers: {{Authorization: !env SIM_TOKEN}}"
            + (", kind: mcp}\n" if service_id == "mcp" else "}\n")
            for service_id, url in urls.items()
        )
    )
    exporter = Exporter(load_config(path), Settings(path))
    client = await aiohttp_client(create_app(exporter))
    await eventually(lambda: exporter.ready)
    results = await (await client.get("/api/v1/results")).json()
    reasons = {entry["service"]: entry["reason"] for entry in results["services"]}
    assert reasons == {
        "ok": "ok", "not-found": "http_status", "refused": "connect_error",
        "unresolvable": "connect_error", "mcp": "http_status",
    }  # fmt: skip
    messages = {entry["service"]: entry["message"] for entry in results["services"]}
    assert f"cannot connect to 127.0.0.1 port {unused_tcp_port}" in messages["refused"]
    assert "cannot resolve no-such-host.invalid" in messages["unresolvable"]  # the host, no more
    logged = [
        f"{record.getMessage()} {getattr(record, 'fields', '')}"
        for record in caplog.records
        if record.name.startswith("exporter")
    ]
    assert any("cannot resolve" in line for line in logged)
    shown = [json.dumps(results), await (await client.get("/metrics")).text(), *logged]
    for secret in SECRETS:
        assert not [text for text in shown if secret in text], secret
