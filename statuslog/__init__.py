"""Structured logs shared by the exporter and the status page: logfmt text by default, one JSON
object per line with `--log.format json`.

Call sites pass their fields as `extra={"fields": {...}}` (see `event()`), never inside the message,
so both formats carry the same keys.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LEVELS = ("debug", "info", "warn", "error")


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    logger.log(level, message, extra={"fields": fields})


class _Formatter(logging.Formatter):
    def __init__(self, json_output: bool) -> None:
        super().__init__()
        self.json_output = json_output

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        if self.json_output:
            return json.dumps(entry, default=str, ensure_ascii=False)
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in entry.items())


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and not any(char in text for char in ' "=\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


def configure(level: str = "info", output_format: str = "text") -> None:
    """Send every log record to stderr in the chosen format (replacing earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(json_output=output_format == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": logging.WARNING}.get(level, level.upper()))
    for noisy in ("aiohttp.access", "httpx", "httpcore"):  # one line per request is too much
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
