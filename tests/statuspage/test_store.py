"""The PostgreSQL store and its migrations, against a real PostgreSQL."""

import asyncio
import shutil
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from statuspage.schema import Migration, apply_migrations, bundled_migrations
from statuspage.settings import Settings
from statuspage.status import Impact
from statuspage.store import DatabaseUnavailable, Store
from tests.statuspage.conftest import throwaway_cluster
from tests.statuspage.helpers import eventually


@pytest.fixture
async def store(database_url: str):
    store = Store(database_url)
    await store.connect()
    yield store
    await store.close()


async def test_two_instances_migrating_at_once_apply_each_migration_once(database_url) -> None:
    slow = Migration(999, "slow", "SELECT pg_sleep(0.3); CREATE TABLE slow_marker (id int);")
    migrations = [*bundled_migrations(), slow]
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        applied = await asyncio.gather(
            apply_migrations(first, migrations), apply_migrations(second, migrations)
        )
        recorded = await first.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await first.close()
        await second.close()
    assert sorted(applied, key=len) == [[], [m.version for m in migrations]]
    assert [row["version"] for row in recorded] == [m.version for m in migrations]


async def test_a_failing_migration_is_rolled_back_and_not_recorded(database_url) -> None:
    broken = Migration(998, "broken", "CREATE TABLE half_done (id int); SELECT no_such_column;")
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedColumnError):
            await apply_migrations(connection, [*bundled_migrations(), broken])
        assert await connection.fetchval("SELECT to_regclass('half_done')") is None
        latest = max(migration.version for migration in bundled_migrations())
        assert await connection.fetchval("SELECT max(version) FROM schema_migrations") == latest
        # The lock was released: another run gets through.
        assert await apply_migrations(connection) == []
    finally:
        await connection.close()


async def test_incident_lifecycle(store: Store) -> None:
    created = await store.create_incident(
        "Linker slow", Impact.MINOR, "investigating", "Looking into it", ["linker"]
    )
    assert (created.status, created.resolved_at, created.services) == (
        "investigating",
        None,
        ("linker",),
    )
    assert [u.body for u in created.updates] == ["Looking into it"]
    await store.add_update(created.id, "identified", "Found the cause")
    resolved = await store.add_update(created.id, "resolved", "Fixed")
    assert resolved.status == "resolved"
    assert resolved.resolved_at is not None
    assert [u.status for u in resolved.updates] == ["resolved", "identified", "investigating"]
    edited = await store.edit_incident(created.id, {"impact": Impact.MAJOR, "title": "Linker down"})
    assert (edited.impact, edited.title) == (Impact.MAJOR, "Linker down")
    assert await store.list_incidents(unresolved=True) == []
    assert [i.id for i in await store.list_incidents()] == [created.id]
    assert await store.delete_incident(created.id) is True
    assert await store.get_incident(created.id) is None
    assert await store.add_update(created.id, "resolved", "x") is None
    assert await store.delete_incident(created.id) is False


async def test_an_alert_opens_one_incident_and_resolves_it_once(store: Store) -> None:
    args = ("sefaria.org is down", Impact.MAJOR, "investigating", "Checks fail", ["sefaria-org"])
    key = "ServiceDown:sefaria-org"
    started = datetime(2026, 1, 1, tzinfo=UTC)
    first = await store.create_incident(*args, alert_key=key, alert_started_at=started)
    again = await store.create_incident(*args, alert_key=key, alert_started_at=started)
    assert first is not None
    assert again is None
    assert first.automatic is True
    ended = started + timedelta(minutes=5)
    assert await store.resolve_alert_incident(key, "Back", ended) is not None
    assert await store.resolve_alert_incident(key, "Back", ended) is None
    (incident,) = await store.list_incidents()
    assert [u.status for u in incident.updates] == ["resolved", "investigating"]
    # A copy of the notification about that outage opens nothing; the next outage does.
    assert await store.create_incident(*args, alert_key=key, alert_started_at=started) is None
    later = ended + timedelta(minutes=1)
    assert await store.create_incident(*args, alert_key=key, alert_started_at=later) is not None


async def test_open_automatic_incidents_move_to_one_key_per_service(database_url) -> None:
    """Upgrading from keys per alert fingerprint: the oldest open incident of each service is
    resolved by the next resolved notification; nothing else changes."""
    first, *later = bundled_migrations()
    assert [m.version for m in later] == [2]
    connection = await asyncpg.connect(database_url)
    try:
        await apply_migrations(connection, [first])
        await connection.executemany(
            """INSERT INTO incidents (title, impact, status, services, alert_key, resolved_at)
               VALUES ($1, 'major', 'investigating', $2, $3, $4)""",
            [
                ("old outage", ["linker"], "fp1:2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
                ("linker down", ["linker"], "fp2:2026-02-01", None),
                ("linker down (copy)", ["linker"], "fp3:2026-02-01", None),
                ("by hand", ["linker"], None, None),
            ],
        )
        assert await apply_migrations(connection) == [2]
        rows = await connection.fetch("SELECT title, alert_key FROM incidents ORDER BY id")
    finally:
        await connection.close()
    assert [tuple(row) for row in rows] == [
        ("old outage", "fp1:2026-01-01"),
        ("linker down", "ServiceDown:linker"),
        ("linker down (copy)", "fp3:2026-02-01"),
        ("by hand", None),
    ]


async def test_maintenance_windows(store: Store) -> None:
    now = datetime.now(UTC)
    window = await store.create_maintenance(
        "DB upgrade", "", ["linker"], now + timedelta(hours=1), now + timedelta(hours=2), None
    )
    assert window.state(now) == "scheduled"
    assert window.state(now + timedelta(minutes=90)) == "in_progress"
    assert window.state(now + timedelta(hours=3)) == "completed"
    assert await store.list_maintenances(ending_after=now + timedelta(hours=3)) == []
    async with store.maintenance_for_update(window.id) as locked:
        edited = await locked.update({"title": "Upgrade", "silence_id": "s1"})
    assert (edited.title, edited.silence_id) == ("Upgrade", "s1")
    assert await store.get_maintenance(window.id) == edited

    async def delete_then_fail() -> None:
        async with store.maintenance_for_update(window.id) as locked:
            await locked.delete()
            raise RuntimeError("Alertmanager said no")

    with pytest.raises(RuntimeError):  # anything raised in the block rolls it back
        await delete_then_fail()
    assert await store.get_maintenance(window.id) == edited
    async with store.maintenance_for_update(window.id) as locked:
        await locked.delete()
    assert await store.get_maintenance(window.id) is None
    async with store.maintenance_for_update(window.id) as locked:
        assert locked.current is None


async def test_edits_of_one_window_are_serialized_by_its_row_lock(
    store: Store, database_url: str
) -> None:
    """Two concurrent read-modify-writes of one window: the second reads what the first wrote."""
    now = datetime.now(UTC)
    window = await store.create_maintenance(
        "Upgrade", "", [], now + timedelta(hours=1), now + timedelta(hours=2), None
    )
    first_holds_lock = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with store.maintenance_for_update(window.id) as locked:
            first_holds_lock.set()
            await release_first.wait()
            await locked.update({"body": locked.current.body + "a"})

    async def second() -> str:
        await first_holds_lock.wait()
        async with store.maintenance_for_update(window.id) as locked:
            seen = locked.current.body
            await locked.update({"body": seen + "b"})
            return seen

    first_task = asyncio.create_task(first())
    second_task = asyncio.create_task(second())
    await first_holds_lock.wait()
    observer = await asyncpg.connect(database_url)
    try:  # the second edit is waiting for the row lock before the first one writes

        async def second_waits_for_lock() -> bool:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            return await observer.fetchval(sql) == 1

        await eventually(second_waits_for_lock, timeout=2)
    finally:
        await observer.close()
    release_first.set()
    await first_task
    assert await second_task == "a"
    assert (await store.get_maintenance(window.id)).body == "ab"


async def test_rollups_keep_the_first_value_of_a_day(store: Store) -> None:
    day = date(2026, 1, 1)
    await store.save_rollups([("a", day, 0.5), ("b", day, 1.0)])
    await store.save_rollups([("a", day, 0.9), ("a", day + timedelta(days=1), 1.0)])
    assert await store.rollups(day) == {
        "a": {day: 0.5, day + timedelta(days=1): 1.0},
        "b": {day: 1.0},
    }
    assert await store.rollup_days(day + timedelta(days=1)) == {day + timedelta(days=1)}


async def test_the_database_checks_enumerations_too(store: Store) -> None:
    incident = await store.create_incident("t", Impact.NONE, "investigating", "b", [])
    with pytest.raises(asyncpg.CheckViolationError):
        await store.add_update(incident.id, "on-fire", "x")
    assert (await store.get_incident(incident.id)).status == "investigating"


async def test_the_password_comes_from_database_password_file(tmp_path) -> None:
    cluster, base = throwaway_cluster(password="s3cret-0123456789")
    await asyncio.to_thread(cluster.start)
    try:
        password_file = tmp_path / "postgres-password"
        password_file.write_text("s3cret-0123456789\n")
        settings = Settings.from_environ(
            {"DATABASE_URL": cluster.url(), "DATABASE_PASSWORD_FILE": str(password_file)}
        )
        assert "s3cret" not in repr(settings)
        store = Store(settings.database_url, password=settings.database_password)
        await store.connect()
        await store.close()
        with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
            await Store(cluster.url(), password="wrong-password").connect()
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(base, ignore_errors=True)
