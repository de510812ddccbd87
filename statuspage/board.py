"""The board: everything the public pages and the JSON API show, built once per refresh.

Live data (Prometheus) and records (PostgreSQL) are each cached single-flight with a TTL and
fall back to their last good value; the board combines them with the status rules. Pages
rendered from a board are memoized on it, so a visitor costs a dictionary lookup.
"""

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import groupby
from typing import Any

from prometheus_client import Counter

from statuspage.cache import Cached, KeyedCache, SingleFlight
from statuspage.live import Live, ServiceInfo, load_live
from statuspage.prometheus import PrometheusClient, PrometheusError
from statuspage.status import Overall, Probe, Status, component_status, overall_status
from statuspage.store import DatabaseUnavailable, Incident, Maintenance, Store

UPTIME_DAYS = 90
RECENT_INCIDENTS = 10
LATEST = 50
"""Incidents and maintenance windows every refresh loads: the feeds, the JSON API's lists and
the first history pages are served from these."""
PAGES_CACHED = 1_000
"""History pages and incidents beyond the latest, cached one by one (least recently used)."""


@dataclass(frozen=True)
class Records:
    unresolved: tuple[Incident, ...]
    latest: tuple[Incident, ...]
    """The newest incidents, open or resolved, newest first."""
    incident_count: int
    last_incident_id: int
    maintenances: tuple[Maintenance, ...]
    """Windows that have not ended yet, earliest first."""
    latest_maintenances: tuple[Maintenance, ...]
    """The windows that start latest, in any state."""
    rollups: Mapping[str, Mapping[date, float]]


@dataclass(frozen=True)
class Day:
    day: date
    ratio: float | None


@dataclass(frozen=True)
class Component:
    info: ServiceInfo
    status: Status
    latency: float | None
    down_since: float | None
    days: tuple[Day, ...]
    """The last 90 UTC days, oldest first; today is the last."""
    uptime: float | None
    """Mean of the days with data."""
    last_report: float | None = None
    """A heartbeat service's latest report, shown instead of a latency."""


@dataclass(frozen=True)
class Board:
    built_at: float
    overall: Overall
    components: tuple[Component, ...]
    """Public services only, by group then name."""
    unresolved: tuple[Incident, ...]
    recent: tuple[Incident, ...]
    active_maintenances: tuple[Maintenance, ...]
    upcoming_maintenances: tuple[Maintenance, ...]
    records: Records | None
    """What PostgreSQL said at the last successful refresh (None: nothing yet)."""
    live_loaded_at: float | None
    live_delayed: bool
    """Prometheus could not be read at the last refresh: live data is old or missing."""
    records_delayed: bool
    """PostgreSQL could not be read at the last refresh: incidents may be missing or old."""
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def groups(self) -> list[tuple[str, list[Component]]]:
        return [
            (group, list(members))
            for group, members in groupby(self.components, key=lambda c: c.info.group)
        ]

    def component(self, service: str) -> Component | None:
        return next((c for c in self.components if c.info.id == service), None)

    def render(self, name: str, render: Any) -> Any:
        """`render(self)` once per board and output name."""
        if name not in self.memo:
            self.memo[name] = render(self)
        return self.memo[name]


class BoardSource:
    """Builds boards from the caches; at most one board per second of wall time. Every public
    read of PostgreSQL goes through here, so its load depends on the TTL, never on visitors."""

    def __init__(
        self,
        prometheus: PrometheusClient,
        store: Store,
        ttl: float,
        cache_requests: Counter,
        wait: float,
    ) -> None:
        self.live: SingleFlight[Live] = SingleFlight(
            "prometheus",
            partial(load_live, prometheus),
            ttl,
            cache_requests,
            (PrometheusError,),
            wait,
        )
        self.records: SingleFlight[Records] = SingleFlight(
            "postgresql",
            partial(load_records, store),
            ttl,
            cache_requests,
            (DatabaseUnavailable,),
            wait,
        )
        self._pages: KeyedCache[tuple[Any, ...], Any] = KeyedCache(
            "postgresql_pages",
            partial(_load_page, store),
            ttl,
            cache_requests,
            (DatabaseUnavailable,),
            wait,
            PAGES_CACHED,
        )
        self._board: Board | None = None
        self._live: Cached[Live] | None = None
        self._records: Cached[Records] | None = None

    def invalidate_records(self) -> None:
        self.records.invalidate()
        self._pages.invalidate()

    async def close(self) -> None:
        for cache in (self.live, self.records, self._pages):
            await cache.close()

    async def incidents(self, records: Records, offset: int, limit: int) -> Cached[Any]:
        """Incidents `offset`… in history order: from the latest if they hold them, else one
        cached query per page."""
        if offset + limit <= len(records.latest) or len(records.latest) == records.incident_count:
            return Cached(records.latest[offset : offset + limit], time.time(), None)
        return await self._pages.get(("page", offset, limit))

    async def incident(self, records: Records, incident_id: int) -> Cached[Any]:
        """One incident; value None: there is none with this id, or — when loaded_at is None
        too — it could not be read."""
        known = (*records.unresolved, *records.latest)
        found = next((i for i in known if i.id == incident_id), None)
        if found is not None or incident_id > records.last_incident_id:
            return Cached(found, time.time(), None)
        return await self._pages.get(("incident", incident_id))

    async def board(self) -> Board:
        if self.live.must_wait or self.records.must_wait:
            # Both at once: with both sources hung a visitor waits for one bounded wait, not two.
            live, records = await asyncio.gather(self.live.get(), self.records.get())
        else:
            # The hot path: both are cache hits, and awaiting them one after the other costs less
            # than scheduling two tasks.
            live = await self.live.get()
            records = await self.records.get()
        now = time.time()
        # Entries are compared by identity: every refresh stores a new one.
        unchanged = live is self._live and records is self._records
        if self._board is None or not unchanged or int(now) != int(self._board.built_at):
            self._board = build_board(live, records, now)
            self._live, self._records = live, records
        return self._board

    async def known_services(self) -> Mapping[str, ServiceInfo] | None:
        """Every service Prometheus knows (private ones too), or None if it never answered."""
        live = await self.live.get()
        return None if live.value is None else live.value.services


async def load_records(store: Store) -> Records:
    today = datetime.now(UTC).date()
    (
        unresolved,
        latest,
        (count, last_id),
        maintenances,
        latest_maintenances,
        rollups,
    ) = await asyncio.gather(
        store.list_incidents(unresolved=True, limit=100),
        store.list_incidents(limit=LATEST),
        store.incident_stats(),
        store.list_maintenances(ending_after=datetime.now(UTC)),
        store.latest_maintenances(LATEST),
        store.rollups(today - timedelta(days=UPTIME_DAYS - 1)),
    )
    return Records(
        unresolved=tuple(unresolved),
        latest=tuple(latest),
        incident_count=count,
        last_incident_id=last_id,
        maintenances=tuple(maintenances),
        latest_maintenances=tuple(latest_maintenances),
        rollups=rollups,
    )


async def _load_page(store: Store, key: tuple[Any, ...]) -> Any:
    """("incident", id) → that incident or None; ("page", offset, limit) → incidents."""
    if key[0] == "incident":
        return await store.get_incident(key[1])
    _, offset, limit = key
    return tuple(await store.list_incidents(limit=limit, offset=offset))


def build_board(live: Cached[Live], records: Cached[Records], now: float) -> Board:
    """Combine the latest live data and records under the status rules (DESIGN §5)."""
    known = live.value or Live({}, {}, {}, {})
    stored = records.value or Records((), (), 0, 0, (), (), {})
    moment = datetime.fromtimestamp(now, UTC)
    active = tuple(m for m in stored.maintenances if m.state(moment) == "in_progress")
    upcoming = tuple(m for m in stored.maintenances if m.state(moment) == "scheduled")
    today = moment.date()
    window = [today - timedelta(days=offset) for offset in range(UPTIME_DAYS - 1, -1, -1)]
    components = []
    for info in sorted(known.services.values(), key=lambda s: (s.group.lower(), s.name.lower())):
        if not info.public:
            continue
        probe = known.probes.get(info.id, Probe())
        impacts = [i.impact for i in stored.unresolved if info.id in i.services]
        status = component_status(probe, now, impacts, any(info.id in m.services for m in active))
        stored_days = stored.rollups.get(info.id, {})
        days = tuple(
            Day(day, known.today_uptime.get(info.id) if day == today else stored_days.get(day))
            for day in window
        )
        ratios = [d.ratio for d in days if d.ratio is not None]
        components.append(
            Component(
                info=info,
                status=status,
                latency=probe.latency if status is not Status.UNKNOWN else None,
                down_since=known.down_since.get(info.id),
                days=days,
                uptime=sum(ratios) / len(ratios) if ratios else None,
                last_report=known.last_reports.get(info.id),
            )
        )
    overall = overall_status([c.status for c in components], [i.impact for i in stored.unresolved])
    return Board(
        built_at=now,
        overall=overall,
        components=tuple(components),
        unresolved=stored.unresolved,
        recent=tuple(i for i in stored.latest[:RECENT_INCIDENTS] if i.resolved_at is not None),
        active_maintenances=active,
        upcoming_maintenances=upcoming,
        records=records.value,
        live_loaded_at=live.loaded_at,
        live_delayed=live.error is not None or live.value is None,
        records_delayed=records.error is not None or records.value is None,
    )
