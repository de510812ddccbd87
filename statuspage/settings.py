"""Settings from environment variables (documented in README.md); command-line flags override
them."""

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    prometheus_url: str = "http://127.0.0.1:9090"
    database_url: str = "postgresql://statuspage@127.0.0.1:5433/statuspage"
    database_password: str | None = field(default=None, repr=False)
    """From DATABASE_PASSWORD_FILE, so the password need not sit in DATABASE_URL."""
    admin_tokens: tuple[str, ...] = field(default=(), repr=False)
    alertmanager_url: str | None = None
    public_url: str = "http://127.0.0.1:8080"
    page_title: str = "Sefaria Status"
    cache_ttl: float = 30.0
    """Seconds between refreshes of the data behind every page, however many visitors."""
    prometheus_timeout: float = 5.0
    max_body_bytes: int = 64 * 1024
    auth_failures_per_minute: int = 10
    """Failed authentications one client may make per minute before it gets 429."""
    auth_failures_per_minute_total: int = 100
    """Failed authentications all clients together may make per minute (per API) before every
    wrong token gets 429; valid tokens always pass."""
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    """Reverse proxies whose X-Forwarded-For names the client (TRUSTED_PROXIES)."""
    database_timeout: float = 2.0
    """Longest wait for a PostgreSQL connection, and for any one statement."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        defaults = cls()
        return cls(
            prometheus_url=_url(environ, "PROMETHEUS_URL", defaults.prometheus_url),
            database_url=environ.get("DATABASE_URL", defaults.database_url),
            database_password=_password(environ, "DATABASE_PASSWORD_FILE"),
            admin_tokens=_tokens(environ),
            alertmanager_url=_url(environ, "ALERTMANAGER_URL", None),
            public_url=_url(environ, "PUBLIC_URL", defaults.public_url),
            page_title=environ.get("PAGE_TITLE", defaults.page_title),
            cache_ttl=_positive(environ, "CACHE_TTL", defaults.cache_ttl),
            trusted_proxies=_networks(environ, "TRUSTED_PROXIES"),
            auth_failures_per_minute=_count(
                environ, "AUTH_FAILURES_PER_MINUTE", defaults.auth_failures_per_minute
            ),
            auth_failures_per_minute_total=_count(
                environ, "AUTH_FAILURES_PER_MINUTE_TOTAL", defaults.auth_failures_per_minute_total
            ),
        )


def _url(environ: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = environ.get(name) or default
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name}: {value!r} is not an http:// or https:// URL")
    return value.rstrip("/")


def _positive(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SettingsError(f"{name}: must be greater than 0, got {raw!r}")
    return value


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        raise SettingsError(f"{name}: must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def _networks(
    environ: Mapping[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or CIDR networks (`10.0.0.0/8, ::1`)."""
    networks = []
    for item in filter(None, (part.strip() for part in environ.get(name, "").split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not an IP address or network") from None
    return tuple(networks)


def _read(name: str, path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read {path}: {exc.strerror}") from None


def _password(environ: Mapping[str, str], name: str) -> str | None:
    path = environ.get(name)
    return _read(name, path).strip() if path else None


def _tokens(environ: Mapping[str, str]) -> tuple[str, ...]:
    """ADMIN_TOKENS (comma-separated) plus the files of ADMIN_TOKENS_FILE (comma-separated
    paths; one token per line, # comments), so people and the Alertmanager hook can each have
    their own secret file."""
    tokens = [token.strip() for token in environ.get("ADMIN_TOKENS", "").split(",")]
    paths = [path.strip() for path in environ.get("ADMIN_TOKENS_FILE", "").split(",")]
    for path in filter(None, paths):
        lines = _read("ADMIN_TOKENS_FILE", path).splitlines()
        tokens += [line.strip() for line in lines if not line.lstrip().startswith("#")]
    short = [token for token in tokens if token and len(token) < 16]
    if short:
        raise SettingsError("ADMIN_TOKENS: every token must be at least 16 characters long")
    return tuple(token for token in tokens if token)
