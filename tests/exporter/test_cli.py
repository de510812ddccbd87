"""The command line, run as a real process: --config.check, --once, and serving /metrics."""

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from exporter.cli import DEFAULT_CONFIG, split_address
from exporter.config import load_config
from exporter.heartbeat.state import HeartbeatBook
from exporter.runtime import Exporter, Settings
from simulation import services_yaml

REPO = Path(__file__).resolve().parents[2]


async def run_exporter(*args: str, timeout: float = 20) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
def sim_config(tmp_path, base_url):
    path = tmp_path / "services.yml"
    path.write_text(services_yaml(base_url, interval="2s", backoff="10ms"))
    return path


async def test_config_check_accepts_the_default_file():
    code, out, _ = await run_exporter("--config.check")
    assert code == 0
    assert "OK, 4 services (3 enabled)" in out


async def test_config_check_rejects_a_bad_file_listing_every_error(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  - {id: a, url: 'http://x/', kind: async_job, interval: 1}\n")
    code, _, err = await run_exporter("--config.file", str(bad), "--config.check")
    assert code == 1
    assert "services[0].interval: must be a string" in err
    assert "services[0].job: is required for kind async_job" in err


async def test_once_prints_a_table_and_exits_zero_when_all_are_up(sim_config):
    code, out, _ = await run_exporter("--config.file", str(sim_config), "--once")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["SERVICE", "KIND", "STATE", "REASON"]
    states = {line.split()[0]: line.split()[2] for line in lines[1:]}
    assert states == dict.fromkeys(["sefaria-org", "linker", "mcp", "export-server"], "up")


async def test_once_exits_one_and_names_the_reason_when_a_service_is_down(sim_config, sim):
    sim.set_mode("mcp", "missing_tool")
    code, out, _ = await run_exporter("--config.file", str(sim_config), "--once")
    assert code == 1
    mcp = next(line for line in out.splitlines() if line.startswith("mcp "))
    assert mcp.split()[2:4] == ["DOWN", "body_mismatch"]
    assert mcp.endswith("missing tools: text_search")


async def test_once_judges_heartbeat_services_by_the_reports_in_the_state_file(tmp_path):
    config = tmp_path / "services.yml"
    config.write_text(
        "services:\n  - {id: job, kind: heartbeat, interval: 24h, token: job-token-0123456789}\n"
    )
    state = tmp_path / "elsewhere.json"
    book = HeartbeatBook(state)
    await book.report("job", ok=False, message="disk full")
    code, out, _ = await run_exporter(
        "--config.file", str(config), "--heartbeat.state-file", str(state), "--once"
    )
    assert code == 1
    job = next(line for line in out.splitlines() if line.startswith("job "))
    assert job.split()[2:4] == ["DOWN", "job_failed"]
    assert re.search(r"the job reported a failure (just now|\d+s ago): disk full$", job)


async def test_serves_metrics_and_stops_cleanly_on_sigterm(sim_config, unused_tcp_port):
    address = f"127.0.0.1:{unused_tcp_port}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter",
        "--config.file",
        str(sim_config),
        "--web.listen-address",
        address,
        "--log.format",
        "json",
        "--location",
        "eu",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"http://{address}/-/ready") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            async with session.get(f"http://{address}/metrics") as response:
                text = await response.text()
            async with session.post(f"http://{address}/-/reload") as response:
                reload = response.status, await response.text()
        assert 'probe_success{service="mcp"} 1.0' in text
        assert reload == (403, "Lifecycle API is not enabled.\n")  # no --web.enable-lifecycle
        assert 'status_exporter_info{location="eu"} 1.0' in text
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
    assert b'"msg": "service is up"' in stderr


def test_listen_address_forms():
    assert split_address("127.0.0.1:9115") == ("127.0.0.1", 9115)
    assert split_address("[::1]:9115") == ("::1", 9115)
    assert split_address(":9115") == (None, 9115)
    with pytest.raises(SystemExit, match="host:port"):
        split_address("localhost")


def test_location_info_is_exposed_only_when_a_location_is_given():
    config_file = REPO / DEFAULT_CONFIG
    config = load_config(config_file)
    located = Exporter(config, Settings(config_file, location="eu")).registry
    assert located.get_sample_value("status_exporter_info", {"location": "eu"}) == 1
    unlocated = Exporter(config, Settings(config_file)).registry
    assert "status_exporter" not in {family.name for family in unlocated.collect()}
