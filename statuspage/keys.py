"""Typed application keys: the one place where the app's long-lived objects are named."""

from typing import Final

import jinja2
from aiohttp import web

from statuspage.alertmanager import Alertmanager
from statuspage.board import BoardSource
from statuspage.metrics import Metrics
from statuspage.prometheus import PrometheusClient
from statuspage.settings import Settings
from statuspage.store import Store

SETTINGS: Final = web.AppKey("settings", Settings)
STATIC_URLS: Final = web.AppKey("static_urls", dict[str, str])
"""File name → URL with a content digest (cached for a day, never stale)."""
METRICS: Final = web.AppKey("metrics", Metrics)
TEMPLATES: Final = web.AppKey("templates", jinja2.Environment)
STORE: Final = web.AppKey("store", Store)
PROMETHEUS: Final = web.AppKey("prometheus", PrometheusClient)
BOARD: Final = web.AppKey("board", BoardSource)
ALERTMANAGER: Final = web.AppKey("alertmanager", Alertmanager)
