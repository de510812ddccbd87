"""Bearer-token authentication for the admin API and the Alertmanager hook.

Tokens are compared in constant time against every configured token; failed attempts are
counted per client, and a client over its budget gets 429 before its token is even looked at.
"""

import hmac
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from statuspage.keys import SETTINGS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WINDOW_SECONDS = 60.0


class FailedAttempts:
    """Failed authentications per client over the last minute."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_client: dict[str, deque[float]] = {}

    def blocked(self, client: str, now: float) -> float:
        """Seconds until `client` may try again (0: not blocked)."""
        attempts = self._recent(client, now)
        if len(attempts) < self.limit:
            return 0.0
        return attempts[0] + WINDOW_SECONDS - now

    def record(self, client: str, now: float) -> None:
        self._recent(client, now).append(now)
        if len(self._by_client) > 10_000:  # bound memory under a spray of addresses
            for stale in [c for c, a in self._by_client.items() if not a or a[-1] < now - 60]:
                del self._by_client[stale]

    def _recent(self, client: str, now: float) -> deque[float]:
        attempts = self._by_client.setdefault(client, deque())
        while attempts and attempts[0] <= now - WINDOW_SECONDS:
            attempts.popleft()
        return attempts


def token_matches(presented: str, tokens: tuple[str, ...]) -> bool:
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented.encode(), token.encode())
    return matched


def require_token(failures: FailedAttempts) -> Callable[[web.Request, Handler], Awaitable]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        tokens = request.config_dict[SETTINGS].admin_tokens
        if not tokens:
            return _error(503, "the admin API is disabled: set ADMIN_TOKENS or ADMIN_TOKENS_FILE")
        client, now = request.remote or "unknown", time.monotonic()
        wait = failures.blocked(client, now)
        if wait > 0:
            response = _error(429, "too many failed authentication attempts; try again later")
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            failures.record(client, now)
            response = _error(401, "missing bearer token: send 'Authorization: Bearer <token>'")
            response.headers["WWW-Authenticate"] = 'Bearer realm="statuspage"'
            return response
        if not token_matches(presented.strip(), tokens):
            failures.record(client, now)
            return _error(403, "invalid token")
        return await handler(request)

    return middleware


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
