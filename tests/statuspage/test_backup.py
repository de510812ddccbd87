"""README's PostgreSQL backup and restore commands, run against a real PostgreSQL."""

import asyncio
import os
import shutil
import subprocess

from postgres import postgres_bin

from statuspage.status import Impact
from statuspage.store import Store
from tests.readme import command_starting
from tests.statuspage.conftest import throwaway_cluster

IN_CONTAINER = "docker compose exec -T postgres "


def run_readme_command(prefix: str, cluster, cwd) -> None:
    """The README's command as the container runs it, pointed at the test cluster."""
    command = command_starting(IN_CONTAINER + prefix).removeprefix(IN_CONTAINER)
    bin_dir = os.path.dirname(postgres_bin("pg_dump"))
    environ = os.environ | {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(cluster.port),
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"{command}\n{result.stderr}"


async def test_readme_backup_and_restore_bring_incidents_back(tmp_path) -> None:
    cluster, base = throwaway_cluster()
    await asyncio.to_thread(cluster.start)
    try:
        await asyncio.to_thread(cluster.create_database, "statuspage")
        store = Store(cluster.url("statuspage"))
        await store.connect()
        try:
            await store.create_incident(
                "Linker slow", Impact.MINOR, "investigating", "Looking.", ["linker"]
            )
            await asyncio.to_thread(run_readme_command, "pg_dump", cluster, tmp_path)
            assert (tmp_path / "statuspage.dump").stat().st_size > 0
            (lost,) = await store.list_incidents()
            await store.delete_incident(lost.id)
            await store.create_incident(
                "Written after the backup", Impact.NONE, "investigating", "-", []
            )
            await store.close()
            await asyncio.to_thread(run_readme_command, "pg_restore", cluster, tmp_path)
            await store.connect()
            restored = await store.list_incidents()
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(base, ignore_errors=True)
    assert [(incident.title, incident.services) for incident in restored] == [
        ("Linker slow", ("linker",))
    ]
