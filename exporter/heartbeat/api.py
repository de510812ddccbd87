"""`POST /api/v1/heartbeat/{service}` and `…/fail`: how a batch job says that it ran.

One line at the end of the job is all it needs:

    curl -fsS -X POST -H "Authorization: Bearer $TOKEN" http://exporter:9115/api/v1/heartbeat/ID

Only an enabled heartbeat service's own token is accepted, compared with `hmac.compare_digest`.
No bearer token is a 401; any other refusal is one and the same 403, whether the id names no
service, a service that is no enabled heartbeat, or one whose token is different: without its
token nobody learns which ids exist (private services' included). The reason is logged for the
operators. The body, if any, is a short message kept with the report (UTF-8 text, at most 1 KiB);
it is read only once the token matched. Every refusal changes nothing.
"""

import hmac
import logging
import re
import secrets
from typing import Final, Protocol

from aiohttp import web

from exporter.checks import CheckResult
from exporter.config import ServiceConfig
from statuslog import event

log = logging.getLogger("exporter.heartbeat")
MAX_MESSAGE_BYTES: Final = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_REFUSED = "no enabled heartbeat service with this id takes this token"


class HeartbeatReceiver(Protocol):
    def heartbeat_service(self, service_id: str) -> ServiceConfig | None:
        """The enabled heartbeat service with this id, if there is one."""

    async def receive_heartbeat(
        self, service: ServiceConfig, ok: bool, message: str
    ) -> CheckResult:
        """Store the report and return the service's state with it."""


RECEIVER: Final = web.AppKey("heartbeat_receiver", HeartbeatReceiver)


def add_routes(app: web.Application, receiver: HeartbeatReceiver) -> None:
    app[RECEIVER] = receiver
    app.router.add_post("/api/v1/heartbeat/{service}", _succeeded)
    app.router.add_post("/api/v1/heartbeat/{service}/fail", _failed)


async def _succeeded(request: web.Request) -> web.Response:
    return await _receive(request, ok=True)


async def _failed(request: web.Request) -> web.Response:
    return await _receive(request, ok=False)


async def _receive(request: web.Request, ok: bool) -> web.Response:
    receiver = request.app[RECEIVER]
    service_id = request.match_info["service"]
    service = receiver.heartbeat_service(service_id)
    refused = _refusal(request.headers.get("Authorization"), service)
    if refused is not None:
        event(log, logging.WARNING, "heartbeat refused", service=service_id[:100],
              known=service is not None, status=refused.status)  # fmt: skip
        return refused
    assert service is not None
    message = await _message(request)
    if isinstance(message, web.Response):
        return message
    result = await receiver.receive_heartbeat(service, ok, message)
    event(log, logging.INFO, "heartbeat received", service=service.id, ok=ok, text=message)
    return web.json_response(
        {
            "service": service.id,
            "up": result.success,
            "reason": result.reason.value,
            "message": result.message,
        }
    )


def _refusal(header: str | None, service: ServiceConfig | None) -> web.Response | None:
    """401 without a bearer token; the same 403 for an unknown id as for a wrong token, after
    the same comparison (against a random token when there is no service to compare with)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        response = _error(401, "send the service's token as 'Authorization: Bearer <token>'")
        response.headers["WWW-Authenticate"] = 'Bearer realm="sefaria-status heartbeat"'
        return response
    given = token.strip().encode("utf-8", "surrogatepass")
    expected = service.heartbeat.token if service and service.heartbeat else None
    matched = hmac.compare_digest(given, (expected or secrets.token_urlsafe(32)).encode())
    if expected is None or not matched:
        return _error(403, _REFUSED)
    return None


async def _message(request: web.Request) -> str | web.Response:
    """The body as one line of text, or the 4xx that refuses it (nothing is stored then)."""
    too_large = _error(413, f"the message is longer than {MAX_MESSAGE_BYTES} bytes")
    if (request.content_length or 0) > MAX_MESSAGE_BYTES:
        return too_large
    body = bytearray()
    while len(body) <= MAX_MESSAGE_BYTES:
        chunk = await request.content.read(MAX_MESSAGE_BYTES + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > MAX_MESSAGE_BYTES:
        return too_large
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, "the message must be UTF-8 text")
    return _CONTROL.sub(" ", text).strip()


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)
