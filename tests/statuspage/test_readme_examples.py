"""README's admin API examples, run as written with curl against a real status page."""

import asyncio
import json
import subprocess

from statuspage.app import create_app
from statuspage.store import Store
from tests.readme import shell_block_containing
from tests.statuspage.conftest import TOKEN


def run_block(block: str, page_url: str) -> subprocess.CompletedProcess[str]:
    script = block.replace("TOKEN=…", f"TOKEN={TOKEN}").replace(
        "PAGE=http://127.0.0.1:8080", f"PAGE={page_url}"
    )
    # Every request must succeed; each JSON answer goes on its own line.
    prelude = 'curl() { command curl --fail-with-body "$@"; echo; }\n'
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", prelude + script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_admin_api_examples_work_as_written(aiohttp_server, settings) -> None:
    server = await aiohttp_server(create_app(settings), host="127.0.0.1")
    block = shell_block_containing("/admin/api/incidents")
    result = await asyncio.to_thread(run_block, block, str(server.make_url("")).rstrip("/"))
    assert result.returncode == 0, result.stdout + result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    created, resolved, edited, listed = answers[:4]
    assert (created["title"], created["impact"], created["services"]) == (
        "Linker API is slow",
        "minor",
        ["linker"],
    )
    assert resolved["status"] == "resolved"
    assert edited["impact"] == "major"
    assert [incident["id"] for incident in listed] == [created["id"]]

    store = Store(settings.database_url)
    try:
        assert await store.list_incidents() == []
        (maintenance,) = await store.list_maintenances()
    finally:
        await store.close()
    assert maintenance.title == "Database upgrade"
    assert maintenance.silence_id
