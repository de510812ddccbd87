"""`kind: sse`: open a Server-Sent Events stream, wait for the first (or a named) event, hang up.

An event stream never ends by itself, so the check returns the moment the event is parsed; it
only waits for its timeout when no event comes.
"""

from functools import partial

import httpx

from exporter.checks.base import CheckContext, CheckResult, Reason
from exporter.checks.events import StreamTooLong, read_events
from exporter.checks.expect import header_mismatch
from exporter.checks.http import status_failure
from exporter.checks.retry import single_request_check
from exporter.checks.transport import Exchange, exchange
from exporter.config import ServiceConfig

EVENT_STREAM = "text/event-stream"


async def run(service: ServiceConfig, ctx: CheckContext) -> CheckResult:
    return await single_request_check(service, ctx, partial(_attempt, service))


async def _attempt(
    service: ServiceConfig, client: httpx.AsyncClient, timeout: float
) -> CheckResult:
    headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache"}
    async with exchange(
        client, service, service.method, service.parsed_url, timeout, headers=headers
    ) as ex:
        return await _judge_stream(service, ex)


async def _judge_stream(service: ServiceConfig, ex: Exchange) -> CheckResult:
    response = ex.response
    details = {
        "status_code": response.status_code,
        "phases": ex.phases,
        "cert_expiry": ex.cert_expiry,
    }
    if response.status_code not in service.expect.status:
        return status_failure(response, "stream", **details)
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith(EVENT_STREAM):
        return CheckResult.failure(
            Reason.HEADER_MISMATCH,
            f"content-type is {content_type!r}, expected {EVENT_STREAM}",
            **details,
        )
    mismatch = header_mismatch(service.expect, response.headers)
    if mismatch:
        return CheckResult.failure(Reason.HEADER_MISMATCH, mismatch, **details)
    wanted = service.expect.event
    what = f"an {wanted!r} event" if wanted else "any event"
    try:
        async for event in read_events(response.aiter_bytes(), service.max_body_bytes):
            if wanted is None or event.name == wanted:
                ex.mark_transfer_done()
                return CheckResult(success=True, reason=Reason.OK, **details)
    except StreamTooLong:
        message = f"no {what} in the first {service.max_body_bytes} bytes of the stream"
        return CheckResult.failure(Reason.INVALID_RESPONSE, message, **details)
    ex.mark_transfer_done()
    return CheckResult.failure(
        Reason.INVALID_RESPONSE, f"stream ended before {what} arrived", **details
    )
