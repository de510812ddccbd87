"""A small client for the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`)."""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client import Counter


class PrometheusError(Exception):
    """Prometheus could not answer: unreachable, timed out, or it rejected the query."""


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float | None
    """None for NaN (e.g. a ratio over a window without checks)."""


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    points: tuple[tuple[float, float | None], ...]


class PrometheusClient:
    """Runs PromQL on one Prometheus through the app's shared ClientSession."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        timeout: float,
        errors: Counter | None = None,
    ) -> None:
        self._session = session
        self._errors = errors
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant vector; `at` is a unix time (default: now)."""
        params = {"query": promql} | ({"time": _format_time(at)} if at is not None else {})
        data = await self._call("/api/v1/query", params)
        if data["resultType"] != "vector":
            raise PrometheusError(f"expected a vector, got {data['resultType']}: {promql}")
        return [Sample(item["metric"], _number(item["value"][1])) for item in data["result"]]

    async def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        params = {
            "query": promql,
            "start": _format_time(start),
            "end": _format_time(end),
            "step": _format_time(step),
        }
        data = await self._call("/api/v1/query_range", params)
        return [
            Series(item["metric"], tuple((float(t), _number(v)) for t, v in item["values"]))
            for item in data["result"]
        ]

    async def _call(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            return await self._request(path, params)
        except PrometheusError:
            if self._errors is not None:
                self._errors.inc()
            raise

    async def _request(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = self._base_url + path
        try:
            async with self._session.post(url, data=params, timeout=self._timeout) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    raise PrometheusError(f"{path}: HTTP {response.status}, not JSON") from None
        except TimeoutError:
            raise PrometheusError(f"{path}: no answer within {self._timeout.total:g}s") from None
        except aiohttp.ClientError as exc:
            raise PrometheusError(f"{path}: {exc.__class__.__name__}: {exc}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error", "unexpected answer") if isinstance(body, dict) else body
            raise PrometheusError(f"{path}: HTTP {response.status}: {detail}")
        return body["data"]


def _number(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) else value


def _format_time(value: float) -> str:
    return f"{value:.3f}"
