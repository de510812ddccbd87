"""PostgreSQL through an asyncpg pool: incidents, their updates, maintenance windows, rollups."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import asyncpg
from prometheus_client import Counter

from statuspage.schema import apply_migrations
from statuspage.status import Impact

log = logging.getLogger("statuspage.store")
T = TypeVar("T")
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
SCHEMA_RETRY_SECONDS = 30.0
"""Requests do not retry a failed migration more often than this (the start-up task does)."""


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached, does not answer in time, or has not been reached yet."""


class SchemaError(DatabaseUnavailable):
    """The schema could not be migrated: the database is unusable until that is fixed."""


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


@dataclass
class LockedMaintenance:
    """A maintenance window read under its row lock, and the way to change it in that
    transaction."""

    current: Maintenance | None
    """None: there is no such window."""
    _connection: asyncpg.Connection
    _bounded: Callable[[Awaitable[Any]], Awaitable[Any]]

    async def update(self, changes: Mapping[str, Any]) -> Maintenance:
        assert self.current is not None
        assignments, values = _assignments(changes, _MAINTENANCE_FIELDS)
        sql = (
            f"UPDATE maintenance_windows SET {assignments}, updated_at = now()"
            " WHERE id = $1 RETURNING *"
        )
        row = await self._bounded(self._connection.fetchrow(sql, self.current.id, *values))
        return _maintenance(row)

    async def delete(self) -> None:
        assert self.current is not None
        await self._bounded(
            self._connection.execute(
                "DELETE FROM maintenance_windows WHERE id = $1", self.current.id
            )
        )


_INCIDENT_COLUMNS = (
    "id, title, impact, status, services, created_at, updated_at, resolved_at,"
    " alert_key IS NOT NULL AS automatic"
)
_INCIDENT_FIELDS = {"title", "impact", "services"}
_MAINTENANCE_FIELDS = {"title", "body", "services", "starts_at", "ends_at", "silence_id"}


class Store:
    """Every query the status page makes. Methods raise DatabaseUnavailable when PostgreSQL is
    down, hung or its schema could not be migrated, within `timeout` seconds, so callers
    degrade instead of crashing or hanging."""

    def __init__(
        self,
        dsn: str,
        errors: Counter | None = None,
        password: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        self._dsn = dsn
        self._password = password
        self._errors = errors
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._connecting = asyncio.Lock()
        self._schema_error: tuple[str, float] | None = None
        """A failed migration and when it failed: requests fail fast instead of retrying it."""

    @property
    def connected(self) -> bool:
        return self._pool is not None

    async def connect(self) -> None:
        """Apply migrations, then open the pool; idempotent, safe to retry after a failure."""
        async with self._connecting:
            if self._pool is not None:
                return
            try:
                # Migrations may legitimately take long: their own connection, no timeout.
                connection = await asyncpg.connect(
                    self._dsn, password=self._password, timeout=self._timeout
                )
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from None
            try:
                await apply_migrations(connection)
            except asyncpg.PostgresError as exc:
                connection.terminate()
                message = f"PostgreSQL schema migration failed: {exc.__class__.__name__}: {exc}"
                self._schema_error = (message, time.monotonic())
                raise SchemaError(message) from None
            except BaseException:
                connection.terminate()
                raise
            await connection.close(timeout=self._timeout)
            self._schema_error = None
            self._pool = await asyncpg.create_pool(
                self._dsn, password=self._password, min_size=0, max_size=10
            )

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

    async def incident_stats(self) -> tuple[int, int]:
        """How many incidents there are, and the highest id (0 without any)."""
        row = await self._run(
            lambda c: c.fetchrow("SELECT count(*) AS n, coalesce(max(id), 0) AS top FROM incidents")
        )
        return row["n"], row["top"]

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

    async def latest_maintenances(self, limit: int) -> list[Maintenance]:
        """The windows that start latest, in any state."""
        sql = "SELECT * FROM maintenance_windows ORDER BY starts_at DESC, id DESC LIMIT $1"
        rows = await self._run(lambda c: c.fetch(sql, limit))
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

    @contextlib.asynccontextmanager
    async def maintenance_for_update(self, maintenance_id: int) -> AsyncIterator[LockedMaintenance]:
        """A transaction holding the window's row lock (`SELECT … FOR UPDATE`): concurrent edits
        of one window are serialized, and what the block changes is committed when it exits
        normally, rolled back when it raises. The block itself is not time-limited (it may wait
        for Alertmanager); taking the connection and each statement are."""
        try:
            async with asyncio.timeout(self._timeout):
                pool = await self._ready_pool()
                connection = await pool.acquire()
        except _CONNECTION_FAILURES as exc:
            raise self._unavailable(exc) from None
        settled = False
        try:
            transaction = connection.transaction()
            await self._bounded(transaction.start())
            try:
                row = await self._bounded(
                    connection.fetchrow(
                        "SELECT * FROM maintenance_windows WHERE id = $1 FOR UPDATE",
                        maintenance_id,
                    )
                )
                yield LockedMaintenance(
                    None if row is None else _maintenance(row), connection, self._bounded
                )
            except BaseException:
                await self._bounded(transaction.rollback())
                settled = True
                raise
            await self._bounded(transaction.commit())
            settled = True
        except _CONNECTION_FAILURES as exc:
            raise self._unavailable(exc) from None
        finally:
            if not settled:
                connection.terminate()  # a hung or broken transaction: never wait for it
            await pool.release(connection)

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        """The error for a connection-level failure, counted (as `_run` counts its own)."""
        if self._errors is not None:
            self._errors.inc()
        return DatabaseUnavailable(f"PostgreSQL: {_describe(exc)}")

    async def _bounded(self, statement: Awaitable[T]) -> T:
        async with asyncio.timeout(self._timeout):
            return await statement

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
        """Connect if needed, take a connection and run `operation`, all within `timeout`.

        A connection that timed out is closed at once rather than cancelled politely: a hung
        server would never acknowledge the cancellation, and the caller must not wait for it.
        """
        try:
            async with asyncio.timeout(self._timeout):
                pool = await self._ready_pool()
                connection = await pool.acquire()
                try:
                    result = await operation(connection)
                except asyncpg.PostgresError:
                    raise  # the statement failed; the connection is fine
                except BaseException:
                    connection.terminate()
                    raise
                finally:
                    await pool.release(connection)
                return result
        except _CONNECTION_FAILURES as exc:
            raise DatabaseUnavailable(f"PostgreSQL: {_describe(exc)}") from None

    async def _ready_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            if self._schema_error is not None:
                message, failed_at = self._schema_error
                if time.monotonic() - failed_at < SCHEMA_RETRY_SECONDS:
                    raise SchemaError(message)
            await self.connect()
        assert self._pool is not None
        return self._pool


_CONNECTION_FAILURES = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time (timed out)"
    return f"{exc.__class__.__name__}: {exc}"


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
