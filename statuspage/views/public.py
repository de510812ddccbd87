"""The human pages: `/`, `/history`, `/incidents/{id}`, and `robots.txt`. Server-rendered; one
small same-origin script refreshes `/` while it is visible, and every page works without it.

Every read goes through the board's caches, so a page costs PostgreSQL nothing per visitor.
"""

import math

from aiohttp import web

from statuspage.board import Board
from statuspage.keys import BOARD, SETTINGS, STATIC_URLS, TEMPLATES
from statuspage.validation import Invalid, page_number, record_id

HISTORY_PAGE_SIZE = 20
ROBOTS = "User-agent: *\nDisallow: /admin/\nDisallow: /hooks/\nDisallow: /-/\n"


def register(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/history", history)
    app.router.add_get("/incidents/{id:\\d+}", incident)
    app.router.add_get("/robots.txt", robots)


def render_page(request: web.Request, template: str, **context: object) -> str:
    settings = request.app[SETTINGS]
    return (
        request.app[TEMPLATES]
        .get_template(template)
        .render(page_title=settings.page_title, static=request.app[STATIC_URLS], **context)
    )


async def index(request: web.Request) -> web.Response:
    board = await request.app[BOARD].board()

    def render(board: Board) -> bytes:
        return render_page(request, "index.html", board=board, refresh=True).encode()

    return web.Response(body=board.render("index.html", render), content_type="text/html")


async def history(request: web.Request) -> web.Response:
    try:
        page = page_number(request.query.get("page"))
    except Invalid as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from None
    source = request.app[BOARD]
    records = (await source.board()).records
    found, unavailable, has_next = (), True, False
    if records is not None:
        if page > max(1, math.ceil(records.incident_count / HISTORY_PAGE_SIZE)):
            raise web.HTTPNotFound(text="There is no such page of the incident history.\n")
        offset = (page - 1) * HISTORY_PAGE_SIZE
        loaded = await source.incidents(records, offset, HISTORY_PAGE_SIZE + 1)
        if loaded.value is not None:
            found, unavailable = loaded.value[:HISTORY_PAGE_SIZE], False
            has_next = len(loaded.value) > HISTORY_PAGE_SIZE
    text = render_page(
        request,
        "history.html",
        incidents=found,
        page=page,
        has_next=has_next,
        unavailable=unavailable,
        refresh=False,
    )
    return web.Response(text=text, content_type="text/html")


async def incident(request: web.Request) -> web.Response:
    source = request.app[BOARD]
    board = await source.board()
    incident_id = record_id(request.match_info["id"])
    found, unavailable = None, board.records is None
    if incident_id is not None and board.records is not None:
        loaded = await source.incident(board.records, incident_id)
        found, unavailable = loaded.value, loaded.value is None and loaded.loaded_at is None
    names = {c.info.id: c.info.name for c in board.components}
    services = [names[s] for s in found.services if s in names] if found else []
    text = render_page(
        request,
        "incident.html",
        incident=found,
        services=services,
        unavailable=unavailable,
        refresh=False,
    )
    status = 404 if found is None and not unavailable else 200
    return web.Response(status=status, text=text, content_type="text/html")


async def robots(request: web.Request) -> web.Response:
    return web.Response(text=ROBOTS)
