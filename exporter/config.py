"""The services file: YAML in, frozen dataclasses out, or every problem at once with its YAML path.

The file is a user-facing contract, so validation is strict (unknown keys are errors) and every
message names where the problem is: `services[1].job.poll_url: must contain {id}`. Whatever is
accepted here runs: every value is bounded (durations at most a day, ports 1-65535, …) and URLs,
headers and JSON bodies are checked by the same rules the HTTP client applies when it sends them.
"""

import functools
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from exporter.durations import format_duration, parse_duration
from exporter.shown import shown
from exporter.yaml_loader import MAX_BYTES, EnvRef, YAMLLoadError, join_path, load_yaml

KINDS: Final = ("http", "async_job", "sse", "mcp", "heartbeat")
MCP_TRANSPORTS: Final = ("auto", "streamable_http", "sse")
HEARTBEAT_EVALUATION_INTERVAL: Final = 15.0
"""Seconds between evaluations of a heartbeat service's state (at most its interval)."""
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
EXISTS: Final = "exists"
"""In `expect.json`, this value means "the path is present, whatever its value"."""

DEFAULT_STATUS: Final[Mapping[str, frozenset[int]]] = {
    "http": frozenset(range(200, 300)),
    "async_job": frozenset({202}),
    "sse": frozenset({200}),
}
MAX_DURATION: Final = 86_400.0
"""No duration in the file may be longer than a day (or 0s, or negative), except:"""
MAX_HEARTBEAT_PERIOD: Final = 31 * 86_400.0
"""a heartbeat's `interval` and `grace`: the job that reports may run weekly or monthly."""
MAX_ATTEMPTS: Final = 10
MAX_BODY_BYTES: Final = 64 << 20
MAX_URL_LENGTH: Final = 8192
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_STATUS_CLASS = re.compile(r"^([1-5])xx$")
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEADER_VALUE = re.compile(r"^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$")
_TOKEN = re.compile(r"^[\x21-\x7e]{16,}$")


class ConfigError(Exception):
    """Every problem found in a config file, one `path: message` per entry."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(errors))


@dataclass(frozen=True)
class Retries:
    attempts: int = 3
    backoff: float = 1.0


@dataclass(frozen=True)
class Expect:
    status: frozenset[int] = DEFAULT_STATUS["http"]
    body_contains: tuple[str, ...] = ()
    body_regex: re.Pattern[str] | None = None
    json: tuple[tuple[str, Any], ...] = ()
    headers: tuple[tuple[str, re.Pattern[str]], ...] = ()
    event: str | None = None


@dataclass(frozen=True)
class JobConfig:
    poll_url: str
    id_field: str = "task_id"
    state_field: str = "state"
    success: tuple[str, ...] = ("SUCCESS",)
    failure: tuple[str, ...] = ("FAILURE", "REVOKED")
    poll_interval: float = 1.0
    deadline: float = 15.0
    expect_json: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class McpConfig:
    transport: str = "auto"
    expect_tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class HeartbeatConfig:
    grace: float
    """Down when no report came for `interval + grace`."""
    token: str = field(repr=False)


@dataclass(frozen=True)
class ServiceConfig:
    id: str
    url: str
    name: str = ""
    group: str = ""
    public: bool = True
    enabled: bool = True
    kind: str = "http"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    json: Any = field(default=None, repr=False)
    follow_redirects: bool = True
    interval: float = 60.0
    timeout: float = 10.0
    latency_objective: float = 2.0
    max_body_bytes: int = 1 << 20
    reuse_connection: bool = False
    retries: Retries = Retries()
    expect: Expect = Expect()
    job: JobConfig | None = None
    mcp: McpConfig | None = None
    heartbeat: HeartbeatConfig | None = None

    @functools.cached_property
    def parsed_url(self) -> httpx.URL:
        """`url` parsed once per config rather than at every check (an httpx.URL is immutable)."""
        return httpx.URL(self.url)

    @property
    def check_interval(self) -> float:
        """How often the scheduler runs the check.

        A heartbeat's interval is the period of the job that reports to it; its state is
        evaluated far more often, so that a missed report shows within seconds and its results
        stay as fresh as any other service's.
        """
        if self.heartbeat is not None:
            return min(self.interval, HEARTBEAT_EVALUATION_INTERVAL)
        return self.interval

    @property
    def first_check_spread(self) -> float:
        """The first check starts at a random point within this many seconds, so that polled
        services do not all fire at once; evaluating a heartbeat costs no I/O: it starts at once."""
        return 0.0 if self.heartbeat is not None else self.interval

    @property
    def budget(self) -> float:
        """Wall time a whole check (attempts, backoff, polls) may take.

        A little less than the interval (5 %, at most 1 s), so that a hanging service still gets
        its next check on schedule.
        """
        ceiling = self.interval - min(1.0, self.interval * 0.05)
        return min(self.job.deadline if self.job is not None else ceiling, ceiling)


@dataclass(frozen=True)
class Config:
    services: tuple[ServiceConfig, ...]

    @property
    def enabled(self) -> tuple[ServiceConfig, ...]:
        return tuple(service for service in self.services if service.enabled)


_MISSING: Final = object()


class _Reader:
    """Reads typed values out of plain YAML data, recording `path: problem` instead of raising."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(
        self, value: Any, path: str, allowed: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """`value` as a dict, keys limited to `allowed` unless None; {} when not a mapping."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {_type_name(value)}")
            return {}
        for key in value:
            if allowed is not None and key not in allowed:
                self.error(join_path(path, key), f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def value(
        self,
        data: dict[str, Any],
        path: str,
        key: str,
        convert: Callable[[Any], Any],
        default: Any = _MISSING,
    ) -> Any:
        """`convert(data[key])`, or `default`; a ValueError from `convert` becomes an error."""
        where = join_path(path, key)
        raw = data.get(key, _MISSING)
        if raw is _MISSING or raw is None:
            if default is _MISSING:
                self.error(where, "is required")
            return None if default is _MISSING else default
        try:
            return convert(self.resolve(raw, where))
        except ValueError as exc:
            self.error(where, str(exc))
            return None if default is _MISSING else default

    def resolve(self, raw: Any, path: str) -> Any:
        """Replace `!env` references (at any depth) by their values; an unset one is an error."""
        if isinstance(raw, EnvRef):
            if raw.name not in self.environ:
                raise ValueError(f"environment variable {raw.name} is not set")
            value = self.environ[raw.name]
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"environment variable {raw.name} is not UTF-8 text") from None
            return value
        if isinstance(raw, dict):
            return {key: self.resolve(item, join_path(path, key)) for key, item in raw.items()}
        if isinstance(raw, list):
            return [self.resolve(item, join_path(path, index)) for index, item in enumerate(raw)]
        return raw


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


# Converters: each takes a plain YAML value and returns the typed one or raises ValueError.


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_type_name(value)}")
    return value


def _non_empty_string(value: Any) -> str:
    if not _string(value).strip():
        raise ValueError("must not be empty")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {shown(value)}")
    return value


def _whole_number(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}, got {shown(value)}")
        return value

    return convert


def _duration_up_to(limit: float, zero_ok: bool = False) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        seconds = parse_duration(_string(value))
        if seconds <= 0 and not zero_ok:
            raise ValueError("must be longer than 0s")
        if seconds > limit:
            raise ValueError(f"must be at most {format_duration(limit)}")
        return seconds

    return convert


_duration = _duration_up_to(MAX_DURATION)
_heartbeat_period = _duration_up_to(MAX_HEARTBEAT_PERIOD)
_heartbeat_grace = _duration_up_to(MAX_HEARTBEAT_PERIOD, zero_ok=True)


def _token(value: Any) -> str:
    if not _TOKEN.match(_string(value)):
        raise ValueError("must be at least 16 visible ASCII characters (no spaces)")
    return value


def _service_id(value: Any) -> str:
    if not _ID.match(_string(value)):
        raise ValueError("must match [a-z0-9-]+ (lower case, digits, inner dashes)")
    return value


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {shown(value)}")
        return value

    return convert


def _url(value: Any) -> str:
    """An absolute http(s) URL with a host and a port in range, that httpx will send as is."""
    url = _string(value)
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if forbidden := _URL_FORBIDDEN.search(url):
        raise ValueError(
            f"must not contain spaces or control characters ({forbidden[0]!r} at position "
            f"{forbidden.start()})"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not url[len(parts.scheme) :].startswith("://"):
        raise ValueError("must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.netloc.rpartition("@")[2].startswith("["):
        try:
            ipaddress.IPv6Address(parts.hostname)
        except ValueError:
            raise ValueError(f"has an invalid IPv6 address: {shown(parts.hostname)}") from None
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        given = parts.netloc.rpartition("]")[2].rpartition(":")[2]
        raise ValueError(f"must have a port from 1 to 65535, got {shown(given)}")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    return url


def _poll_url(value: Any) -> str:
    url = _string(value)
    if "{id}" not in url:
        raise ValueError("must contain {id}")
    _url(url.replace("{id}", "0"))
    return url


def _header_value(value: Any) -> str:
    if not _HEADER_VALUE.match(_string(value)):
        raise ValueError(
            "must be printable ASCII with no line breaks or surrounding spaces "
            "(HTTP sends nothing else)"
        )
    return value


def _json_body(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"must be JSON data ({exc})") from None
    return value


def _regex(value: Any) -> re.Pattern[str]:
    try:
        return re.compile(_string(value))
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None


def _status(value: Any) -> frozenset[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 100 <= value <= 599:
            raise ValueError(f"must be 100-599, got {value}")
        return frozenset({value})
    match = _STATUS_CLASS.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'must be a status code or a class like "2xx", got {shown(value)}')
    first = int(match.group(1)) * 100
    return frozenset(range(first, first + 100))


class _ServiceReader:
    """Turns one `services[i]` entry (plus the file's defaults) into a ServiceConfig."""

    SERVICE_KEYS = (
        "id",
        "name",
        "group",
        "public",
        "enabled",
        "kind",
        "url",
        "method",
        "headers",
        "json",
        "follow_redirects",
        "interval",
        "timeout",
        "latency_objective",
        "max_body_bytes",
        "reuse_connection",
        "retries",
        "expect",
        "job",
        "mcp",
        "grace",
        "token",
    )
    DEFAULT_KEYS = (
        "interval",
        "timeout",
        "latency_objective",
        "follow_redirects",
        "max_body_bytes",
        "reuse_connection",
        "retries",
    )
    EXPECT_KEYS = ("status", "body_contains", "body_regex", "json", "headers", "event")
    MCP_KEYS = ("transport", "expect_tools")
    ONLY_FOR_KIND = {"job": "async_job", "mcp": "mcp", "grace": "heartbeat", "token": "heartbeat"}
    HEARTBEAT_KEYS = ("id", "name", "group", "public", "enabled", "kind", "interval")
    """A heartbeat is pushed to the exporter: nothing is requested, so nothing else applies."""
    NOT_FOR_MCP = ("method", "json", "expect")
    """The MCP conversation is fixed by the protocol; its expectations live under `mcp`."""
    JOB_KEYS = (
        "id_field",
        "poll_url",
        "state_field",
        "success",
        "failure",
        "poll_interval",
        "deadline",
        "expect_json",
    )

    BUILT_IN = {
        "interval": (_duration, 60.0),
        "timeout": (_duration, 10.0),
        "latency_objective": (_duration, 2.0),
        "follow_redirects": (_boolean, True),
        "max_body_bytes": (_whole_number(1, MAX_BODY_BYTES), 1 << 20),
        "reuse_connection": (_boolean, False),
    }

    def __init__(self, reader: _Reader, raw_defaults: Any) -> None:
        self.reader = reader
        data = reader.mapping(raw_defaults, "defaults", self.DEFAULT_KEYS)
        self.defaults: dict[str, Any] = {
            key: reader.value(data, "defaults", key, convert, fallback)
            for key, (convert, fallback) in self.BUILT_IN.items()
        }
        self.default_retries = self.retries(data.get("retries"), "defaults", Retries())

    def read(self, raw: Any, path: str) -> ServiceConfig | None:
        r = self.reader
        errors_before = len(r.errors)
        data = r.mapping(raw, path, self.SERVICE_KEYS)
        if not data:
            if isinstance(raw, dict) or raw is None:
                r.error(path, "must define at least id and url")
            return None
        service_id = r.value(data, path, "id", _service_id)
        kind = r.value(data, path, "kind", _choice(KINDS), "http")
        enabled = r.value(data, path, "enabled", _boolean, True)
        self.kind_keys(data, path, kind)
        if kind == "heartbeat":
            default = self.defaults["interval"]
            interval = r.value(data, path, "interval", _heartbeat_period, default)
        else:
            interval = self.setting(data, path, "interval")
        timeout = self.setting(data, path, "timeout")
        if timeout > interval and "timeout" in data:
            r.error(join_path(path, "timeout"), "must not be longer than the interval")
        timeout = min(timeout, interval)  # an inherited timeout is capped at the interval
        service = ServiceConfig(
            id=service_id or "",
            url="" if kind == "heartbeat" else r.value(data, path, "url", _url) or "",
            name=r.value(data, path, "name", _non_empty_string, service_id or ""),
            group=r.value(data, path, "group", _string, ""),
            public=r.value(data, path, "public", _boolean, True),
            enabled=enabled,
            kind=kind,
            method=r.value(data, path, "method", _choice(METHODS), "GET"),
            headers=self.headers(data, path),
            json=r.value(data, path, "json", _json_body, None),
            follow_redirects=self.setting(data, path, "follow_redirects"),
            interval=interval,
            timeout=timeout,
            latency_objective=self.setting(data, path, "latency_objective"),
            max_body_bytes=self.setting(data, path, "max_body_bytes"),
            reuse_connection=self.setting(data, path, "reuse_connection"),
            retries=self.retries(data.get("retries"), path, self.default_retries),
            expect=self.expect(data.get("expect"), join_path(path, "expect"), kind),
            job=self.job(data.get("job"), join_path(path, "job"), kind, interval),
            mcp=self.mcp(data.get("mcp"), join_path(path, "mcp"), kind),
            heartbeat=self.heartbeat(data, path, kind, interval, enabled),
        )
        return service if len(r.errors) == errors_before else None

    def kind_keys(self, data: dict[str, Any], path: str, kind: str) -> None:
        """Keys that belong to other kinds are errors, not silently ignored settings."""
        for key, owner in self.ONLY_FOR_KIND.items():
            if key in data and kind != owner:
                self.reader.error(join_path(path, key), f"only applies to kind {owner}")
        not_here: tuple[str, ...] = ()
        if kind == "heartbeat":
            own = (*self.HEARTBEAT_KEYS, *self.ONLY_FOR_KIND)
            not_here = tuple(key for key in self.SERVICE_KEYS if key not in own)
        elif kind == "mcp":
            not_here = self.NOT_FOR_MCP
        for key in not_here:
            if key in data:
                self.reader.error(join_path(path, key), f"does not apply to kind {kind}")

    def setting(self, data: dict[str, Any], path: str, key: str) -> Any:
        """A key the service may set, else the file's `defaults`, else the built-in default."""
        convert, _ = self.BUILT_IN[key]
        return self.reader.value(data, path, key, convert, self.defaults[key])

    def headers(self, data: dict[str, Any], path: str) -> tuple[tuple[str, str], ...]:
        where = join_path(path, "headers")
        raw = self.reader.mapping(data.get("headers"), where)
        for name in raw:
            if not _HEADER_NAME.match(str(name)):
                self.reader.error(join_path(where, name), "is not a valid HTTP header name")
        return tuple(
            (str(name), value)
            for name in raw
            if (value := self.reader.value(raw, where, name, _header_value)) is not None
        )

    def retries(self, raw: Any, path: str, fallback: Retries) -> Retries:
        where = join_path(path, "retries")
        data = self.reader.mapping(raw, where, ("attempts", "backoff"))
        return Retries(
            attempts=self.reader.value(
                data, where, "attempts", _whole_number(1, MAX_ATTEMPTS), fallback.attempts
            ),
            backoff=self.reader.value(data, where, "backoff", _duration, fallback.backoff),
        )

    def expect(self, raw: Any, path: str, kind: str) -> Expect:
        r = self.reader
        data = r.mapping(raw, path, self.EXPECT_KEYS)
        if "event" in data and kind != "sse":
            r.error(join_path(path, "event"), "only applies to kind sse")
        status = DEFAULT_STATUS.get(kind, DEFAULT_STATUS["http"])
        if "status" in data:
            codes = self.items(data, path, "status", _status)
            status = frozenset().union(*codes) if codes else status
        return Expect(
            status=status,
            body_contains=tuple(self.items(data, path, "body_contains", _string)),
            body_regex=r.value(data, path, "body_regex", _regex, None),
            json=self.json_expectations(data.get("json"), join_path(path, "json")),
            headers=self.header_expectations(data.get("headers"), join_path(path, "headers")),
            event=r.value(data, path, "event", _non_empty_string, None),
        )

    def job(self, raw: Any, path: str, kind: str, interval: float) -> JobConfig | None:
        r = self.reader
        if kind != "async_job":
            return None
        if raw is None:
            r.error(path, "is required for kind async_job")
            return None
        data = r.mapping(raw, path, self.JOB_KEYS)
        deadline = r.value(data, path, "deadline", _duration, min(15.0, interval))
        if deadline > interval:
            r.error(join_path(path, "deadline"), "must not be longer than the service's interval")
        poll_interval = r.value(data, path, "poll_interval", _duration, 1.0)
        if poll_interval > deadline and "poll_interval" in data:
            r.error(join_path(path, "poll_interval"), "must not be longer than the deadline")
        return JobConfig(
            poll_url=r.value(data, path, "poll_url", _poll_url) or "",
            id_field=r.value(data, path, "id_field", _non_empty_string, "task_id"),
            state_field=r.value(data, path, "state_field", _non_empty_string, "state"),
            success=tuple(self.items(data, path, "success", _non_empty_string)) or ("SUCCESS",),
            failure=tuple(self.items(data, path, "failure", _non_empty_string))
            or ("FAILURE", "REVOKED"),
            poll_interval=min(poll_interval, deadline),
            deadline=deadline,
            expect_json=self.json_expectations(
                data.get("expect_json"), join_path(path, "expect_json")
            ),
        )

    def mcp(self, raw: Any, path: str, kind: str) -> McpConfig | None:
        if kind != "mcp":
            return None
        r = self.reader
        data = r.mapping(raw, path, self.MCP_KEYS)
        return McpConfig(
            transport=r.value(data, path, "transport", _choice(MCP_TRANSPORTS), "auto"),
            expect_tools=tuple(self.items(data, path, "expect_tools", _non_empty_string)),
        )

    def heartbeat(
        self, data: dict[str, Any], path: str, kind: str, interval: float, enabled: bool
    ) -> HeartbeatConfig | None:
        """A disabled heartbeat service may leave out its token until its job is wired up."""
        if kind != "heartbeat":
            return None
        r = self.reader
        return HeartbeatConfig(
            grace=r.value(data, path, "grace", _heartbeat_grace, interval / 10),
            token=r.value(data, path, "token", _token, _MISSING if enabled else "") or "",
        )

    def items(self, data: dict[str, Any], path: str, key: str, convert: Callable) -> list[Any]:
        """A list under `key`, each item converted with its own `[i]` path on error."""
        where = join_path(path, key)
        raw = data.get(key)
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.reader.error(where, f"must be a list, got {_type_name(raw)}")
            return []
        by_index = dict(enumerate(raw))
        values = (self.reader.value(by_index, where, index, convert) for index in by_index)
        return [value for value in values if value is not None]

    def json_expectations(self, raw: Any, path: str) -> tuple[tuple[str, Any], ...]:
        data = self.reader.mapping(raw, path)
        return tuple(
            (str(key), self.reader.value(data, path, key, lambda value: value)) for key in data
        )

    def header_expectations(self, raw: Any, path: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
        data = self.reader.mapping(raw, path)
        return tuple(
            (str(name).lower(), pattern)
            for name in data
            if (pattern := self.reader.value(data, path, name, _regex)) is not None
        )


def parse_config(
    text: bytes | str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Parse and validate a services file; ConfigError lists every problem at once."""
    try:
        document = load_yaml(text)
    except YAMLLoadError as exc:
        raise ConfigError(source, exc.errors) from None
    if not isinstance(document, dict):
        raise ConfigError(source, ["(top level): must be a mapping with a `services` list"])
    reader = _Reader(os.environ if environ is None else environ)
    top = reader.mapping(document, "", ("defaults", "services"))
    services_reader = _ServiceReader(reader, top.get("defaults"))
    raw_services = top.get("services")
    if not isinstance(raw_services, list):
        reader.error("services", "must be a list of services")
        raw_services = []
    services = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_services):
        path = f"services[{index}]"
        service = services_reader.read(raw, path)
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(raw_id, str) and raw_id in seen:
            first = f"services[{seen[raw_id]}]"
            reader.error(f"{path}.id", f"duplicate id {shown(raw_id)} (first used by {first})")
            continue
        if isinstance(raw_id, str):
            seen[raw_id] = index
        if service is not None:
            services.append(service)
    if reader.errors:
        raise ConfigError(source, reader.errors)
    return Config(services=tuple(services))


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the services file at `path` (reading at most one byte past the limit)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), [f"(file): cannot read: {exc.strerror or exc}"]) from None
    return parse_config(data, str(path), environ)
