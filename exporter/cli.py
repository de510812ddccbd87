"""Command line: `python -m exporter` (or `status-exporter`), with Prometheus-style flags."""

import argparse
import asyncio
import logging
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from exporter.app import create_app
from exporter.checks import CheckContext, CheckResult
from exporter.config import ConfigError, ServiceConfig, load_config
from exporter.heartbeat.state import HeartbeatBook
from exporter.runtime import Exporter, Settings
from exporter.scheduler import run_check
from statuslog import LEVELS, configure, event

log = logging.getLogger("exporter")
DEFAULT_CONFIG = "deploy/exporter/services.yml"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="status-exporter",
        description="Check services over HTTP and expose the results as Prometheus metrics.",
    )
    add = parser.add_argument
    add("--config.file", dest="config_file", default=DEFAULT_CONFIG, help="services file")
    add(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the services file and exit (0 valid, 1 invalid)",
    )
    add(
        "--once",
        action="store_true",
        help="run every check once, print a table, exit 1 if any service is down",
    )
    add(
        "--web.listen-address",
        dest="listen_address",
        default="127.0.0.1:9115",
        help="address to serve /metrics on, host:port (default %(default)s)",
    )
    add(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="accept POST /-/reload (SIGHUP reloads either way)",
    )
    add(
        "--checks.max-concurrent",
        dest="max_concurrent",
        type=int,
        default=512,
        help="bound on checks in flight at once (default %(default)s)",
    )
    add(
        "--heartbeat.state-file",
        dest="heartbeat_state_file",
        type=Path,
        default=None,
        help="where heartbeat reports are kept across restarts "
        "(default: next to the services file, e.g. services.heartbeats.json)",
    )
    add(
        "--location",
        default=None,
        help="where this exporter checks from, e.g. eu; exposed as status_exporter_info{location} "
        "to match the `location` label Prometheus gives this target",
    )
    add("--log.level", dest="log_level", choices=LEVELS, default="info")
    add("--log.format", dest="log_format", choices=("text", "json"), default="text")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure(args.log_level, args.log_format)
    try:
        config = load_config(args.config_file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.config_check:
        enabled = len(config.enabled)
        print(f"{args.config_file}: OK, {len(config.services)} services ({enabled} enabled)")
        return 0
    settings = Settings(
        Path(args.config_file),
        args.max_concurrent,
        args.heartbeat_state_file,
        enable_lifecycle=args.enable_lifecycle,
        location=args.location,
    )
    if args.once:
        heartbeats = HeartbeatBook(settings.state_file)
        heartbeats.load()  # judge heartbeat services by the reports the exporter received
        results = asyncio.run(check_once(config.enabled, args.max_concurrent, heartbeats))
        print(format_table(results))
        return 0 if all(result.success for _, result in results) else 1
    host, port = split_address(args.listen_address)
    exporter = Exporter(config, settings)
    event(log, logging.INFO, "listening", address=args.listen_address, config=args.config_file)
    web.run_app(create_app(exporter), host=host, port=port, print=None, access_log=None)
    return 0


async def check_once(
    services: Sequence[ServiceConfig], max_concurrent: int, heartbeats: HeartbeatBook
) -> list[tuple[ServiceConfig, CheckResult]]:
    ctx = CheckContext(ssl_context=ssl.create_default_context(), heartbeats=heartbeats)
    slots = asyncio.Semaphore(max_concurrent)

    async def one(service: ServiceConfig) -> CheckResult:
        async with slots:
            return await run_check(service, ctx)

    try:
        results = await asyncio.gather(*(one(service) for service in services))
    finally:
        await ctx.aclose()
    return list(zip(services, results, strict=True))


def format_table(results: Sequence[tuple[ServiceConfig, CheckResult]]) -> str:
    header = ("SERVICE", "KIND", "STATE", "REASON", "HTTP", "ATTEMPTS", "DURATION", "MESSAGE")
    rows = [header] + [
        (
            service.id,
            service.kind,
            "up" if result.success else "DOWN",
            result.reason.value,
            str(result.status_code or "-"),
            str(result.attempts),
            f"{result.duration_seconds * 1000:.0f}ms",
            result.message or "-",
        )
        for service, result in results
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


def split_address(address: str) -> tuple[str | None, int]:
    """`host:port`, `[::1]:port` or `:port` (all interfaces)."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise SystemExit(f"--web.listen-address: {address!r} is not host:port")
    return (host.strip("[]") or None), int(port)
