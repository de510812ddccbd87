"""`kind: async_job`: submit a job (expect 202 and a task id), then poll it until it finishes.

This is how the Linker API works: `probe_duration_seconds` is the time from submit to the job's
final state, bounded by `job.deadline`.
"""

import asyncio
import time
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import httpx

from exporter.checks.base import CheckContext, CheckResult, Reason
from exporter.checks.expect import InvalidJSON, json_mismatch, lookup, parse_json
from exporter.checks.http import status_failure
from exporter.checks.retry import with_retries
from exporter.checks.transport import client_for, exchange, failure_from_error
from exporter.config import JobConfig, ServiceConfig


@dataclass(frozen=True)
class _Submitted:
    task_id: str
    phases: MappingProxyType
    cert_expiry: float | None


async def run(service: ServiceConfig, ctx: CheckContext) -> CheckResult:
    assert service.job is not None, "config validation guarantees a job block"
    started = time.perf_counter()
    deadline = time.monotonic() + service.budget
    async with client_for(service, ctx) as client:

        async def submit(timeout: float) -> _Submitted | CheckResult:
            return await _submit(client, service, timeout)

        retried = await with_retries(service, deadline, submit)
        if isinstance(retried.outcome, CheckResult):
            result = retried.outcome
        else:
            result = await _poll_until_done(client, service, service.job, retried.outcome, deadline)
            result = replace(
                result, phases=retried.outcome.phases, cert_expiry=retried.outcome.cert_expiry
            )
    return replace(
        result, attempts=retried.attempts, duration_seconds=time.perf_counter() - started
    )


async def _submit(
    client: httpx.AsyncClient, service: ServiceConfig, timeout: float
) -> _Submitted | CheckResult:
    async with exchange(
        client, service, service.method, service.parsed_url, timeout, json=service.json
    ) as ex:
        if ex.response.status_code not in service.expect.status:
            return status_failure(ex.response, "job submit")
        body, truncated = await ex.read_body(service.max_body_bytes)
        details = {"status_code": ex.response.status_code}
        try:
            task_id = lookup(parse_json(body, truncated), service.job.id_field)
        except InvalidJSON as exc:
            return CheckResult.failure(Reason.INVALID_RESPONSE, f"job submit: {exc}", **details)
        if not isinstance(task_id, str | int) or isinstance(task_id, bool) or task_id == "":
            return CheckResult.failure(
                Reason.INVALID_RESPONSE,
                f"job submit: no task id at {service.job.id_field!r}",
                **details,
            )
        return _Submitted(str(task_id), MappingProxyType(ex.phases), ex.cert_expiry)


async def _poll_until_done(
    client: httpx.AsyncClient,
    service: ServiceConfig,
    job: JobConfig,
    submitted: _Submitted,
    deadline: float,
) -> CheckResult:
    """Poll every `poll_interval`; transient poll errors are tolerated until the deadline."""
    url = job.poll_url.replace("{id}", submitted.task_id)
    last_seen = "no poll answered yet"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return CheckResult.failure(
                Reason.JOB_TIMEOUT,
                f"job {submitted.task_id} not finished within {job.deadline:g}s ({last_seen})",
            )
        await asyncio.sleep(min(job.poll_interval, remaining))
        timeout = min(service.timeout, deadline - time.monotonic())
        if timeout <= 0:
            continue
        try:
            async with asyncio.timeout(timeout):
                outcome = await _poll_once(client, service, job, url, timeout)
        except (TimeoutError, httpx.HTTPError) as exc:
            outcome = failure_from_error(exc)
        if isinstance(outcome, str):
            last_seen = f"last state {outcome}"
        elif outcome.transient:
            last_seen = f"last poll failed: {outcome.message}"
        else:
            return outcome


async def _poll_once(
    client: httpx.AsyncClient, service: ServiceConfig, job: JobConfig, url: str, timeout: float
) -> CheckResult | str:
    """The job's final result, or its state name while it is still running."""
    async with exchange(client, service, "GET", url, timeout) as ex:
        status = ex.response.status_code
        if not 200 <= status < 300:
            return status_failure(ex.response, "job poll")
        body, truncated = await ex.read_body(service.max_body_bytes)
    try:
        document = parse_json(body, truncated)
    except InvalidJSON as exc:
        return CheckResult.failure(Reason.INVALID_RESPONSE, f"job poll: {exc}", status_code=status)
    state: Any = lookup(document, job.state_field)
    if state in job.failure:
        message = f"job ended in state {state}"
        return CheckResult.failure(Reason.JOB_FAILED, message, status_code=status)
    if state not in job.success:
        if not isinstance(state, str):
            return CheckResult.failure(
                Reason.INVALID_RESPONSE,
                f"job poll: no state at {job.state_field!r}",
                status_code=status,
            )
        return state
    mismatch = json_mismatch(document, job.expect_json)
    if mismatch:
        message = f"job result: {mismatch}"
        return CheckResult.failure(Reason.BODY_MISMATCH, message, status_code=status)
    return CheckResult(success=True, reason=Reason.OK, status_code=status)
