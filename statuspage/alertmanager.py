"""Alertmanager silences for maintenance windows (API v2)."""

import re
from collections.abc import Sequence
from datetime import datetime

import aiohttp

TIMEOUT_SECONDS = 2.0
"""An admin write waits for Alertmanager at most this long per call."""


class AlertmanagerError(Exception):
    """Alertmanager could not be reached or refused the request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Alertmanager:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)

    async def silence(
        self,
        services: Sequence[str],
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
    ) -> str:
        """Create a silence of every alert about `services`; returns its id."""
        body = {
            "matchers": [
                {
                    "name": "service",
                    "value": "|".join(re.escape(service) for service in services),
                    "isRegex": True,
                    "isEqual": True,
                }
            ],
            "startsAt": starts_at.isoformat(),
            "endsAt": ends_at.isoformat(),
            "createdBy": "sefaria-status statuspage",
            "comment": comment,
        }
        answer = await self._call("POST", "/api/v2/silences", body)
        return answer["silenceID"]

    async def expire(self, silence_id: str) -> None:
        """Expire a silence; one that is gone or expired already is fine (someone may have
        expired it by hand)."""
        try:
            await self._call("DELETE", f"/api/v2/silence/{silence_id}", None)
        except AlertmanagerError as exc:
            if exc.status != 404 and "already expired" not in str(exc):
                raise

    async def _call(self, method: str, path: str, body: object) -> dict:
        try:
            async with self._session.request(
                method, self._base_url + path, json=body, timeout=self._timeout
            ) as response:
                text = await response.text()
                if response.status >= 300:
                    raise AlertmanagerError(
                        f"{method} {path}: HTTP {response.status}: {text[:200]}", response.status
                    )
                return await response.json(content_type=None) if text.strip() else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AlertmanagerError(f"{method} {path}: {exc.__class__.__name__}: {exc}") from None
