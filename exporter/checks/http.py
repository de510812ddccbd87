"""`kind: http`: one request, judged on status, headers and body."""

from functools import partial
from types import MappingProxyType

import httpx

from exporter.checks.base import CheckContext, CheckResult, Reason
from exporter.checks.expect import (
    InvalidJSON,
    body_mismatch,
    header_mismatch,
    json_mismatch,
    parse_json,
)
from exporter.checks.retry import single_request_check
from exporter.checks.transport import Exchange, exchange
from exporter.config import ServiceConfig


async def run(service: ServiceConfig, ctx: CheckContext) -> CheckResult:
    return await single_request_check(service, ctx, partial(_attempt, service))


async def _attempt(
    service: ServiceConfig, client: httpx.AsyncClient, timeout: float
) -> CheckResult:
    async with exchange(
        client, service, service.method, service.parsed_url, timeout, json=service.json
    ) as ex:
        return await judge_response(service, ex)


async def judge_response(service: ServiceConfig, ex: Exchange) -> CheckResult:
    """Status, then headers, then body: the first mismatch decides the reason."""
    response = ex.response
    details = {
        "status_code": response.status_code,
        "phases": MappingProxyType(ex.phases),
        "cert_expiry": ex.cert_expiry,
    }
    expect = service.expect
    if response.status_code not in expect.status:
        ex.mark_transfer_done()
        return status_failure(response, "request", **details)
    mismatch = header_mismatch(expect, response.headers)
    if mismatch:
        ex.mark_transfer_done()
        return CheckResult.failure(Reason.HEADER_MISMATCH, mismatch, **details)
    body, truncated = await ex.read_body(service.max_body_bytes)
    mismatch = body_mismatch(expect, body)
    if mismatch is None and expect.json:
        try:
            mismatch = json_mismatch(parse_json(body, truncated), expect.json)
        except InvalidJSON as exc:
            return CheckResult.failure(Reason.INVALID_RESPONSE, str(exc), **details)
    if mismatch:
        return CheckResult.failure(Reason.BODY_MISMATCH, mismatch, **details)
    return CheckResult(success=True, reason=Reason.OK, **details)


def status_failure(response: httpx.Response, step: str, **details: object) -> CheckResult:
    """An unexpected HTTP status: a 5xx may pass on a retry, anything else will not."""
    details.setdefault("status_code", response.status_code)
    return CheckResult.failure(
        Reason.HTTP_STATUS,
        f"{step} returned unexpected HTTP status {response.status_code}",
        transient=response.status_code >= 500,
        **details,
    )
