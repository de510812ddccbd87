"""`kind: heartbeat`: nothing is requested. A batch job reports to the exporter when it runs
(`POST /api/v1/heartbeat/{id}`, or `/fail`); this check judges the latest report against the clock.

Up after a successful report, down at once after a failed one, down with `heartbeat_missed` once
no report came for `interval + grace`. Before its first report a service is given that long from
when the exporter began watching it (a state file keeps that across restarts).
"""

from exporter.checks.base import CheckContext, CheckResult, HeartbeatDetails, Reason
from exporter.config import ServiceConfig
from exporter.durations import format_duration
from exporter.heartbeat.state import Watch


async def run(service: ServiceConfig, ctx: CheckContext) -> CheckResult:
    book = ctx.heartbeats
    return evaluate(service, book.get(service.id), book.clock())


def evaluate(service: ServiceConfig, watch: Watch | None, now: float) -> CheckResult:
    assert service.heartbeat is not None, "config validation guarantees it for kind heartbeat"
    last = watch.last if watch is not None else None
    start = last.at if last is not None else watch.since if watch is not None else now
    deadline = start + service.interval + service.heartbeat.grace
    details = HeartbeatDetails(last_report=None if last is None else last.at, deadline=deadline)
    if now > deadline:
        expected = (
            f"expected every {format_duration(service.interval)} "
            f"+ {format_duration(service.heartbeat.grace)} grace"
        )
        silence = format_duration(now - start)
        if last is None:
            message = f"no report in the {silence} since watching began ({expected})"
        else:
            message = f"last report {_ago(now - start)} ({expected})"
        return CheckResult.failure(Reason.HEARTBEAT_MISSED, message, heartbeat=details)
    if last is None:
        return CheckResult(True, Reason.OK, message="no report yet", heartbeat=details)
    age = _ago(now - last.at)
    if not last.ok:
        message = f"the job reported a failure {age}"
        message += f": {last.message}" if last.message else ""
        return CheckResult.failure(Reason.JOB_FAILED, message, heartbeat=details)
    return CheckResult(True, Reason.OK, message=f"last report {age}", heartbeat=details)


def _ago(seconds: float) -> str:
    return "just now" if seconds < 1 else f"{format_duration(seconds)} ago"
