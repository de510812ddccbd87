"""Check kinds. A new kind is one module with `run(service, ctx)` plus one entry here."""

from exporter.checks import async_job, heartbeat, http, mcp, sse
from exporter.checks.base import Check, CheckContext, CheckResult, Reason

KINDS: dict[str, Check] = {
    "http": http.run,
    "async_job": async_job.run,
    "sse": sse.run,
    "mcp": mcp.run,
    "heartbeat": heartbeat.run,
}

__all__ = ["KINDS", "Check", "CheckContext", "CheckResult", "Reason"]
