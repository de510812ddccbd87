"""Single-flight, stale-on-error caching: one refresh per TTL however many callers wait for it."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import Counter

from statuslog import event

T = TypeVar("T")
log = logging.getLogger("statuspage.cache")


@dataclass(frozen=True)
class Cached(Generic[T]):
    value: T | None
    """The latest value loaded successfully; None if no load has succeeded yet."""
    loaded_at: float | None
    """Wall-clock time of that load."""
    error: str | None
    """Why the latest refresh failed, if it did (the value is then stale)."""


class SingleFlight(Generic[T]):
    """Calls `load` at most once per `ttl` seconds; concurrent callers share that one call.

    When a refresh fails the previous value is kept and served with the error attached, and
    the source is not asked again before `ttl` has passed, so an outage is not hammered.
    """

    def __init__(
        self,
        name: str,
        load: Callable[[], Awaitable[T]],
        ttl: float,
        requests: Counter,
        failure_types: tuple[type[BaseException], ...],
    ) -> None:
        self._name = name
        self._load = load
        self._ttl = ttl
        self._requests = requests
        self._failure_types = failure_types
        self._current: Cached[T] = Cached(None, None, None)
        self._attempted_at = -float("inf")
        self._refresh: asyncio.Task[None] | None = None

    @property
    def current(self) -> Cached[T]:
        return self._current

    def invalidate(self) -> None:
        """The next get() refreshes (after a write, so the writer sees its change)."""
        self._attempted_at = -float("inf")

    async def get(self) -> Cached[T]:
        if self._refresh is None and time.monotonic() - self._attempted_at >= self._ttl:
            self._requests.labels(self._name, "miss").inc()
            self._attempted_at = time.monotonic()
            self._refresh = asyncio.create_task(self._run())
        else:
            self._requests.labels(self._name, "hit").inc()
        if self._refresh is not None:
            await asyncio.shield(self._refresh)
        return self._current

    async def _run(self) -> None:
        try:
            value = await self._load()
        except self._failure_types as exc:
            event(log, logging.WARNING, "refresh failed", source=self._name, error=exc)
            self._current = Cached(self._current.value, self._current.loaded_at, str(exc))
        else:
            self._current = Cached(value, time.time(), None)
        finally:
            self._refresh = None
