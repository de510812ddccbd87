"""`make run` / `make demo`: deploy/local/run.py starts the whole stack, shows where it is, takes a
simulated service down and up and reports a batch job's runs with the commands it prints (page,
automatic incidents and Slack follow), keeps its data, and stops cleanly on Ctrl-C."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from postgres import SUPERUSER, postgres_bin
from run import start_postgres
from stack import REPO, free_port

RUN = [sys.executable, str(REPO / "deploy" / "local" / "run.py")]
NAMES = ("statuspage", "prometheus", "alertmanager", "exporter", "postgres", "simulation", "slack")


def wait_for_output(path: Path, text: str, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text()
        if text in output:
            return output
        assert process.poll() is None, f"run.py exited early:\n{output}"
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not printed in {timeout:g}s:\n{path.read_text()}")


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def component_status(statuspage_port: int, service: str) -> str:
    _, body = get(f"http://127.0.0.1:{statuspage_port}/api/v2/components.json")
    (component,) = [c for c in json.loads(body)["components"] if c["id"] == service]
    return component["status"]


def wait_for_status(statuspage_port: int, wanted: dict[str, str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while {service: component_status(statuspage_port, service) for service in wanted} != wanted:
        assert time.monotonic() < deadline, f"never became {wanted}"
        time.sleep(0.5)


def wait_for_unresolved(statuspage_port: int, wanted: list[str], timeout: float = 30) -> None:
    """Until the open incidents (`/api/v2/incidents/unresolved.json`) are named `wanted`
    (sorted)."""
    url = f"http://127.0.0.1:{statuspage_port}/api/v2/incidents/unresolved.json"
    deadline = time.monotonic() + timeout
    while (names := sorted(i["name"] for i in json.loads(get(url)[1])["incidents"])) != wanted:
        assert time.monotonic() < deadline, f"open incidents {names}, never {wanted}"
        time.sleep(0.5)


def nightly_export_row(statuspage_port: int) -> str:
    """The status page's row of the heartbeat service, as text."""
    _, page = get(f"http://127.0.0.1:{statuspage_port}/")
    row = re.search(r'<span class="name">Nightly export</span>(.*?)</div>', page.decode(), re.S)
    assert row, "the nightly export is not on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", row[1]).split())


def run(command: str) -> None:
    subprocess.run(["bash", "-c", command], check=True, capture_output=True, timeout=10)


def watch_an_outage_and_its_recovery(
    printed: str, output_path: Path, process: subprocess.Popen, statuspage_port: int
) -> None:
    """The demo's own printed commands take the Linker down and up and report the nightly export's
    runs (a failed one, then a good one); the page and Slack follow."""
    down, up = [line.strip() for line in printed.splitlines() if "/-/sim/linker?mode=" in line]
    assert down.startswith("curl -X POST '")
    assert down.endswith("/-/sim/linker?mode=failure'")
    (token,) = [line.strip() for line in printed.splitlines() if line.strip().startswith("TOKEN=")]
    failed, succeeded = [
        f"{token}; {line.strip()}" for line in printed.splitlines() if "/api/v1/heartbeat/" in line
    ]
    assert failed.endswith("/api/v1/heartbeat/export-job/fail")
    assert nightly_export_row(statuspage_port).startswith("no report yet")
    run(down)
    run(failed)
    wait_for_status(statuspage_port, {"linker": "major_outage", "export-job": "major_outage"})
    wait_for_output(output_path, "[slack] :red_circle: Linker API is down", process, timeout=60)
    # The automatic incidents: the Linker, and the export whose run failed.
    wait_for_unresolved(statuspage_port, ["Linker API is down", "Nightly export is down"])
    run(up)
    run(succeeded)
    wait_for_status(statuspage_port, {"linker": "operational", "export-job": "operational"})
    assert re.fullmatch(
        r"last report \d+ (s|min) ago ✓ Operational", nightly_export_row(statuspage_port)
    )
    wait_for_output(output_path, "[slack] :large_green_circle: Resolved", process, timeout=60)
    wait_for_unresolved(statuspage_port, [])


def test_demo_starts_everything_and_stops_cleanly_on_ctrl_c() -> None:
    base = Path(tempfile.mkdtemp(prefix="sefaria-status-run-"))
    base.chmod(0o755)  # PostgreSQL runs as the postgres user when the tests run as root
    ports = {name: free_port() for name in NAMES}
    argv = [*RUN, "--demo", "--data-dir", str(base / "data")]
    argv += [f"--port.{name}={port}" for name, port in ports.items()]
    output_path = base / "output.txt"
    with output_path.open("w") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        printed = wait_for_output(output_path, "Press Ctrl-C to stop.", process, timeout=90)
        for line in ("PostgreSQL … done", "status page … done", "Ready:"):
            assert line in printed
        assert f"http://127.0.0.1:{ports['statuspage']}" in printed
        status, body = get(f"http://127.0.0.1:{ports['statuspage']}/api/v2/components.json")
        assert status == 200
        assert {c["id"] for c in json.loads(body)["components"] if not c["group"]} == {
            "sefaria-org", "linker", "mcp", "export-server", "export-job",
        }  # fmt: skip
        assert get(f"http://127.0.0.1:{ports['prometheus']}/-/ready")[0] == 200
        assert get(f"http://127.0.0.1:{ports['alertmanager']}/-/ready")[0] == 200
        watch_an_outage_and_its_recovery(printed, output_path, process, ports["statuspage"])
        process.send_signal(signal.SIGINT)
        wait_for_output(output_path, "Stopping …", process, timeout=10)
        process.send_signal(signal.SIGINT)  # an impatient second Ctrl-C: the stop goes on
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Stopped. Data is kept in" in output_path.read_text()
    assert "Traceback" not in output_path.read_text()
    assert (base / "data" / "postgres" / "PG_VERSION").exists()
    assert not (base / "data" / "postgres" / "postmaster.pid").exists()  # PostgreSQL stopped


def test_a_busy_port_is_named() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*RUN, f"--port.prometheus={port}", "--data-dir", tempfile.mkdtemp()],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"port in use: prometheus ({port})" in result.stderr


def statuspage_database_answers(port: int) -> bool:
    psql = [postgres_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER]
    query = [*psql, "-d", "statuspage", "-tAc", "SELECT 1"]
    result = subprocess.run(query, capture_output=True, text=True, timeout=30, check=False)
    return result.stdout.strip() == "1"


def test_postgres_setup_works_from_a_checkout_the_postgres_user_cannot_reach() -> None:
    """A checkout under a 0700 directory (/root, a mktemp -d). As root, as in CI, PostgreSQL runs
    as the postgres user and keeps its data where that user can reach, linked from .local/."""
    private = Path(tempfile.mkdtemp(prefix="sefaria-status-private-"))  # mode 0700
    shared_home = Path(tempfile.mkdtemp(prefix="sefaria-status-shared-")) / "home"
    shared_home.parent.chmod(0o755)
    data = private / "checkout" / ".local"
    data.mkdir(parents=True)
    data.chmod(0o755)  # as run.py leaves it
    port = free_port()
    try:
        cluster = start_postgres(data, port, shared_home)
        try:
            assert statuspage_database_answers(port)
        finally:
            cluster.stop()
        if os.geteuid() == 0:
            assert (data / "postgres").is_symlink()
            assert cluster.datadir == (data / "postgres").resolve()
            assert cluster.datadir.is_relative_to(shared_home)
        else:
            assert cluster.datadir == data / "postgres"
        assert (data / "postgres" / "PG_VERSION").exists()
        again = start_postgres(data, port, shared_home)  # the next `make run`: same data
        try:
            assert again.datadir == cluster.datadir
            assert statuspage_database_answers(port)
        finally:
            again.stop()
    finally:
        shutil.rmtree(private)
        shutil.rmtree(shared_home.parent)


def test_a_failed_setup_step_prints_one_line_and_exits_1() -> None:
    base = Path(tempfile.mkdtemp(prefix="sefaria-status-run-"))
    base.chmod(0o755)
    broken = base / "data" / "postgres"
    broken.mkdir(parents=True)
    (broken / "PG_VERSION").write_text("15\n")  # looks like a cluster, is none
    ports = [f"--port.{name}={free_port()}" for name in NAMES[:5]]  # `make run` uses these
    try:
        result = subprocess.run(
            [*RUN, "--data-dir", str(base / "data"), *ports],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
    finally:
        shutil.rmtree(base)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: PostgreSQL: pg_ctl failed after ")
    assert "(log: " in line
    assert "PostgreSQL … failed" in result.stdout
