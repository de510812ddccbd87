"""Bearer-token authentication for the admin API and the Alertmanager hook.

The token is looked at first, compared with `hmac.compare_digest` against every configured
token (no early exit on a match): a valid token is always let through, so no amount of other
clients' failures can lock out an operator or Alertmanager. Only failures are counted — per
client (its address, taken from `X-Forwarded-For` only when the connection comes from a trusted
proxy) and in total, in this process — and a client over its budget, or anyone once the total is
over its cap, gets 429 for a wrong token. What keeps tokens safe is their length (at least 16
characters); the limits keep a flood of bad attempts cheap, visible and bounded in memory.
"""

import hmac
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from statuslog import event
from statuspage.keys import METRICS, SETTINGS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000
"""Clients remembered at most; the oldest are forgotten first under a spray of addresses."""
log = logging.getLogger("statuspage.auth")


class FailedAttempts:
    """Failed authentications over the last minute, per client and across all clients."""

    def __init__(
        self, per_client: int, total: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_client = per_client
        self.total = total
        self._clock = clock
        self._by_client: dict[str, deque[float]] = {}
        self._all: deque[float] = deque(maxlen=total)

    def blocked(self, client: str) -> float:
        """Seconds until `client` may fail again (0: not blocked)."""
        now = self._clock()
        waits = []
        attempts = self._by_client.get(client)
        if attempts is not None and len(_recent(attempts, now)) >= self.per_client:
            waits.append(attempts[0] + WINDOW_SECONDS - now)
        if len(_recent(self._all, now)) >= self.total:
            waits.append(self._all[0] + WINDOW_SECONDS - now)
        return max(waits, default=0.0)

    def record(self, client: str) -> None:
        now = self._clock()
        attempts = self._by_client.pop(client, None) or deque(maxlen=self.per_client)
        attempts.append(now)
        self._by_client[client] = attempts  # re-inserted: the dict stays oldest-first
        self._all.append(now)
        while len(self._by_client) > MAX_CLIENTS:
            del self._by_client[next(iter(self._by_client))]


def _recent(attempts: deque[float], now: float) -> deque[float]:
    while attempts and attempts[0] <= now - WINDOW_SECONDS:
        attempts.popleft()
    return attempts


def token_matches(presented: str, tokens: tuple[str, ...]) -> bool:
    """Constant time in the presented value, whatever bytes it holds."""
    given = presented.encode("utf-8", "surrogateescape")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.encode())
    return matched


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The peer, or — when the peer is a trusted proxy — the nearest `X-Forwarded-For` hop
    that is not itself a trusted proxy (hops further left are the client's own claims)."""
    peer = request.remote or "unknown"
    if not _trusted(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
    ]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return _normalized(hop)
    return next((_normalized(hop) for hop in hops if hop), peer)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _normalized(hop: str) -> str:
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return hop.encode("utf-8", "backslashreplace").decode()[:64] or "unknown"


def require_token(
    failures: FailedAttempts, api: str
) -> Callable[[web.Request, Handler], Awaitable]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        settings = request.config_dict[SETTINGS]
        if not settings.admin_tokens:
            return _error(503, "the admin API is disabled: set ADMIN_TOKENS or ADMIN_TOKENS_FILE")
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        presented = presented.strip()
        bearer = scheme.lower() == "bearer" and bool(presented)
        if bearer and token_matches(presented, settings.admin_tokens):
            return await handler(request)
        client = client_address(request, settings.trusted_proxies)
        refused = request.config_dict[METRICS].auth_failures
        wait = failures.blocked(client)
        if wait > 0:
            refused.labels(api, "429").inc()
            response = _error(429, "too many failed authentication attempts; try again later")
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        failures.record(client)
        if failures.blocked(client) > 0:
            event(log, logging.WARNING, "failed authentications over the limit", api=api,
                  client=client)  # fmt: skip
        if not bearer:
            refused.labels(api, "401").inc()
            response = _error(401, "missing bearer token: send 'Authorization: Bearer <token>'")
            response.headers["WWW-Authenticate"] = 'Bearer realm="statuspage"'
            return response
        refused.labels(api, "403").inc()
        return _error(403, "invalid token")

    return middleware


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
