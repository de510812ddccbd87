"""Jinja2 environment and the filters the pages use. Autoescaping is always on: incident text
is shown exactly as typed, never as markup."""

from datetime import UTC, datetime

import jinja2
from markupsafe import Markup, escape

from statuspage.board import Day
from statuspage.status import Status

_ICONS = {
    Status.OPERATIONAL: "✓",
    Status.UNKNOWN: "?",
    Status.DEGRADED_PERFORMANCE: "!",
    Status.PARTIAL_OUTAGE: "◐",
    Status.MAJOR_OUTAGE: "✕",
    Status.UNDER_MAINTENANCE: "⚙",
}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("statuspage", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        paragraphs=paragraphs,
        utc=utc,
        ago=ago,
        percent=percent,
        duration=duration,
        day_class=day_class,
        day_title=day_title,
    )
    env.globals.update(icon=lambda status: _ICONS[status])
    return env


def paragraphs(text: str) -> Markup:
    """Plain text to paragraphs and line breaks, everything else escaped."""
    blocks = [block.strip() for block in text.replace("\r\n", "\n").split("\n\n")]
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in block.split("\n")))
        for block in blocks
        if block
    )


def utc(moment: datetime | float) -> str:
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%b %d, %Y %H:%M UTC")


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def ago(moment: float, now: float) -> str:
    return f"{duration(now - moment)} ago"


def percent(ratio: float | None) -> str:
    if ratio is None:
        return "no data"
    return f"{ratio * 100:.2f} %"


def day_class(day: Day) -> str:
    if day.ratio is None:
        return "none"
    if day.ratio >= 0.999:
        return "ok"
    if day.ratio >= 0.99:
        return "minor"
    return "major" if day.ratio < 0.95 else "partial"


def day_title(day: Day) -> str:
    return f"{day.day:%b %d, %Y}: {percent(day.ratio)}"
