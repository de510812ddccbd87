"""Grafana dashboards as code: `make dashboards` writes dashboards/*.json from this module.

The JSON files are committed so Grafana's file provider can load them with no build step; a test
fails when they differ from what this module generates. Every query reads only the metric
contract of DESIGN.md §3, the recording rules and the exporter's own metrics, and every one is
evaluated against a real Prometheus by tests/e2e/test_dashboard_queries.py.
"""

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="sefaria-status-prometheus")
EXPORTER_JOB = "sefaria-status-exporter"
SERVICE = 'service=~"$service"'
RATE = "$__rate_interval"
WHERE = "{{service}} {{location}}"
"""Legend of a per-location series (a single exporter may have no `location` label)."""


def query(expr: str, legend: str = "__auto", *, instant: bool = False) -> prometheus.Dataquery:
    target = (
        prometheus.Dataquery().expr(expr).legend_format(legend).ref_id("A").datasource(DATASOURCE)
    )
    return target.instant().format(PromQueryFormat.TABLE) if instant else target


def thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    """Absolute thresholds, the first step (value None) being the base colour."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def value_texts(texts: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """Value → (text, colour) mappings, so a state reads as a word and not only a colour."""
    options = {
        value: model.ValueMappingResult(text=text, color=color, index=index)
        for index, (value, (text, color)) in enumerate(texts.items())
    }
    return [model.ValueMap(options=options)]


UP_DOWN = value_texts({"1": ("UP", "green"), "0": ("DOWN", "red")})


def all_or_some_variable(name: str, label: str, query: str) -> dash.QueryVariable:
    """A multi-value `label_values` variable whose "All" is the regex `.+`, not a long list."""
    return (
        dash.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": query, "refId": name})
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def service_variable() -> dash.QueryVariable:
    return all_or_some_variable(
        "service", "Service", "label_values(probe_service_info, service)"
    ).sort(model.VariableSort.ALPHABETICAL_ASC)


def instance_variable() -> dash.QueryVariable:
    return all_or_some_variable(
        "instance", "Exporter", f'label_values(up{{job="{EXPORTER_JOB}"}}, instance)'
    )


def base_dashboard(title: str, uid: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["sefaria-status"])
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone(common.TimeZoneUtc)
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(
            dash.DashboardLink("sefaria-status dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["sefaria-status"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def state_timeline(title: str, description: str, target: prometheus.Dataquery):
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .fill_opacity(80)
        .line_width(0)
    )


def time_series(title: str, description: str, unit: str, *targets: prometheus.Dataquery):
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    for ref_id, target in zip("ABCDEFGH", targets, strict=False):
        panel = panel.with_target(target.ref_id(ref_id))
    return panel


def stat_per_service(title: str, description: str, unit: str, expr: str) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query(expr, "{{service}}"))
        .unit(unit)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def uptime_stats() -> Iterator[stat.Panel]:
    for window, rule in (("24h", "1d"), ("7d", "7d"), ("30d", "30d")):
        yield (
            stat_per_service(
                f"Uptime {window}",
                f"Share of the last {window} the service was up by its service-level state "
                f"(recording rule service:probe_success:quorum_avg{rule}).",
                "percentunit",
                f"service:probe_success:quorum_avg{rule}{{{SERVICE}}}",
            )
            .decimals(3)
            .thresholds(thresholds((None, "red"), (0.99, "orange"), (0.999, "green")))
            .span(6)
            .height(5)
        )


def service_overview() -> dash.Dashboard:
    board = base_dashboard(
        "Service overview",
        "sefaria-status-overview",
        "Up/down, uptime, latency and diagnostics of every checked service.",
    ).with_variable(service_variable())

    board = (
        board.with_row(dash.Row("Availability"))
        .with_panel(
            state_timeline(
                "Up / down",
                "The service-level state every alert and the status page read: down when a "
                "majority of the locations checking it see it down "
                "(service:probe_success:quorum).",
                query(f"service:probe_success:quorum{{{SERVICE}}}", "{{service}}"),
            )
            .mappings(UP_DOWN)
            .span(24)
            .height(8)
        )
        .with_panel(
            state_timeline(
                "Up / down by location",
                "The latest check of each service from each location, after retries "
                "(probe_success): one location's own trouble shows here, not above.",
                query(f"probe_success{{{SERVICE}}}", WHERE),
            )
            .mappings(UP_DOWN)
            .span(24)
            .height(8)
        )
    )
    for panel in uptime_stats():
        board = board.with_panel(panel)
    board = board.with_panel(
        stat_per_service(
            "Error budget remaining (30d)",
            "Share of the 30-day error budget of a 99.9 % objective still unspent, spent by the "
            "service-level state; below zero the objective is missed.",
            "percentunit",
            f"service:probe_error_budget:remaining_ratio30d{{{SERVICE}}}",
        )
        .decimals(1)
        .thresholds(thresholds((None, "red"), (0, "orange"), (0.25, "green")))
        .span(6)
        .height(5)
    )
    board = board.with_panel(
        table.Panel()
        .title("Firing alerts")
        .description("Alerts firing now, as Prometheus evaluates them (ALERTS).")
        .datasource(DATASOURCE)
        .with_target(
            query(
                'sum by (alertname, severity, service) (ALERTS{alertstate="firing"})',
                instant=True,
            )
        )
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True, "Value": True}},
            )
        )
        .no_value("No alert is firing")
        .span(24)
        .height(6)
    )

    board = (
        board.with_row(dash.Row("Latency"))
        .with_panel(
            time_series(
                "Check latency p50 / p95",
                "Percentiles of whole-check durations over 5 minutes (recording rules; with "
                "several locations, the slowest).",
                "s",
                query(f"service:probe_duration_seconds:p50_5m{{{SERVICE}}}", "{{service}} p50"),
                query(f"service:probe_duration_seconds:p95_5m{{{SERVICE}}}", "{{service}} p95"),
            ).span(12)
        )
        .with_panel(
            time_series(
                "Latency by phase",
                "Phases of the latest check's main request: resolve, connect, tls, processing, "
                "transfer.",
                "s",
                query(
                    f"probe_http_duration_seconds{{{SERVICE}}} > 0",
                    "{{service}} {{location}} {{phase}}",
                ),
            ).span(12)
        )
        .with_panel(
            time_series(
                "Linker job duration",
                "Async jobs, submit to completion, from each location, against their latency "
                "objective.",
                "s",
                query(
                    f"probe_duration_seconds{{{SERVICE}}} and on (service) "
                    f'probe_service_info{{kind="async_job"}}',
                    WHERE,
                ),
                query(
                    f"max by (service) (probe_latency_objective_seconds{{{SERVICE}}}) "
                    f'and on (service) probe_service_info{{kind="async_job"}}',
                    "{{service}} objective",
                ),
            ).span(12)
        )
        .with_panel(
            stat_per_service(
                "TLS certificate days left",
                "Days until the leaf certificate of each https service expires; the "
                "TLSCertificateExpiring alert warns at 20 days and pages at 3.",
                "d",
                f"(probe_ssl_earliest_cert_expiry{{{SERVICE}}} - time()) / 86400",
            )
            .decimals(0)
            .thresholds(thresholds((None, "red"), (3, "orange"), (20, "green")))
            .span(12)
        )
    )

    board = (
        board.with_row(dash.Row("MCP servers and batch jobs"))
        .with_panel(
            table.Panel()
            .title("MCP servers")
            .description(
                "What the latest MCP check negotiated: transport, protocol version, server name "
                "and version (probe_mcp_info), and the tools the server lists (probe_mcp_tools)."
            )
            .datasource(DATASOURCE)
            .with_target(
                query(
                    f"max by (service, transport, protocol_version, server_name, server_version) "
                    f"(probe_mcp_info{{{SERVICE}}}) * on (service) group_left "
                    f"max by (service) (probe_mcp_tools{{{SERVICE}}})",
                    instant=True,
                )
            )
            .with_transformation(
                model.DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value": "tools"},
                    },
                )
            )
            .span(12)
        )
        .with_panel(
            time_series(
                "MCP initialize and tools/list",
                "How long each step of the latest MCP check took (probe_mcp_duration_seconds).",
                "s",
                query(
                    f"max by (service, step) (probe_mcp_duration_seconds{{{SERVICE}}})",
                    "{{service}} {{step}}",
                ),
            ).span(12)
        )
        .with_panel(
            time_series(
                "Batch jobs: since the last report, and left before it is missed",
                "Heartbeat services report when their job runs; past the deadline (interval + "
                "grace) they are down with reason heartbeat_missed.",
                "s",
                query(
                    f"time() - max by (service) "
                    f"(probe_heartbeat_last_report_timestamp_seconds{{{SERVICE}}})",
                    "{{service}} since last report",
                ),
                query(
                    f"max by (service) "
                    f"(probe_heartbeat_deadline_timestamp_seconds{{{SERVICE}}}) - time()",
                    "{{service}} left before missed",
                ),
            ).span(24)
        )
    )

    return (
        board.with_row(dash.Row("Diagnostics"))
        .with_panel(
            state_timeline(
                "HTTP status",
                "The last HTTP status each check saw; 0 means no response at all.",
                query(f"probe_http_status_code{{{SERVICE}}}", WHERE),
            )
            .thresholds(thresholds((None, "red"), (200, "green"), (300, "blue"), (400, "red")))
            .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
            .span(12)
        )
        .with_panel(
            time_series(
                "Attempts per check",
                "Attempts the latest check used; above 1 means retries hid a failure.",
                "short",
                query(f"probe_attempts{{{SERVICE}}}", WHERE),
            )
            .min(0)
            .span(12)
        )
        .with_panel(
            state_timeline(
                "Failure reasons",
                "Why a failing check failed (probe_result_info), one row per service, location "
                "and reason.",
                query(
                    "max by (service, location, reason) "
                    f'(probe_result_info{{{SERVICE}, reason!="ok"}})',
                    WHERE + ": {{reason}}",
                ),
            )
            .mappings(value_texts({"1": ("failing", "red")}))
            .span(12)
        )
        .with_panel(
            time_series(
                "Checks per second by result",
                "Completed checks; uptime ratios are computed from these counters.",
                "ops",
                query(
                    f"sum by (service, result) (rate(probe_checks_total{{{SERVICE}}}[{RATE}]))",
                    "{{service}} {{result}}",
                ),
            ).span(12)
        )
    )


def exporter_health() -> dash.Dashboard:
    job = f'job="{EXPORTER_JOB}", instance=~"$instance"'
    return (
        base_dashboard(
            "Exporter health",
            "sefaria-status-exporter",
            "Is the probe exporter keeping up: throughput, overruns, lag, reloads, scrapes.",
        )
        .with_variable(instance_variable())
        .with_row(dash.Row("Checks"))
        .with_panel(
            time_series(
                "Checks per second",
                "Checks completed per second by each exporter, by result.",
                "ops",
                query(
                    f"sum by (instance, result) (rate(probe_checks_total{{{job}}}[{RATE}]))",
                    "{{instance}} {{result}}",
                ),
            ).span(12)
        )
        .with_panel(
            time_series(
                "Overruns",
                "Checks that could not start on time because the previous one ran late; any "
                "value above zero means an interval shorter than the check's duration.",
                "ops",
                query(
                    f"sum by (instance, service) "
                    f"(rate(status_exporter_check_overruns_total{{{job}}}[{RATE}]))",
                    "{{instance}} {{service}}",
                ),
            ).span(12)
        )
        .with_panel(
            time_series(
                "Scheduling lag p50 / p99",
                "How late checks start compared with their schedule.",
                "s",
                *(
                    query(
                        f"histogram_quantile({quantile}, sum by (instance, le) "
                        f"(rate(status_exporter_scheduling_lag_seconds_bucket{{{job}}}[{RATE}])))",
                        f"{{{{instance}}}} p{round(quantile * 100)}",
                    )
                    for quantile in (0.5, 0.99)
                ),
            ).span(12)
        )
        .with_panel(
            time_series(
                "Checks in flight and services",
                "Checks running right now, and how many services the loaded config holds.",
                "short",
                query(f"status_exporter_checks_in_flight{{{job}}}", "{{instance}} in flight"),
                query(f"status_exporter_services{{{job}}}", "{{instance}} services"),
            ).span(12)
        )
        .with_row(dash.Row("Config, scrapes and process"))
        .with_panel(
            stat.Panel()
            .title("Last config reload")
            .description("Whether the last reload of services.yml succeeded (SIGHUP, /-/reload).")
            .datasource(DATASOURCE)
            .with_target(
                query(f"status_exporter_config_last_reload_successful{{{job}}}", "{{instance}}")
            )
            .mappings(value_texts({"1": ("OK", "green"), "0": ("FAILED", "red")}))
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE)
            .span(6)
        )
        .with_panel(
            stat.Panel()
            .title("Config loaded")
            .description("Time since the config now in use was loaded.")
            .datasource(DATASOURCE)
            .with_target(
                query(
                    "time() - status_exporter_config_last_reload_success_timestamp_seconds"
                    f"{{{job}}}",
                    "{{instance}}",
                )
            )
            .unit("s")
            .graph_mode(common.BigValueGraphMode.NONE)
            .span(6)
        )
        .with_panel(
            time_series(
                "Scrape duration",
                "How long Prometheus takes to scrape each exporter (scrape_duration_seconds).",
                "s",
                query(f"scrape_duration_seconds{{{job}}}", "{{instance}}"),
            ).span(12)
        )
        .with_panel(
            state_timeline(
                "Scraped",
                "Whether Prometheus could scrape each exporter (up).",
                query(f"up{{{job}}}", "{{instance}}"),
            )
            .mappings(UP_DOWN)
            .span(12)
        )
        .with_panel(
            time_series(
                "Seconds since each service was checked",
                "Staleness of results; ProbesStale fires past three intervals.",
                "s",
                query(
                    f"time() - probe_last_run_timestamp_seconds{{{job}}}",
                    "{{instance}} {{service}}",
                ),
            ).span(12)
        )
        .with_panel(
            time_series(
                "CPU",
                "CPU seconds per second used by each exporter process.",
                "percentunit",
                query(f"rate(process_cpu_seconds_total{{{job}}}[{RATE}])", "{{instance}}"),
            ).span(12)
        )
        .with_panel(
            time_series(
                "Memory",
                "Resident memory of each exporter process.",
                "bytes",
                query(f"process_resident_memory_bytes{{{job}}}", "{{instance}}"),
            ).span(12)
        )
    )


DASHBOARDS: dict[str, Callable[[], dash.Dashboard]] = {
    "service-overview.json": service_overview,
    "exporter-health.json": exporter_health,
}


def render(build: Callable[[], dash.Dashboard]) -> str:
    """The dashboard's JSON, panels numbered in order so links to a panel stay stable."""
    board = build().build()
    for number, panel in enumerate(board.panels or [], start=1):
        panel.id_val = number
    return JSONEncoder(sort_keys=True, indent=2).encode(board) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a committed file is out of date"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = DASHBOARDS_DIR / name
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            DASHBOARDS_DIR.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `make dashboards`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
