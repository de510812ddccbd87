"""`python -m statuspage` (or `status-page`): serve the status page; flags override the
environment. `python -m statuspage incident …` posts incidents through the admin API."""

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import replace

from aiohttp import web

from statuslog import LEVELS, configure, event
from statuspage.app import create_app
from statuspage.settings import Settings, SettingsError

log = logging.getLogger("statuspage")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["incident"]:
        return incident_command(args[1:])
    return serve(args)


def serve(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="status-page",
        description="Serve the public status page (settings from the environment; see README).",
        epilog="Subcommand: `incident` posts incidents through the admin API (`incident --help`).",
    )
    add = parser.add_argument
    add("--web.listen-address", dest="listen_address", default="127.0.0.1:8080")
    add("--prometheus.url", dest="prometheus_url", help="overrides PROMETHEUS_URL")
    add("--database.url", dest="database_url", help="overrides DATABASE_URL")
    add("--alertmanager.url", dest="alertmanager_url", help="overrides ALERTMANAGER_URL")
    add("--public-url", dest="public_url", help="overrides PUBLIC_URL")
    add("--log.level", dest="log_level", choices=LEVELS, default="info")
    add("--log.format", dest="log_format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    configure(args.log_level, args.log_format)
    try:
        settings = Settings.from_environ(os.environ)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    overrides = {
        name: getattr(args, name)
        for name in ("prometheus_url", "database_url", "alertmanager_url", "public_url")
        if getattr(args, name)
    }
    settings = replace(settings, **overrides)
    host, separator, port = args.listen_address.rpartition(":")
    if not separator or not port.isdigit():
        print(
            f"error: --web.listen-address: {args.listen_address!r} is not host:port",
            file=sys.stderr,
        )
        return 1
    if not settings.admin_tokens:
        log.warning("admin API disabled: set ADMIN_TOKENS or ADMIN_TOKENS_FILE")
    event(log, logging.INFO, "listening", address=args.listen_address)
    web.run_app(
        create_app(settings),
        host=host.strip("[]") or None,
        port=int(port),
        print=None,
        access_log=None,
    )
    return 0


def incident_command(argv: Sequence[str]) -> int:
    """A thin client of the admin API: same validation, same errors."""
    parser = argparse.ArgumentParser(
        prog="python -m statuspage incident",
        description="Post incidents to a running status page. The token comes from "
        "STATUSPAGE_TOKEN; the page from --url (default STATUSPAGE_URL or http://127.0.0.1:8080).",
    )
    parser.add_argument("--url", default=os.environ.get("STATUSPAGE_URL", "http://127.0.0.1:8080"))
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="open an incident")
    create.add_argument("--title", required=True)
    create.add_argument("--impact", required=True, choices=("none", "minor", "major", "critical"))
    create.add_argument("--status", default="investigating")
    create.add_argument("--body", required=True)
    create.add_argument("--service", action="append", default=[], dest="services")
    update = commands.add_parser("update", help="post an update to an incident")
    update.add_argument("id", type=int)
    update.add_argument("--status", required=True)
    update.add_argument("--body", required=True)
    commands.add_parser("list", help="list incidents")
    args = parser.parse_args(argv)
    token = os.environ.get("STATUSPAGE_TOKEN")
    if not token:
        print("error: set STATUSPAGE_TOKEN to an admin token", file=sys.stderr)
        return 1
    if args.command == "create":
        fields = ("title", "impact", "status", "body", "services")
        request = ("POST", "/admin/api/incidents", {name: getattr(args, name) for name in fields})
    elif args.command == "update":
        body = {"status": args.status, "body": args.body}
        request = ("POST", f"/admin/api/incidents/{args.id}/updates", body)
    else:
        request = ("GET", "/admin/api/incidents", None)
    method, path, payload = request
    return _call(args.url.rstrip("/") + path, method, payload, token)


def _call(url: str, method: str, payload: object, token: str) -> int:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(json.dumps(json.load(response), indent=2))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"error: HTTP {exc.code}: {exc.read().decode(errors='replace')}", file=sys.stderr)
    except urllib.error.URLError as exc:
        print(f"error: cannot reach {url}: {exc.reason}", file=sys.stderr)
    return 1
