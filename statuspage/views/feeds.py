"""Machine-readable views for people: the Atom feed of incidents and per-service SVG badges."""

from datetime import UTC, datetime
from xml.sax.saxutils import escape

from aiohttp import web

from statuspage.board import Board
from statuspage.keys import BOARD, SETTINGS
from statuspage.settings import Settings
from statuspage.status import Status
from statuspage.validation import FORBIDDEN

FEED_ENTRIES = 25
_BADGE_COLOURS = {
    Status.OPERATIONAL: "#1f8a4c",
    Status.UNKNOWN: "#6b7280",
    Status.DEGRADED_PERFORMANCE: "#b7791f",
    Status.PARTIAL_OUTAGE: "#c05621",
    Status.MAJOR_OUTAGE: "#c53030",
    Status.UNDER_MAINTENANCE: "#2b6cb0",
}


def register(app: web.Application) -> None:
    app.router.add_get("/history.atom", atom)
    app.router.add_get("/badge/{service}.svg", badge)


async def atom(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    board = await request.app[BOARD].board()
    feed = board.render("history.atom", lambda board: _feed(board, settings))
    return web.Response(text=feed, content_type="application/atom+xml")


def _feed(board: Board, settings: Settings) -> str:
    incidents = (board.records.latest if board.records else board.unresolved)[:FEED_ENTRIES]
    base = settings.public_url
    updated = max((i.updated_at for i in incidents), default=datetime.fromtimestamp(0, UTC))
    entries = []
    for incident in incidents:
        content = "".join(
            f"<p><strong>{escape(u.status.capitalize())}</strong>"
            f" ({u.created_at:%Y-%m-%d %H:%M} UTC)"
            f"<br/>{_xml(u.body)}</p>"
            for u in incident.updates
        )
        entries.append(
            f"""  <entry>
    <id>{base}/incidents/{incident.id}</id>
    <title>{_xml(incident.title)}</title>
    <updated>{incident.updated_at.isoformat()}</updated>
    <published>{incident.created_at.isoformat()}</published>
    <link rel="alternate" type="text/html" href="{base}/incidents/{incident.id}"/>
    <content type="html">{escape(content)}</content>
  </entry>
"""
        )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>{base}/history.atom</id>
  <title>{escape(settings.page_title)}: incident history</title>
  <updated>{updated.isoformat()}</updated>
  <author><name>{escape(settings.page_title)}</name></author>
  <link rel="self" href="{base}/history.atom"/>
  <link rel="alternate" type="text/html" href="{base}/history"/>
{"".join(entries)}</feed>
"""


async def badge(request: web.Request) -> web.Response:
    board = await request.app[BOARD].board()
    component = board.component(request.match_info["service"])
    if component is None:
        raise web.HTTPNotFound(text="no such public service")

    def render(_board: object) -> str:
        return _svg(component.info.name, component.status)

    svg = board.render(f"badge:{component.info.id}", render)
    return web.Response(text=svg, content_type="image/svg+xml")


def _xml(text: str) -> str:
    """Escaped, and well-formed XML even for text stored before it was validated."""
    return escape(FORBIDDEN.sub("\ufffd", text))


def _svg(label: str, status: Status) -> str:
    """A flat two-part badge; widths estimated at 7 px per character (Verdana 11 px)."""
    value = status.label.lower()
    left, right = 10 + 7 * len(label), 10 + 7 * len(value)
    colour = _BADGE_COLOURS[status]
    text = escape(f"{label}: {value}", {'"': "&quot;"})
    size = f'width="{left + right}" height="20"'
    return f"""<svg xmlns="http://www.w3.org/2000/svg" {size} role="img" aria-label="{text}">
<title>{text}</title>
<rect width="{left}" height="20" fill="#555"/>
<rect x="{left}" width="{right}" height="20" fill="{colour}"/>
<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">
<text x="{left / 2}" y="14">{escape(label)}</text>
<text x="{left + right / 2}" y="14">{escape(value)}</text>
</g>
</svg>
"""
