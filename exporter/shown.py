"""Quoting a value from a config file in an error message."""

from typing import Any


def shown(value: Any, limit: int = 40) -> str:
    """`repr(value)`, cut short: a message quotes the value, never a whole megabyte of it.

    repr() also escapes what a terminal or a log line should not get raw (control characters,
    lone surrogates).
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
