"""The reports heartbeat services pushed, kept in a small JSON file so a restart forgets nothing.

A daily job reports once a day: after a deploy the exporter must still know when it last did, or
the service would look unknown, or missed, for a day. The file is replaced atomically (a temporary
file in the same directory, flushed and renamed over it), so a crash mid-write leaves the previous
version intact.
"""

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statuslog import event

log = logging.getLogger("exporter.heartbeat")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Report:
    at: float
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Watch:
    """One heartbeat service: since when reports are expected, and the latest one."""

    since: float
    last: Report | None = None


class HeartbeatBook:
    """Every watched service's latest report; only `report()` and `watch()` change it."""

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._watches: dict[str, Watch] = {}
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    def get(self, service_id: str) -> Watch | None:
        return self._watches.get(service_id)

    def load(self) -> None:
        """Read the state file, if any. A damaged file is logged and replaced at the next save."""
        if self.path is None or not self.path.exists():
            return
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            self._watches = _parse(document)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            event(log, logging.ERROR, "cannot read heartbeat state", file=self.path, error=exc)
            return
        event(log, logging.INFO, "heartbeat state loaded", file=self.path, services=len(self))

    def watch(self, service_ids: Iterable[str]) -> None:
        """Expect reports from exactly these services; a new one's clock starts now."""
        wanted = list(dict.fromkeys(service_ids))
        now = self.clock()
        watches = {sid: self._watches.get(sid) or Watch(since=now) for sid in wanted}
        if watches != self._watches:
            self._watches = watches
            task = asyncio.get_running_loop().create_task(self.save())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def report(self, service_id: str, ok: bool, message: str) -> Watch:
        """Record a report now, and return once it is in the state file."""
        now = self.clock()
        watch = self._watches.get(service_id) or Watch(since=now)
        self._watches[service_id] = updated = Watch(watch.since, Report(now, ok, message))
        await self.save()
        return updated

    async def save(self) -> None:
        """Write the current state (never blocks the event loop; a failure is logged)."""
        if self.path is None:
            return
        async with self._lock:
            text = json.dumps(_serialize(self._watches), indent=2, ensure_ascii=False)
            try:
                await asyncio.to_thread(write_atomically, self.path, text)
            except OSError as exc:
                event(log, logging.ERROR, "cannot write heartbeat state", file=self.path, error=exc)

    async def aclose(self) -> None:
        """Wait for saves still under way."""
        await asyncio.gather(*self._pending)

    def __len__(self) -> int:
        return len(self._watches)


def default_state_file(config_file: Path) -> Path:
    """`services.yml` → `services.heartbeats.json`, next to it."""
    return config_file.with_name(f"{config_file.stem}.heartbeats.json")


def write_atomically(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def _serialize(watches: dict[str, Watch]) -> dict[str, Any]:
    services = {}
    for service_id, watch in sorted(watches.items()):
        last = watch.last
        services[service_id] = {
            "watching_since": watch.since,
            "last_report": None
            if last is None
            else {"at": last.at, "ok": last.ok, "message": last.message},
        }
    return {"version": FORMAT_VERSION, "services": services}


def _parse(document: Any) -> dict[str, Watch]:
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        raise ValueError(f"not a version {FORMAT_VERSION} heartbeat state file")
    watches = {}
    for service_id, entry in document["services"].items():
        last = entry["last_report"]
        report = None
        if last is not None:
            report = Report(float(last["at"]), bool(last["ok"]), str(last["message"]))
        watches[str(service_id)] = Watch(float(entry["watching_since"]), report)
    return watches
