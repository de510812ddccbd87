"""The database schema: plain-SQL migrations (`migrations/NNN_name.sql`), applied in order
under an advisory lock."""

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from statuslog import event

log = logging.getLogger("statuspage.migrations")
# Any fixed 64-bit number works; it names "sefaria-status schema" among the cluster's locks.
ADVISORY_LOCK_KEY = 0x5EFA_51A7_05
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("statuspage.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.version)


async def apply_migrations(
    connection: asyncpg.Connection, migrations: list[Migration] | None = None
) -> list[int]:
    """Apply what is missing, each in its own transaction; returns the versions applied.

    Two instances starting together serialize on the advisory lock; the second finds
    everything recorded and applies nothing.
    """
    await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await connection.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row["version"]
            for row in await connection.fetch("SELECT version FROM schema_migrations")
        }
        applied = []
        for migration in migrations if migrations is not None else bundled_migrations():
            if migration.version in done:
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            event(log, logging.INFO, "migration applied", version=migration.version)
            applied.append(migration.version)
        return applied
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
