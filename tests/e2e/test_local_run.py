"""`make run` / `make demo`: deploy/local/run.py starts the whole stack, shows where it is, keeps
its data, and stops cleanly on Ctrl-C."""

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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
            "sefaria-org", "linker", "mcp", "export-server",
        }  # fmt: skip
        assert get(f"http://127.0.0.1:{ports['prometheus']}/-/ready")[0] == 200
        assert get(f"http://127.0.0.1:{ports['alertmanager']}/-/ready")[0] == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Stopped. Data is kept in" in output_path.read_text()
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
