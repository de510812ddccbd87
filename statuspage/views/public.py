"""The human pages: `/`, `/history`, `/incidents/{id}`. Server-rendered, no JavaScript."""

from aiohttp import web

from statuspage.board import Board
from statuspage.keys import BOARD, SETTINGS, STATIC_URL, STORE, TEMPLATES
from statuspage.store import DatabaseUnavailable

HISTORY_PAGE_SIZE = 20


def register(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/history", history)
    app.router.add_get("/incidents/{id:\\d+}", incident)


def render_page(request: web.Request, template: str, **context: object) -> str:
    settings = request.app[SETTINGS]
    return (
        request.app[TEMPLATES]
        .get_template(template)
        .render(page_title=settings.page_title, static_url=request.app[STATIC_URL], **context)
    )


async def index(request: web.Request) -> web.Response:
    board = await request.app[BOARD].board()

    def render(board: Board) -> bytes:
        return render_page(request, "index.html", board=board, refresh=True).encode()

    return web.Response(body=board.render("index.html", render), content_type="text/html")


async def history(request: web.Request) -> web.Response:
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        raise web.HTTPBadRequest(text="page must be a number") from None
    store = request.app[STORE]
    try:
        found = await store.list_incidents(
            limit=HISTORY_PAGE_SIZE + 1, offset=(page - 1) * HISTORY_PAGE_SIZE
        )
    except DatabaseUnavailable:
        found, unavailable = [], True
    else:
        unavailable = False
    text = render_page(
        request,
        "history.html",
        incidents=found[:HISTORY_PAGE_SIZE],
        page=page,
        has_next=len(found) > HISTORY_PAGE_SIZE,
        unavailable=unavailable,
        refresh=False,
    )
    return web.Response(text=text, content_type="text/html")


async def incident(request: web.Request) -> web.Response:
    board = await request.app[BOARD].board()
    try:
        found = await request.app[STORE].get_incident(int(request.match_info["id"]))
    except DatabaseUnavailable:
        found, unavailable = None, True
    else:
        unavailable = False
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
