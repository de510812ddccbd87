"""Supervised background tasks: a failure is logged with its traceback, counted, and the task
restarted; a task that finishes is not restarted."""

import asyncio
import logging

from prometheus_client import CollectorRegistry, Counter

from statuspage.tasks import supervise


async def test_a_failing_task_is_logged_counted_and_restarted(caplog) -> None:
    registry = CollectorRegistry()
    restarts = Counter("restarts", "r", ["task"], registry=registry)
    runs = []

    async def flaky() -> None:
        runs.append(len(runs) + 1)
        if len(runs) < 3:
            raise RuntimeError(f"bug {len(runs)}")

    with caplog.at_level(logging.ERROR, logger="statuspage.tasks"):
        await asyncio.wait_for(supervise("rollups", flaky, restarts, backoff=0.01), timeout=5)
    assert runs == [1, 2, 3]  # and then it finished: no fourth run
    assert registry.get_sample_value("restarts_total", {"task": "rollups"}) == 2
    assert [str(r.exc_info[1]) for r in caplog.records] == ["bug 1", "bug 2"]
    assert {r.fields["task"] for r in caplog.records} == {"rollups"}


async def test_cancelling_a_supervised_task_stops_it() -> None:
    restarts = Counter("restarts", "r", ["task"], registry=CollectorRegistry())
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervise("forever", forever, restarts))
    await started.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done == {task}
    assert task.cancelled()
