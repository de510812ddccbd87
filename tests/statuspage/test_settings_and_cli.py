"""Settings from the environment, and the `python -m statuspage` command line."""

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient

from statuspage.cli import main
from statuspage.settings import Settings, SettingsError
from tests.statuspage.conftest import TOKEN


def test_defaults_and_environment(tmp_path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# admins\nfile-token-0123456789abcdef\n\n")
    hook_token = tmp_path / "hook-token"
    hook_token.write_text("hook-token-0123456789abcdef")
    settings = Settings.from_environ(
        {
            "PROMETHEUS_URL": "http://prometheus:9090/",
            "ADMIN_TOKENS": "env-token-0123456789abcdef, ",
            "ADMIN_TOKENS_FILE": f"{tokens}, {hook_token}",
            "CACHE_TTL": "5",
            "PAGE_TITLE": "Status",
        }
    )
    assert settings.prometheus_url == "http://prometheus:9090"
    assert settings.admin_tokens == (
        "env-token-0123456789abcdef",
        "file-token-0123456789abcdef",
        "hook-token-0123456789abcdef",
    )
    assert (settings.cache_ttl, settings.page_title, settings.alertmanager_url) == (
        5,
        "Status",
        None,
    )
    assert "token" not in repr(settings)
    assert Settings.from_environ({}) == Settings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CACHE_TTL": "soon"}, "CACHE_TTL: 'soon' is not a number"),
        ({"CACHE_TTL": "0"}, "CACHE_TTL: must be greater than 0"),
        ({"PROMETHEUS_URL": "prometheus:9090"}, "PROMETHEUS_URL: 'prometheus:9090' is not an http"),
        ({"ALERTMANAGER_URL": "ftp://am"}, "ALERTMANAGER_URL"),
        ({"ADMIN_TOKENS": "short"}, "at least 16 characters"),
        ({"ADMIN_TOKENS_FILE": "/nonexistent/tokens"}, "ADMIN_TOKENS_FILE: cannot read"),
    ],
)
def test_bad_settings_name_the_variable(environ, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_environ(environ)


def test_serve_refuses_bad_settings(monkeypatch, capsys) -> None:
    monkeypatch.setenv("CACHE_TTL", "-1")
    assert main(["--web.listen-address", "127.0.0.1:0"]) == 1
    assert "CACHE_TTL" in capsys.readouterr().err
    monkeypatch.delenv("CACHE_TTL")
    assert main(["--web.listen-address", "nowhere"]) == 1
    assert "not host:port" in capsys.readouterr().err


async def test_incident_command(client: TestClient, monkeypatch, capsys) -> None:
    url = str(client.make_url("")).rstrip("/")
    monkeypatch.delenv("STATUSPAGE_TOKEN", raising=False)
    assert await asyncio.to_thread(main, ["incident", "--url", url, "list"]) == 1
    assert "STATUSPAGE_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("STATUSPAGE_TOKEN", TOKEN)
    create = ["incident", "--url", url, "create", "--title", "From the CLI", "--impact", "minor"]
    create += ["--body", "Investigating.", "--service", "linker"]
    assert await asyncio.to_thread(main, create) == 0
    incident = json.loads(capsys.readouterr().out)
    assert (incident["title"], incident["services"]) == ("From the CLI", ["linker"])
    update = ["incident", "--url", url, "update", str(incident["id"]), "--status", "done"]
    assert await asyncio.to_thread(main, [*update, "--body", "x"]) == 1
    assert "HTTP 400" in capsys.readouterr().err
    resolve = ["incident", "--url", url, "update", str(incident["id"]), "--status", "resolved"]
    assert await asyncio.to_thread(main, [*resolve, "--body", "Fixed."]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "resolved"
    assert await asyncio.to_thread(main, ["incident", "--url", url, "list"]) == 0
    assert [i["title"] for i in json.loads(capsys.readouterr().out)] == ["From the CLI"]
