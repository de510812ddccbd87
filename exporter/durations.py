"""Prometheus-style durations (`30s`, `2m`, `1h30m`, `500ms`), the format every config uses."""

import re

from exporter.shown import shown

_MILLISECONDS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
_DURATION = re.compile(
    r"(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?"
)
_MAX_LENGTH = 64
"""Long enough for any real duration, short enough that the seconds always fit a float."""


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError when it is not a Prometheus duration.

    Only ASCII digits count (`int()` would also take Arabic-Indic or fullwidth ones), and the sum
    is taken in whole milliseconds, so no input can overflow a float.
    """
    quoted = shown(text)
    if len(text) > _MAX_LENGTH:
        raise ValueError(f"{quoted} is too long for a duration")
    if any(char.isdigit() and not char.isascii() for char in text):
        raise ValueError(f"{quoted} has non-ASCII digits; write durations with 0-9")
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{quoted} is not a duration like 30s, 2m or 1h30m")
    milliseconds = sum(
        int(value) * _MILLISECONDS[unit] for unit, value in match.groupdict().items() if value
    )
    return milliseconds / 1000


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for `seconds` (for messages and tables)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts = []
    remaining = round(seconds)
    for unit in ("d", "h", "m", "s"):
        count, remaining = divmod(remaining, _MILLISECONDS[unit] // 1000)
        if count:
            parts.append(f"{int(count)}{unit}")
    return "".join(parts) or "0s"
