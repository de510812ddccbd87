"""The simulation's switches, shared by the simulated services."""

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

MODES: Final[dict[str, tuple[str, ...]]] = {
    "sefaria-org": ("ok", "error", "hang", "slow", "redirect", "wrong_json", "flaky", "huge"),
    "linker": (
        "ok",
        "failure",
        "never",
        "submit_200",
        "submit_500",
        "no_task_id",
        "not_json",
        "poll_404",
        "flaky",
    ),
    "mcp": (
        "ok",
        "error",
        "hang",
        "wrong_content_type",
        "close",
        "missing_tool",
        "rpc_error",
    ),
    "export-server": ("ok", "error"),
}


@dataclass
class Simulation:
    """The switches: a mode per service, plus knobs for slow and flaky behaviour."""

    modes: dict[str, str] = field(default_factory=lambda: dict.fromkeys(MODES, "ok"))
    slow_seconds: float = 0.5
    flaky_failures: int = 2
    """In `flaky` mode, how many requests fail (500) before the service answers normally."""
    polls_to_finish: int = 2
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODES, 0))
    huge_bytes_sent: int = 0
    mcp_sessions: dict[str, asyncio.Queue[dict] | None] = field(default_factory=dict)
    """Open sessions of the simulated MCP server: a legacy SSE stream's queue of answers, or
    None for a Streamable HTTP session."""
    _flaky_left: dict[str, int] = field(default_factory=dict)
    _polls: dict[str, int] = field(default_factory=dict)
    _task_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def set_mode(self, service: str, mode: str) -> None:
        if mode not in MODES.get(service, ()):
            raise ValueError(f"unknown service/mode {service}/{mode}")
        self.modes[service] = mode
        self._flaky_left[service] = self.flaky_failures

    def hit(self, service: str) -> str:
        """Count a request and return the mode it should be answered in."""
        self.requests[service] += 1
        mode = self.modes[service]
        if mode == "flaky":
            left = self._flaky_left.get(service, self.flaky_failures)
            self._flaky_left[service] = max(0, left - 1)
            return "error" if left > 0 else "ok"
        return mode


SIMULATION: Final = web.AppKey("simulation", Simulation)
