"""What every check kind shares: the result it returns and the context it runs in."""

import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import httpx

from exporter.checks.client import new_client
from exporter.config import ServiceConfig
from exporter.heartbeat.state import HeartbeatBook

KEPT_CONNECTION_MAX_AGE = 3600.0
"""Seconds a `reuse_connection` connection serves before a new one (and TLS handshake)."""


class Reason(StrEnum):
    """Why a check ended the way it did: a small fixed set, safe to use as a label value."""

    OK = "ok"
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    HTTP_STATUS = "http_status"
    BODY_MISMATCH = "body_mismatch"
    HEADER_MISMATCH = "header_mismatch"
    JOB_FAILED = "job_failed"
    JOB_TIMEOUT = "job_timeout"
    INVALID_RESPONSE = "invalid_response"
    HEARTBEAT_MISSED = "heartbeat_missed"


@dataclass(frozen=True)
class McpDetails:
    """What an MCP check learned about the server (values from the server, length-capped)."""

    transport: str
    protocol_version: str
    server_name: str
    server_version: str
    tools: int | None = None
    """Tools the server listed; None when the check ended before tools/list answered."""
    initialize_seconds: float | None = None
    tools_list_seconds: float | None = None


@dataclass(frozen=True)
class HeartbeatDetails:
    """When a pushed service last reported, and when it is down if no report comes."""

    last_report: float | None
    deadline: float


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check (all its attempts). Checks return it; they never touch metrics."""

    success: bool
    reason: Reason
    duration_seconds: float = 0.0
    status_code: int = 0
    attempts: int = 1
    phases: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    cert_expiry: float | None = None
    message: str = ""
    transient: bool = False
    """A failure that another attempt may cure (transport error, timeout, 5xx)."""
    mcp: McpDetails | None = None
    heartbeat: HeartbeatDetails | None = None

    @classmethod
    def failure(cls, reason: Reason, message: str, **details) -> "CheckResult":
        return cls(success=False, reason=reason, message=message, **details)


@dataclass
class CheckContext:
    """Long-lived things checks share: built once per process, never per check."""

    ssl_context: ssl.SSLContext
    kept_connection_max_age: float = KEPT_CONNECTION_MAX_AGE
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds; what a kept connection's age is measured with."""
    client: httpx.AsyncClient = field(init=False)
    """The client every check shares, unless its service keeps a connection."""
    kept_clients: dict[str, tuple[ServiceConfig, httpx.AsyncClient]] = field(default_factory=dict)
    """Clients kept between checks for `reuse_connection: true`, with the config they serve."""
    mcp_transports: dict[str, tuple[ServiceConfig, str]] = field(default_factory=dict)
    """The MCP transport that last worked for a `transport: auto` service (until reload)."""
    heartbeats: HeartbeatBook = field(default_factory=HeartbeatBook)
    """Reports pushed by heartbeat services (in memory only unless given a state file)."""

    def __post_init__(self) -> None:
        self.client = new_client(self.ssl_context)

    async def aclose(self, service: ServiceConfig | None = None) -> None:
        """Close the client kept for this exact service config, or every client."""
        if service is None:
            entries = [*self.kept_clients.values(), (None, self.client)]
            self.kept_clients.clear()
        else:
            entry = self.kept_clients.get(service.id)
            if entry is None or entry[0] is not service:
                return  # nothing kept, or it belongs to a newer config of the same id
            entries = [self.kept_clients.pop(service.id)]
        for _, client in entries:
            await client.aclose()


Check = Callable[[ServiceConfig, CheckContext], Awaitable[CheckResult]]
"""A check kind: `async def run(service, ctx) -> CheckResult`, registered in `checks.KINDS`."""
