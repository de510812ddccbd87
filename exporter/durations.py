"""Prometheus-style durations (`30s`, `2m`, `1h30m`, `500ms`), the format every config uses."""

import re

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_DURATION = re.compile(
    r"^(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError when it is not a Prometheus duration."""
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 2m or 1h30m")
    return sum(int(value) * _UNITS[unit] for unit, value in match.groupdict().items() if value)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for `seconds` (for messages and tables)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts = []
    remaining = round(seconds)
    for unit in ("d", "h", "m", "s"):
        count, remaining = divmod(remaining, _UNITS[unit])
        if count:
            parts.append(f"{int(count)}{unit}")
    return "".join(parts) or "0s"
