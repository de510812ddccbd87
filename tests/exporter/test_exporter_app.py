"""The running exporter over HTTP: readiness, metrics, reload (HTTP and SIGHUP), isolation."""

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from exporter.app import create_app
from exporter.config import load_config
from exporter.runtime import Exporter, Settings
from simulation import services_yaml
from tests.exporter.conftest import metric_value


async def eventually(condition, timeout=5.0, interval=0.02):
    """Wait until `condition()` is truthy; fail with a clear message after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


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
    async def make(max_concurrent=64):
        exporter = Exporter(load_config(config_file), Settings(config_file, max_concurrent))
        client = await aiohttp_client(create_app(exporter))
        return exporter, client

    return make


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
    assert 'probe_success{service="linker"} 1.0' in await response.text()


async def test_not_ready_until_every_service_has_a_result(make_exporter, sim):
    sim.set_mode("sefaria-org", "hang")  # its first check cannot end before its 190 ms budget
    exporter, client = await make_exporter()
    response = await client.get("/-/ready")
    assert response.status == 503
    assert "not checked yet" in await response.text()
    await eventually(lambda: exporter.ready)
    assert (await client.get("/-/ready")).status == 200


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
    assert response.status == 500
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


async def test_sighup_reloads_the_config_file(make_exporter, config_file, base_url):
    exporter, _ = await make_exporter()
    write_config(config_file, base_url, tweak=lambda doc: doc["services"].pop())
    os.kill(os.getpid(), signal.SIGHUP)
    await eventually(lambda: "export-server" not in exporter.scheduler.loops)


async def test_hanging_service_does_not_delay_the_others(make_exporter, sim):
    sim.set_mode("sefaria-org", "hang")
    exporter, _ = await make_exporter()
    await asyncio.sleep(1.5)
    # 200 ms interval: about 7 checks of mcp in 1.5 s while sefaria-org hangs every time.
    assert checks(exporter, "mcp") >= 5
    assert checks(exporter, "sefaria-org", "failure") >= 3
    assert exported(exporter, "status_exporter_check_overruns_total", service="mcp") == 0


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


async def test_results_api_never_shows_secrets(tmp_path, base_url, aiohttp_client, monkeypatch):
    monkeypatch.setenv("SIM_TOKEN", "very-secret-token")
    path = tmp_path / "services.yml"
    path.write_text(f"""
services:
  - id: private
    public: false
    url: {base_url}/api/texts/Genesis.1.1?key=very-secret-token
    headers: {{Authorization: !env SIM_TOKEN}}
    interval: 200ms
""")
    exporter = Exporter(load_config(path), Settings(path))
    client = await aiohttp_client(create_app(exporter))
    await eventually(lambda: exporter.ready)
    for url in ("/api/v1/results", "/metrics"):
        assert "very-secret-token" not in await (await client.get(url)).text()
