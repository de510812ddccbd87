"""`/api/openapi.json`: the OpenAPI 3.1 description of the public v2 API, the admin API and the
Alertmanager hook (`statuspage/openapi.yaml`), which the tests validate and fuzz the app with."""

import json
from importlib import resources

import yaml
from aiohttp import web


def spec() -> dict:
    text = resources.files("statuspage").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def register(app: web.Application) -> None:
    body = json.dumps(spec()).encode()

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/api/openapi.json", openapi)
