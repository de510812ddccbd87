"""Grafana: the committed dashboards are what the code generates, and they fit the provisioning."""

import json
import re
import shutil
from pathlib import Path

import grafana_dashboards
import pytest
import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
PROVISIONING = GRAFANA / "provisioning"
SLACK_TEMPLATE = GRAFANA.parent / "alertmanager" / "templates" / "slack.tmpl"


def committed() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in GRAFANA.glob("dashboards/*.json")}


def provisioned_datasource() -> dict:
    (datasource,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    return datasource


def test_committed_json_is_what_the_code_generates():
    assert sorted(committed()) == sorted(grafana_dashboards.DASHBOARDS)
    for name, build in grafana_dashboards.DASHBOARDS.items():
        assert (GRAFANA / "dashboards" / name).read_text() == grafana_dashboards.render(build), (
            f"{name} is out of date: run `make dashboards`"
        )


def test_check_mode_reports_a_hand_edited_dashboard(tmp_path, monkeypatch, capsys):
    copy = tmp_path / "dashboards"
    shutil.copytree(GRAFANA / "dashboards", copy)
    monkeypatch.setattr(grafana_dashboards, "DASHBOARDS_DIR", copy)
    assert grafana_dashboards.main(["--check"]) == 0
    edited = copy / "exporter-health.json"
    edited.write_text(edited.read_text().replace('"Overruns"', '"Overrun"'))
    assert grafana_dashboards.main(["--check"]) == 1
    assert "out of date: exporter-health.json" in capsys.readouterr().err


def test_every_query_uses_the_provisioned_datasource():
    datasource = provisioned_datasource()
    uid = datasource["uid"]
    assert datasource["type"] == "prometheus"
    for name, board in committed().items():
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == uid, f"{name}: {panel['title']}"
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids), f"{name}: {panel['title']}"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid, f"{name}: {panel['title']}"
        for variable in board["templating"]["list"]:
            assert variable["datasource"]["uid"] == uid, f"{name}: ${variable['name']}"


def test_dashboards_have_unique_uids_titles_and_panel_ids():
    boards = committed().values()
    assert len({board["uid"] for board in boards}) == len(boards)
    for board in boards:
        ids = [panel["id"] for panel in board["panels"]]
        assert ids == list(range(1, len(ids) + 1)), board["title"]
        titles = [panel["title"] for panel in board["panels"]]
        assert len(set(titles)) == len(titles), board["title"]
        undescribed = [
            p["title"] for p in board["panels"] if p["type"] != "row" and not p.get("description")
        ]
        assert undescribed == [], board["title"]


@pytest.mark.parametrize(
    "title",
    [
        "Up / down",
        "Up / down by location",
        "Uptime 24h",
        "Uptime 7d",
        "Uptime 30d",
        "Check latency p50 / p95",
        "Latency by phase",
        "HTTP status",
        "Attempts per check",
        "Failure reasons",
        "Linker job duration",
        "TLS certificate days left",
        "Error budget remaining (30d)",
        "Firing alerts",
    ],
)
def test_service_overview_has_the_panel(title):
    overview = committed()["service-overview.json"]
    assert title in [panel["title"] for panel in overview["panels"]]


def test_exporter_health_covers_throughput_overruns_lag_reloads_and_scrapes():
    health = committed()["exporter-health.json"]
    exprs = " ".join(t["expr"] for panel in health["panels"] for t in panel.get("targets", []))
    for metric in (
        "probe_checks_total",
        "status_exporter_check_overruns_total",
        "status_exporter_scheduling_lag_seconds_bucket",
        "status_exporter_config_last_reload_successful",
        "scrape_duration_seconds",
    ):
        assert metric in exprs


def test_slack_links_open_the_service_overview_filtered_to_the_service():
    overview = committed()["service-overview.json"]
    link = re.search(
        r"/d/([\w-]+)/[\w-]+\{\{ with \.CommonLabels\.service \}\}\?var-(\w+)=",
        SLACK_TEMPLATE.read_text(),
    )
    assert link, "the Slack template has no Grafana dashboard link"
    assert link[1] == overview["uid"]
    assert link[2] in [variable["name"] for variable in overview["templating"]["list"]]


def test_file_provider_reads_the_dashboards_folder():
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "sefaria-status.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False
