"""PostgreSQL through an asyncpg pool: incidents, their updates, maintenance windows, rollups."""

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter

from statuspage.schema import apply_migrations
from statuspage.status import Impact

log = logging.getLogger("statuspage.store")
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached (or has not been reached yet)."""


@dataclass(frozen=True)
class IncidentUpdate:
    id: int
    status: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Incident:
    id: int
    title: str
    impact: Impact
    status: str
    services: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    automatic: bool
    updates: tuple[IncidentUpdate, ...] = ()
    """Newest first."""


@dataclass(frozen=True)
class Maintenance:
    id: int
    title: str
    body: str
    services: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    silence_id: str | None
    created_at: datetime
    updated_at: datetime

    def state(self, now: datetime) -> str:
        """Statuspage's maintenance status: scheduled, in_progress or completed."""
        if now < self.starts_at:
            return "scheduled"
        return "in_progress" if now < self.ends_at else "completed"


_INCIDENT_COLUMNS = (
    "id, title, impact, status, services, created_at, updated_at, resolved_at,"
    " alert_key IS NOT NULL AS automatic"
)
_INCIDENT_FIELDS = {"title", "impact", "services"}
_MAINTENANCE_FIELDS = {"title", "body", "services", "starts_at", "ends_at", "silence_id"}


class Store:
    """Every query the status page makes. Methods raise DatabaseUnavailable when PostgreSQL is
    down, so callers degrade instead of crashing."""

    def __init__(
        self, dsn: str, errors: Counter | None = None, password: str | None = None
    ) -> None:
        self._dsn = dsn
        self._password = password
        self._errors = errors
        self._pool: asyncpg.Pool | None = None
        self._connecting = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._pool is not None

    async def connect(self) -> None:
        """Open the pool and apply migrations; idempotent, safe to retry after a failure."""
        async with self._connecting:
            if self._pool is not None:
                return
            try:
                pool = await asyncpg.create_pool(
                    self._dsn,
                    password=self._password,
                    min_size=1,
                    max_size=10,
                    timeout=5,
                    command_timeout=10,
                )
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from None
            try:
                async with pool.acquire() as connection:
                    await apply_migrations(connection)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        await self._run(lambda c: c.fetchval("SELECT 1"))

    # Incidents -------------------------------------------------------------------------

    async def list_incidents(
        self, *, unresolved: bool = False, limit: int = 50, offset: int = 0
    ) -> list[Incident]:
        where = "WHERE resolved_at IS NULL" if unresolved else ""
        sql = (
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents {where}"
            " ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
        )

        async def query(connection: asyncpg.Connection) -> list[Incident]:
            rows = await connection.fetch(sql, limit, offset)
            return await _with_updates(connection, rows)

        return await self._run(query)

    async def get_incident(self, incident_id: int) -> Incident | None:
        async def query(connection: asyncpg.Connection) -> Incident | None:
            return await _incident(connection, incident_id)

        return await self._run(query)

    async def create_incident(
        self,
        title: str,
        impact: Impact,
        status: str,
        body: str,
        services: Sequence[str],
        alert_key: str | None = None,
        alert_started_at: datetime | None = None,
    ) -> Incident | None:
        """The new incident with its first update. None when `alert_key` already has an open
        incident, or one that ended at or after `alert_started_at` (a late copy of a
        notification about an outage that is over)."""

        async def write(connection: asyncpg.Connection) -> Incident | None:
            async with connection.transaction():
                incident_id = await connection.fetchval(
                    """INSERT INTO incidents (title, impact, status, services, alert_key,
                                              resolved_at)
                       SELECT $1, $2, $3, $4, $5, CASE WHEN $3 = 'resolved' THEN now() END
                        WHERE NOT EXISTS (
                              SELECT 1 FROM incidents WHERE alert_key = $5
                                 AND coalesce(alert_ended_at, resolved_at) >= $6)
                       ON CONFLICT (alert_key) WHERE resolved_at IS NULL DO NOTHING
                       RETURNING id""",
                    title,
                    impact.value,
                    status,
                    list(services),
                    alert_key,
                    alert_started_at,
                )
                if incident_id is None:
                    return None
                await _insert_update(connection, incident_id, status, body)
                return await _incident(connection, incident_id)

        return await self._run(write)

    async def add_update(self, incident_id: int, status: str, body: str) -> Incident | None:
        async def write(connection: asyncpg.Connection) -> Incident | None:
            async with connection.transaction():
                if not await _set_status(connection, incident_id, status):
                    return None
                await _insert_update(connection, incident_id, status, body)
                return await _incident(connection, incident_id)

        return await self._run(write)

    async def edit_incident(self, incident_id: int, changes: Mapping[str, Any]) -> Incident | None:
        assignments, values = _assignments(changes, _INCIDENT_FIELDS)

        sql = f"UPDATE incidents SET {assignments}, updated_at = now() WHERE id = $1 RETURNING id"

        async def write(connection: asyncpg.Connection) -> Incident | None:
            updated = await connection.fetchval(sql, incident_id, *values)
            return None if updated is None else await _incident(connection, incident_id)

        return await self._run(write)

    async def delete_incident(self, incident_id: int) -> bool:
        status = await self._run(
            lambda c: c.execute("DELETE FROM incidents WHERE id = $1", incident_id)
        )
        return status == "DELETE 1"

    async def resolve_alert_incident(
        self, alert_key: str, body: str, ended_at: datetime | None = None
    ) -> Incident | None:
        """Resolve the open automatic incident of `alert_key` once, noting when the alert
        ended; None if there is none open."""

        async def write(connection: asyncpg.Connection) -> Incident | None:
            async with connection.transaction():
                incident_id = await connection.fetchval(
                    """UPDATE incidents SET alert_ended_at = $2
                        WHERE alert_key = $1 AND resolved_at IS NULL RETURNING id""",
                    alert_key,
                    ended_at,
                )
                if incident_id is None:
                    return None
                await _set_status(connection, incident_id, "resolved")
                await _insert_update(connection, incident_id, "resolved", body)
                return await _incident(connection, incident_id)

        return await self._run(write)

    # Maintenance windows ---------------------------------------------------------------

    async def list_maintenances(self, ending_after: datetime | None = None) -> list[Maintenance]:
        sql = "SELECT * FROM maintenance_windows WHERE ends_at > $1 ORDER BY starts_at, id"
        since = ending_after or datetime.min.replace(tzinfo=UTC)
        rows = await self._run(lambda c: c.fetch(sql, since))
        return [_maintenance(row) for row in rows]

    async def get_maintenance(self, maintenance_id: int) -> Maintenance | None:
        row = await self._run(
            lambda c: c.fetchrow("SELECT * FROM maintenance_windows WHERE id = $1", maintenance_id)
        )
        return None if row is None else _maintenance(row)

    async def create_maintenance(
        self,
        title: str,
        body: str,
        services: Sequence[str],
        starts_at: datetime,
        ends_at: datetime,
        silence_id: str | None,
    ) -> Maintenance:
        row = await self._run(
            lambda c: c.fetchrow(
                """INSERT INTO maintenance_windows
                       (title, body, services, starts_at, ends_at, silence_id)
                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING *""",
                title,
                body,
                list(services),
                starts_at,
                ends_at,
                silence_id,
            )
        )
        return _maintenance(row)

    async def edit_maintenance(
        self, maintenance_id: int, changes: Mapping[str, Any]
    ) -> Maintenance | None:
        assignments, values = _assignments(changes, _MAINTENANCE_FIELDS)
        sql = (
            f"UPDATE maintenance_windows SET {assignments}, updated_at = now()"
            " WHERE id = $1 RETURNING *"
        )
        row = await self._run(lambda c: c.fetchrow(sql, maintenance_id, *values))
        return None if row is None else _maintenance(row)

    async def delete_maintenance(self, maintenance_id: int) -> Maintenance | None:
        row = await self._run(
            lambda c: c.fetchrow(
                "DELETE FROM maintenance_windows WHERE id = $1 RETURNING *", maintenance_id
            )
        )
        return None if row is None else _maintenance(row)

    # Daily uptime rollups --------------------------------------------------------------

    async def rollup_days(self, since: date) -> set[date]:
        rows = await self._run(
            lambda c: c.fetch("SELECT DISTINCT day FROM daily_uptime WHERE day >= $1", since)
        )
        return {row["day"] for row in rows}

    async def save_rollups(self, rows: Iterable[tuple[str, date, float]]) -> int:
        """Insert (service, day, ratio) rows; an existing day keeps its first value."""
        records = list(rows)
        await self._run(
            lambda c: c.executemany(
                """INSERT INTO daily_uptime (service, day, ratio) VALUES ($1, $2, $3)
                   ON CONFLICT (service, day) DO NOTHING""",
                records,
            )
        )
        return len(records)

    async def rollups(self, since: date) -> dict[str, dict[date, float]]:
        rows = await self._run(
            lambda c: c.fetch("SELECT service, day, ratio FROM daily_uptime WHERE day >= $1", since)
        )
        result: dict[str, dict[date, float]] = {}
        for row in rows:
            result.setdefault(row["service"], {})[row["day"]] = row["ratio"]
        return result

    async def _run(self, operation: Any) -> Any:
        """Run `operation(connection)`; connection-level failures become DatabaseUnavailable."""
        try:
            return await self._on_connection(operation)
        except DatabaseUnavailable:
            if self._errors is not None:
                self._errors.inc()
            raise

    async def _on_connection(self, operation: Any) -> Any:
        if self._pool is None:
            await self.connect()
        assert self._pool is not None
        try:
            async with self._pool.acquire(timeout=5) as connection:
                return await operation(connection)
        except (
            OSError,
            TimeoutError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
            asyncpg.AdminShutdownError,
        ) as exc:
            raise DatabaseUnavailable(f"PostgreSQL: {exc.__class__.__name__}: {exc}") from None


async def _with_updates(
    connection: asyncpg.Connection, rows: Sequence[asyncpg.Record]
) -> list[Incident]:
    ids = [row["id"] for row in rows]
    updates: dict[int, list[IncidentUpdate]] = {incident_id: [] for incident_id in ids}
    for update in await connection.fetch(
        """SELECT id, incident_id, status, body, created_at FROM incident_updates
           WHERE incident_id = ANY($1) ORDER BY created_at DESC, id DESC""",
        ids,
    ):
        updates[update["incident_id"]].append(
            IncidentUpdate(update["id"], update["status"], update["body"], update["created_at"])
        )
    return [replace(_incident_row(row), updates=tuple(updates[row["id"]])) for row in rows]


async def _incident(connection: asyncpg.Connection, incident_id: int) -> Incident | None:
    row = await connection.fetchrow(
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = $1", incident_id
    )
    if row is None:
        return None
    return (await _with_updates(connection, [row]))[0]


async def _set_status(connection: asyncpg.Connection, incident_id: int, status: str) -> bool:
    updated = await connection.fetchval(
        """UPDATE incidents SET status = $2, updated_at = now(),
               resolved_at = CASE WHEN $2 = 'resolved' THEN coalesce(resolved_at, now()) END
           WHERE id = $1 RETURNING id""",
        incident_id,
        status,
    )
    return updated is not None


async def _insert_update(
    connection: asyncpg.Connection, incident_id: int, status: str, body: str
) -> None:
    await connection.execute(
        "INSERT INTO incident_updates (incident_id, status, body) VALUES ($1, $2, $3)",
        incident_id,
        status,
        body,
    )


def _assignments(changes: Mapping[str, Any], allowed: set[str]) -> tuple[str, list[Any]]:
    """`col = $2, …` for an UPDATE whose $1 is the id; only whitelisted column names."""
    unknown = set(changes) - allowed
    if unknown or not changes:
        raise ValueError(f"cannot update {sorted(unknown) or 'nothing'}")
    names = sorted(changes)
    assignments = ", ".join(f"{name} = ${index}" for index, name in enumerate(names, start=2))
    values = [_column_value(changes[name]) for name in names]
    return assignments, values


def _column_value(value: Any) -> Any:
    if isinstance(value, Impact):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _incident_row(row: asyncpg.Record) -> Incident:
    return Incident(
        id=row["id"],
        title=row["title"],
        impact=Impact(row["impact"]),
        status=row["status"],
        services=tuple(row["services"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        resolved_at=row["resolved_at"],
        automatic=row["automatic"],
    )


def _maintenance(row: asyncpg.Record) -> Maintenance:
    return Maintenance(
        id=row["id"],
        title=row["title"],
        body=row["body"],
        services=tuple(row["services"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        silence_id=row["silence_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
