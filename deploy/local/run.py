"""`make run` / `make demo`: the whole stack on this machine, no Docker.

    python deploy/local/run.py            exporter (deploy/exporter/services.yml), Prometheus,
                                          Alertmanager, PostgreSQL and the status page
    python deploy/local/run.py --demo     the same against a local simulation of Sefaria's
                                          services, with a local "Slack" printing each alert

Data (PostgreSQL, Prometheus' TSDB, Alertmanager's silences) lives under `.local/` and is kept
between runs (`.local/postgres` may link to where the postgres user can reach it, see
postgres.reachable_datadir). Ctrl-C stops everything cleanly; a set-up step that fails prints one
line and exits 1.
"""

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

from postgres import SHARED_HOME, PostgresCluster, reachable_datadir
from stack import REPO, Process, Stack, Timings

from simulation import services_yaml

DEFAULT_PORTS = {
    "statuspage": 8080,
    "prometheus": 9090,
    "alertmanager": 9093,
    "exporter": 9115,
    "postgres": 5433,
    "simulation": 8000,
    "slack": 8001,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="simulated services, local Slack")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".local")
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(f"--port.{name}", dest=f"port_{name}", type=int, default=port)
    return parser.parse_args(argv)


T = TypeVar("T")


class SetupFailed(Exception):
    """A set-up step failed; the message is the one line that says which and why."""


def step(title: str, action: Callable[[], T]) -> T:
    """Run one set-up step, showing what it is and how long it took."""
    print(f"  {title} …", end="", flush=True)
    started = time.monotonic()
    try:
        result = action()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(" failed", flush=True)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SetupFailed(f"{title}: {reason}") from exc
    print(f" done ({time.monotonic() - started:.1f} s)", flush=True)
    return result


def start_postgres(data: Path, port: int, shared_home: Path = SHARED_HOME) -> PostgresCluster:
    """`make run`'s own cluster, kept between runs, started, with the status page's database."""
    cluster = PostgresCluster(reachable_datadir(data / "postgres", shared_home), port)
    cluster.start()
    created = cluster.datadir.with_name("postgres-database-created")
    try:
        if not created.exists():
            cluster.create_database("statuspage")
            created.touch()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def check_free(ports: dict[str, int]) -> None:
    busy = []
    for name, port in ports.items():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(f"{name} ({port})")
    if busy:
        raise SystemExit(
            f"error: port in use: {', '.join(busy)}. Stop what uses it or pick another port, "
            "e.g. --port.statuspage 8081"
        )


class LocalSlack(ThreadingHTTPServer):
    """Prints every Slack message Alertmanager sends, as one line per alert."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _SlackHandler)


class _SlackHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        for attachment in body.get("attachments", []):
            fields = {f["title"]: f["value"] for f in attachment.get("fields", [])}
            details = ", ".join(f"{k}: {v}" for k, v in fields.items())
            print(f"\n[slack] {attachment.get('title', '')}  {details}", flush=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the message itself is what matters."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ports = {name: getattr(args, f"port_{name}") for name in DEFAULT_PORTS}
    if not args.demo:
        for name in ("simulation", "slack"):
            ports.pop(name)
    check_free(ports)
    data = args.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
    logs = data / "logs"
    logs.mkdir(exist_ok=True)
    token_file = data / "admin-token"
    token = secret(token_file)
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    services = REPO / "deploy" / "exporter" / "services.yml"
    slack_url = os.environ.get("SLACK_WEBHOOK_URL", f"{url['statuspage']}/no-slack-configured")
    processes: list[Process] = []
    slack: LocalSlack | None = None
    cluster: PostgresCluster | None = None
    heartbeat_token_file = data / "heartbeat-token"
    if args.demo:
        services = data / "demo-services.yml"
        heartbeat_token = secret(heartbeat_token_file)
        services.write_text(services_yaml(url["simulation"], "5s", "200ms", heartbeat_token))
        slack_url = f"{url['slack']}/slack"
    stack = Stack(
        workdir=data / ("demo" if args.demo else "stack"),
        services_file=services,
        slack_webhook_url=slack_url,
        timings=Timings("5s", "5s", for_scale=1 / 12, group_wait="5s", group_interval="10s")
        if args.demo
        else Timings(),
        statuspage_hook_url=f"{url['statuspage']}/hooks/alertmanager",
        statuspage_hook_token=token,
        ports={name: ports[name] for name in ("exporter", "prometheus", "alertmanager")},
    )
    stack.ports["statuspage"] = ports["statuspage"]
    print(f"Starting sefaria-status{' (demo)' if args.demo else ''}; logs in {logs}")
    try:
        if args.demo:
            slack = LocalSlack(ports["slack"])
            threading.Thread(target=slack.serve_forever, daemon=True).start()
            simulation = Process(
                "simulation",
                [
                    sys.executable,
                    "-m",
                    "simulation",
                    "--web.listen-address",
                    f"127.0.0.1:{ports['simulation']}",
                ],
                logs / "simulation.log",
                f"{url['simulation']}/-/sim",
            )
            processes.append(simulation)
            step(
                "simulated Sefaria services", lambda: (simulation.start(), simulation.wait_ready())
            )
        cluster = step("PostgreSQL", lambda: start_postgres(data, ports["postgres"]))
        step("exporter, Prometheus, Alertmanager", stack.start)
        statuspage = Process(
            "statuspage",
            [
                sys.executable,
                "-m",
                "statuspage",
                "--web.listen-address",
                f"127.0.0.1:{ports['statuspage']}",
            ],
            logs / "statuspage.log",
            f"{url['statuspage']}/-/healthy",
            env={
                "PROMETHEUS_URL": url["prometheus"],
                "DATABASE_URL": cluster.url("statuspage"),
                "ADMIN_TOKENS": token,
                "ALERTMANAGER_URL": url["alertmanager"],
                "PUBLIC_URL": url["statuspage"],
            },
        )
        processes.append(statuspage)
        step("status page", lambda: (statuspage.start(), statuspage.wait_ready()))
        print_table(url, stack, logs, token_file)
        if args.demo:
            print_demo_commands(url, heartbeat_token_file)
        print("\nPress Ctrl-C to stop.", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        while all(p.popen.poll() is None for p in [*processes, *stack.processes.values()]):
            time.sleep(0.5)
        print("error: a component exited; see the logs above", file=sys.stderr)
        return 1
    except SetupFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # From here on, a second Ctrl-C (or SIGTERM) must not cut the clean stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nStopping …", flush=True)
        for process in reversed(processes):
            process.stop()
        stack.stop()
        if cluster is not None:
            cluster.stop()
        if slack is not None:
            slack.shutdown()
        print("Stopped. Data is kept in", data)


def secret(path: Path) -> str:
    """A random token kept in `path` (mode 600) across runs."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _interrupt(*_: object) -> None:
    """SIGTERM stops the stack the same way Ctrl-C does."""
    raise KeyboardInterrupt


def print_table(url: dict[str, str], stack: Stack, logs: Path, token_file: Path) -> None:
    rows = [
        ("Status page", url["statuspage"]),
        ("Prometheus", url["prometheus"]),
        ("Alertmanager", url["alertmanager"]),
        ("Exporter metrics", f"{url['exporter']}/metrics"),
        ("Admin token", str(token_file)),
        ("Logs", f"{logs} and {stack.workdir / 'logs'}"),
    ]
    width = max(len(name) for name, _ in rows)
    print("\nReady:")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")


def print_demo_commands(url: dict[str, str], heartbeat_token_file: Path) -> None:
    sim = url["simulation"]
    heartbeat = f"{url['exporter']}/api/v1/heartbeat/export-job"
    report = 'curl -fsS -X POST -H "Authorization: Bearer $TOKEN"'
    print(
        "\nTake a simulated service down and up again, then watch the status page and the"
        f" [slack] lines here:\n  curl -X POST '{sim}/-/sim/linker?mode=failure'\n"
        f"  curl -X POST '{sim}/-/sim/linker?mode=ok'\n"
        f"(services: sefaria-org, linker, mcp, export-server; modes: GET {sim}/-/sim)\n"
        "\nThe nightly export is a batch job: it reports to the exporter, as the last line of"
        " the job would. Report a failed run (down at once), then a successful one:\n"
        f"  TOKEN=$(cat {heartbeat_token_file})\n"
        f"  {report} -d 'disk full' {heartbeat}/fail\n"
        f"  {report} {heartbeat}"
    )


if __name__ == "__main__":
    sys.exit(main())
