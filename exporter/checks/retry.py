"""The retry policy every check kind uses: tenacity, transient failures only, inside a deadline."""

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from exporter.checks.base import CheckContext, CheckResult, Reason
from exporter.checks.transport import client_for, failure_from_error
from exporter.config import Retries, ServiceConfig

T = TypeVar("T")


@dataclass(frozen=True)
class Retried(Generic[T]):
    outcome: T | CheckResult
    """What the last attempt returned: a success value, or the failure that ended the retries."""
    attempts: int


def is_transient(outcome: object) -> bool:
    return isinstance(outcome, CheckResult) and outcome.transient


async def with_retries(
    service: ServiceConfig,
    deadline: float,
    attempt: Callable[[float], Awaitable[T | CheckResult]],
) -> Retried[T]:
    """Run `attempt(timeout)` until it succeeds, fails for good, runs out of attempts or time.

    Only transient failures (transport errors, timeouts, 5xx) are retried, with exponential
    backoff and jitter; 4xx and content mismatches end at once. Each attempt is hard-bounded by
    the service timeout and by `deadline` (a `time.monotonic()` value), so retries can never make
    a check outlive its budget.
    """
    attempts = 0

    async def one_attempt(deadline: float) -> T | CheckResult:
        nonlocal attempts
        attempts += 1
        timeout = min(service.timeout, deadline - time.monotonic())
        if timeout <= 0:
            return CheckResult.failure(Reason.TIMEOUT, "check budget exhausted before attempt")
        try:
            async with asyncio.timeout(timeout):
                return await attempt(timeout)
        except TimeoutError:
            return failure_from_error(TimeoutError(f"no complete answer within {timeout:.3g}s"))
        except httpx.HTTPError as exc:
            return failure_from_error(exc)

    outcome = await retry_policy(service.retries)(one_attempt, deadline=deadline)
    return Retried(outcome, attempts)


@functools.lru_cache(maxsize=256)
def retry_policy(retries: Retries) -> AsyncRetrying:
    """The tenacity policy for these settings, built once and shared by every check using them.

    Sharing is safe: a call's own state lives in its RetryCallState (the deadline comes in as the
    call's `deadline` argument), and the bookkeeping tenacity keeps on the object is rebuilt at
    each step without an await in between, so concurrent checks never see each other's.
    """
    backoff = retries.backoff
    return AsyncRetrying(
        stop=stop_after_attempt(retries.attempts) | _past_deadline,
        wait=wait_exponential(multiplier=backoff, max=backoff * 16) + wait_random(0, backoff),
        retry=lambda state: is_transient(state.outcome.result()),
        retry_error_callback=lambda state: state.outcome.result(),
    )


def _past_deadline(state: RetryCallState) -> bool:
    return time.monotonic() + (state.upcoming_sleep or 0) >= state.kwargs["deadline"]


async def single_request_check(
    service: ServiceConfig,
    ctx: CheckContext,
    attempt: Callable[[httpx.AsyncClient, float], Awaitable[CheckResult]],
) -> CheckResult:
    """A check that is one request per attempt: retried, timed, and its attempts counted."""
    started = time.perf_counter()
    deadline = time.monotonic() + service.budget
    async with client_for(service, ctx) as client:
        retried = await with_retries(service, deadline, lambda timeout: attempt(client, timeout))
    return replace(
        retried.outcome,
        attempts=retried.attempts,
        duration_seconds=time.perf_counter() - started,
    )
