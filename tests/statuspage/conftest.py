"""Fixtures: a real PostgreSQL (one throwaway cluster per session, a fresh database per test),
and a real exporter + Prometheus + Alertmanager watching the simulated Sefaria services."""

import itertools
import json
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres import PostgresCluster
from stack import Process, Stack, Timings, free_port

from simulation import services_yaml
from statuspage.app import create_app
from statuspage.settings import Settings

TOKEN = "test-admin-token-0123456789"
_databases = itertools.count(1)


def throwaway_cluster(
    password: str | None = None, server_settings: dict[str, str] | None = None
) -> tuple[PostgresCluster, Path]:
    # Not under pytest's tmp_path: its parent is private to root, and the server runs as the
    # postgres user when the tests run as root.
    base = Path(tempfile.mkdtemp(prefix="statuspage-pg-"))
    base.chmod(0o755)
    cluster = PostgresCluster(
        base / "data", free_port(), durable=False, password=password,
        server_settings=server_settings or {},
    )  # fmt: skip
    return cluster, base


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster, base = throwaway_cluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def database_url(postgres: PostgresCluster) -> str:
    return postgres.create_database(f"test_{next(_databases)}")


class Simulator:
    """The simulated Sefaria services in their own process, switched over HTTP."""

    def __init__(self, workdir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "simulation", "--web.listen-address", f"127.0.0.1:{port}"]
        self.process = Process("simulation", argv, workdir / "simulation.log", f"{self.url}/-/sim")
        self.process.start()
        self.process.wait_ready()

    def set_mode(self, service: str, mode: str) -> None:
        request = urllib.request.Request(f"{self.url}/-/sim/{service}?mode={mode}", method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        self.process.stop()


def services_file(directory: Path, simulator_url: str) -> Path:
    """The simulation's services plus one private service (never shown on the page)."""
    services = json.loads(services_yaml(simulator_url, "1s", "50ms"))
    services["services"].append(
        {
            "id": "internal-admin",
            "name": "Internal admin",
            "group": "Internal",
            "public": False,
            "url": f"{simulator_url}/api/texts/Genesis.1.1",
        }
    )
    path = directory / "services.yml"
    path.write_text(json.dumps(services))
    return path


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory) -> Iterator[tuple[Stack, Simulator]]:
    """Exporter, Prometheus and Alertmanager (production configs, fast timings) for the session."""
    workdir = tmp_path_factory.mktemp("stack")
    simulator = Simulator(workdir)
    stack = Stack(
        workdir=workdir / "stack",
        services_file=services_file(workdir, simulator.url),
        slack_webhook_url=f"{simulator.url}/slack-is-not-here",
        timings=Timings.fast(),
    )
    try:
        with stack:
            stack.wait_for_query("count(probe_service_info) >= 5")
            yield stack, simulator
    finally:
        simulator.stop()


@pytest.fixture
def settings(database_url: str, live_stack) -> Settings:
    stack, _ = live_stack
    return Settings(
        prometheus_url=stack.url("prometheus"),
        database_url=database_url,
        admin_tokens=(TOKEN,),
        alertmanager_url=stack.url("alertmanager"),
        public_url="https://status.example.org",
        cache_ttl=0.2,
    )


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
