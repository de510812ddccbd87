"""Single-flight, stale-while-revalidate caching: one refresh per TTL however many callers ask,
and a caller never waits for a refresh while there is a value to serve."""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import Counter

from statuslog import event

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
log = logging.getLogger("statuspage.cache")
Clock = Callable[[], float]


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

    A caller gets the current value at once and the refresh runs in the background; it waits
    (at most `wait` seconds) only when there is nothing to serve yet, or when `invalidate()`
    said the value is out of date (so a writer sees its own change). When a refresh fails the
    previous value is kept with the error attached, and the source is not asked again before
    `ttl` has passed, so an outage is not hammered.
    """

    def __init__(
        self,
        name: str,
        load: Callable[[], Awaitable[T]],
        ttl: float,
        requests: Counter,
        failure_types: tuple[type[BaseException], ...],
        wait: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._name = name
        self._load = load
        self._ttl = ttl
        self._requests = requests
        self._failure_types = failure_types
        self._wait = wait
        self._clock = clock
        self._current: Cached[T] = Cached(None, None, None)
        self._attempted_at = -float("inf")
        self._refresh: asyncio.Task[None] | None = None
        self._generation = 0
        """Bumped by invalidate(); a refresh started before the bump may miss a write."""
        self._settled_generation = -1
        """The generation the latest finished refresh started at."""

    @property
    def current(self) -> Cached[T]:
        return self._current

    @property
    def must_wait(self) -> bool:
        """Whether get() would wait for a refresh now: nothing to serve yet, or invalidated."""
        return self._current.value is None or self._settled_generation < self._generation

    def invalidate(self) -> None:
        """The value is out of date: the next get() refreshes and waits for it (bounded)."""
        self._generation += 1

    async def get(self) -> Cached[T]:
        deadline = self._clock() + self._wait
        started = self._start_refresh_if_due()
        self._requests.labels(self._name, "miss" if started else "hit").inc()
        while self._refresh is not None and self.must_wait:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(asyncio.shield(self._refresh), remaining)
            except TimeoutError:
                break
            self._start_refresh_if_due()
        return self._current

    async def close(self) -> None:
        """Stop a refresh in flight (at shutdown)."""
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

    def _start_refresh_if_due(self) -> bool:
        outdated = self._settled_generation < self._generation
        due = self._clock() - self._attempted_at >= self._ttl
        if self._refresh is not None or not (due or outdated):
            return False
        self._attempted_at = self._clock()
        self._refresh = asyncio.create_task(self._run(self._generation))
        return True

    async def _run(self, generation: int) -> None:
        try:
            value = await self._load()
        except self._failure_types as exc:
            event(log, logging.WARNING, "refresh failed", source=self._name, error=exc)
            self._current = Cached(self._current.value, self._current.loaded_at, str(exc))
        else:
            self._current = Cached(value, time.time(), None)
        finally:
            self._settled_generation = generation
            self._refresh = None


class KeyedCache(Generic[K, T]):
    """A SingleFlight per key (a history page, an incident), the least recently used forgotten
    beyond `size`: queries per TTL grow with the distinct keys asked for, never with visitors."""

    def __init__(
        self,
        name: str,
        load: Callable[[K], Awaitable[T]],
        ttl: float,
        requests: Counter,
        failure_types: tuple[type[BaseException], ...],
        wait: float,
        size: int,
    ) -> None:
        self._entry = lambda key: SingleFlight(
            name, lambda: load(key), ttl, requests, failure_types, wait
        )
        self._size = size
        self._entries: OrderedDict[K, SingleFlight[T]] = OrderedDict()

    async def get(self, key: K) -> Cached[T]:
        entry = self._entries.pop(key, None) or self._entry(key)
        self._entries[key] = entry
        while len(self._entries) > self._size:
            _, evicted = self._entries.popitem(last=False)
            await evicted.close()
        return await entry.get()

    def invalidate(self) -> None:
        for entry in self._entries.values():
            entry.invalidate()

    async def close(self) -> None:
        for entry in self._entries.values():
            await entry.close()
