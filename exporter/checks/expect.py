"""Matching a response against a service's `expect` block: each returns a mismatch or None."""

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from exporter.config import EXISTS, Expect

_ABSENT: Final = object()


class InvalidJSON(ValueError):
    """The body should be JSON and is not."""


def parse_json(body: bytes, truncated: bool) -> Any:
    if truncated:
        raise InvalidJSON("body is larger than max_body_bytes, cannot parse it as JSON")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJSON(f"body is not JSON: {exc}") from None


def lookup(document: Any, dotted_path: str) -> Any:
    """The value at `a.b.0.c` (list indexes as numbers), or `_ABSENT`."""
    node = document
    for part in dotted_path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _ABSENT
    return node


def json_mismatch(document: Any, expectations: Iterable[tuple[str, Any]]) -> str | None:
    for path, expected in expectations:
        actual = lookup(document, path)
        if actual is _ABSENT:
            return f"JSON path {path!r} is missing"
        if expected != EXISTS and actual != expected:
            return f"JSON path {path!r} is {_short(actual)}, expected {_short(expected)}"
    return None


def body_mismatch(expect: Expect, body: bytes) -> str | None:
    text = body.decode("utf-8", errors="replace")
    for needle in expect.body_contains:
        if needle not in text:
            return f"body does not contain {needle!r}"
    if expect.body_regex is not None and not expect.body_regex.search(text):
        return f"body does not match /{expect.body_regex.pattern}/"
    return None


def header_mismatch(expect: Expect, headers: Mapping[str, str]) -> str | None:
    for name, pattern in expect.headers:
        value = headers.get(name)
        if value is None:
            return f"header {name} is missing"
        if not pattern.match(value):
            return f"header {name} is {value!r}, expected /{pattern.pattern}/"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
