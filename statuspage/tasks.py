"""Supervised background tasks: an unexpected exception is logged with its traceback, counted
in `statuspage_background_task_restarts_total` and the task restarted, never lost silently."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

log = logging.getLogger("statuspage.tasks")
RESTART_SECONDS = 5.0


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    restarts: Counter,
    backoff: float = RESTART_SECONDS,
) -> None:
    """Run `run()` until it returns; restart it `backoff` seconds after each failure."""
    while True:
        try:
            await run()
            return
        except Exception:
            fields = {"task": name, "restart_in": backoff}
            log.error("background task failed", exc_info=True, extra={"fields": fields})
            restarts.labels(name).inc()
            await asyncio.sleep(backoff)
