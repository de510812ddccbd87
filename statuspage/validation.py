"""Validation at the edge: every problem is collected with its field, nothing is written
unless the whole request is valid, and nothing unvalidated reaches PostgreSQL or Alertmanager.

Text is plain text: no NUL or other control characters (newline and tab aside), no lone
surrogates, no Unicode noncharacters — any of them can break a database driver, a terminal or
an XML feed. Numbers that name records fit PostgreSQL's bigint; dates lie in a sane range.
"""

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from statuspage.status import Impact
from statuspage.store import INCIDENT_STATUSES

TITLE_MAX = 200
BODY_MAX = 20_000
SERVICE_ID_MAX = 200
BIGINT_MAX = 2**63 - 1
PAGE_MAX = 100_000
JSON_DEPTH_MAX = 32
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_NONCHARACTERS = "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
FORBIDDEN = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]")
"""Control characters but tab and newline, surrogates, noncharacters."""
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str


class Invalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors


def plain_text(value: str, max_length: int) -> tuple[str, str | None]:
    """`value` with line ends normalized and outer whitespace stripped, and what is wrong with
    it (None: nothing)."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    bad = FORBIDDEN.search(text)  # before stripping: str.strip() removes some of them
    text = text.strip()
    if bad:
        return text, f"must be plain text: U+{ord(bad.group()):04X} is not allowed"
    if len(text) > max_length:
        return text, f"must be at most {max_length} characters"
    return text, None


def shown(text: str, limit: int = 80) -> str:
    """`text` safe to echo in an error message: forbidden characters escaped, length capped."""
    safe = FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return safe if len(safe) <= limit else safe[:limit] + "…"


def record_id(text: str) -> int | None:
    """A record id from a URL (digits only, by the route); None beyond bigint: no such record."""
    number = int(text) if len(text) <= 19 else BIGINT_MAX + 1
    return number if 0 < number <= BIGINT_MAX else None


def page_number(text: str | None) -> int:
    if text is None:
        return 1
    if not text.isascii() or not text.isdigit() or not 1 <= int(text[:7]) <= PAGE_MAX:
        raise Invalid([FieldError("page", f"must be a whole number from 1 to {PAGE_MAX}")])
    return int(text)


def parse_json(raw: bytes) -> Any:
    """A JSON document nested at most JSON_DEPTH_MAX deep (checked before parsing, so a deep
    document costs a scan, never a recursion)."""
    if _depth(raw) > JSON_DEPTH_MAX:
        raise Invalid([FieldError("(body)", f"must be nested at most {JSON_DEPTH_MAX} deep")])
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Invalid([FieldError("(body)", "is not valid JSON")]) from None


def _depth(raw: bytes) -> int:
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", raw)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


class Fields:
    """Reads a JSON object field by field, collecting errors; `done()` raises them all."""

    def __init__(self, payload: Any, allowed: Collection[str]) -> None:
        self.errors: list[FieldError] = []
        if not isinstance(payload, dict):
            self.errors.append(FieldError("(body)", "must be a JSON object"))
            payload = {}
        self.payload: Mapping[str, Any] = payload
        for name in sorted(set(payload) - set(allowed)):
            self.errors.append(FieldError(shown(name), "unknown field"))

    def present(self, name: str) -> bool:
        return name in self.payload

    def fail(self, name: str, reason: str) -> None:
        self.errors.append(FieldError(name, reason))

    def text(self, name: str, *, required: bool, max_length: int, empty_ok: bool = False) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            return self.fail(name, "must be a string")
        value, problem = plain_text(value, max_length)
        if problem:
            return self.fail(name, problem)
        if not value and not empty_ok:
            return self.fail(name, "must not be empty")
        return value

    def choice(self, name: str, choices: Collection[str], *, required: bool) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if value not in choices:
            return self.fail(name, f"must be one of {', '.join(choices)}")
        return value

    def services(self, name: str, known: Collection[str], *, required: bool) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return self.fail(name, "must be a list of service ids")
        unknown = [shown(item) for item in value if item not in known]
        if unknown:
            return self.fail(name, f"unknown service(s): {', '.join(unknown[:10])}")
        return tuple(dict.fromkeys(value))

    def timestamp(self, name: str, *, required: bool) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            return self.fail(name, "must be an RFC 3339 timestamp string")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return self.fail(name, "must be an RFC 3339 timestamp like 2026-01-31T22:00:00Z")
        if parsed.tzinfo is None:
            return self.fail(name, "must include a time zone (Z or +hh:mm)")
        try:
            moment = parsed.astimezone(UTC)
        except OverflowError:
            moment = None
        if moment is None or not EARLIEST <= moment < LATEST:
            return self.fail(name, f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
        return moment

    def done(self) -> None:
        if self.errors:
            raise Invalid(self.errors)

    def _get(self, name: str, required: bool) -> Any:
        if name not in self.payload:
            if required:
                self.fail(name, "is required")
            return None
        if self.payload[name] is None:
            self.fail(name, "must not be null")
            return None
        return self.payload[name]


_IMPACTS = tuple(impact.value for impact in Impact)


def new_incident(payload: Any, known: Collection[str]) -> dict[str, Any]:
    fields = Fields(payload, ("title", "impact", "status", "body", "services"))
    incident = {
        "title": fields.text("title", required=True, max_length=TITLE_MAX),
        "impact": fields.choice("impact", _IMPACTS, required=True),
        "status": fields.choice("status", INCIDENT_STATUSES, required=True),
        "body": fields.text("body", required=True, max_length=BODY_MAX),
        "services": fields.services("services", known, required=False) or (),
    }
    fields.done()
    return incident | {"impact": Impact(incident["impact"])}


def incident_changes(payload: Any, known: Collection[str]) -> dict[str, Any]:
    fields = Fields(payload, ("title", "impact", "services"))
    changes = {
        "title": fields.text("title", required=False, max_length=TITLE_MAX),
        "impact": fields.choice("impact", _IMPACTS, required=False),
        "services": fields.services("services", known, required=False),
    }
    changes = {name: value for name, value in changes.items() if fields.present(name)}
    if not changes and not fields.errors:
        fields.fail("(body)", "nothing to change: give title, impact or services")
    fields.done()
    if "impact" in changes:
        changes["impact"] = Impact(changes["impact"])
    return changes


def incident_update(payload: Any) -> tuple[str, str]:
    fields = Fields(payload, ("status", "body"))
    status = fields.choice("status", INCIDENT_STATUSES, required=True)
    body = fields.text("body", required=True, max_length=BODY_MAX)
    fields.done()
    return status, body


def maintenance(
    payload: Any, known: Collection[str], current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A new window (current None) or the changes to one (merged with `current` to check the
    times)."""
    creating = current is None
    fields = Fields(payload, ("title", "body", "services", "starts_at", "ends_at"))
    values = {
        "title": fields.text("title", required=creating, max_length=TITLE_MAX),
        "body": fields.text("body", required=False, max_length=BODY_MAX, empty_ok=True),
        "services": fields.services("services", known, required=False),
        "starts_at": fields.timestamp("starts_at", required=creating),
        "ends_at": fields.timestamp("ends_at", required=creating),
    }
    values = {name: value for name, value in values.items() if fields.present(name)}
    merged = {**(current or {}), **values}
    starts, ends = merged.get("starts_at"), merged.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        fields.fail("ends_at", "must be after starts_at")
    if not creating and not values and not fields.errors:
        fields.fail("(body)", "nothing to change")
    fields.done()
    if creating:
        values.setdefault("body", "")
        values.setdefault("services", ())
    return values
