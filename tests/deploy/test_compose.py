"""docker-compose.yml (and its HA variant), the Dockerfile and the secrets script, checked
without a Docker engine.

docker-compose 1.29 validates and resolves the file; the rest checks that what the file mounts,
runs and publishes agrees with the repository and with the local stack the other tests run.
"""

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from postgres import postgres_bin
from stack import alertmanager_flags, cluster_flags, find_binary, prometheus_flags

from tests.deploy.tools import run_tool
from tests.readme import command_starting

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_HA = REPO / "docker-compose.ha.yml"
INIT_SECRETS = REPO / "deploy" / "compose" / "init-secrets.sh"


def clean_environment(**extra: str) -> dict[str, str]:
    """No stray variables from the developer's shell, so the defaults of the file apply."""
    return {"PATH": os.environ["PATH"], **extra}


def resolve(*files: Path, **environ: str) -> dict[str, Any]:
    """The configuration docker-compose would run, from these files merged in order (and
    these variables set, as in `.env`)."""
    binary = find_binary("docker-compose")
    options = [argument for path in files for argument in ("-f", str(path))]
    result = subprocess.run(
        [binary, *options, "config"],
        cwd=REPO,
        env=clean_environment(**environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    return resolve(COMPOSE)


@pytest.fixture(scope="module")
def resolved_ha() -> dict[str, Any]:
    return resolve(COMPOSE, COMPOSE_HA)


@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, COMPOSE_HA]], ids=["single", "ha"])
def test_docker_compose_validates_the_file(files):
    options = [argument for path in files for argument in ("-f", str(path))]
    result = run_tool("docker-compose", *options, "config", "-q", cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_services_are_the_whole_stack(resolved):
    assert set(resolved["services"]) == {
        "exporter",
        "prometheus",
        "alertmanager",
        "grafana",
        "postgres",
        "statuspage",
    }


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":") if isinstance(volume, str) else (volume,)
        if source.startswith("/"):
            mounts.append((source, target))
    return mounts


def test_every_mounted_file_is_in_the_repository(resolved):
    mounted = []
    for name, service in resolved["services"].items():
        for source, _ in bind_mounts(service):
            path = Path(source)
            assert path.is_relative_to(REPO), f"{name} mounts {source} from outside the repo"
            assert path.exists(), f"{name} mounts {source}, which does not exist"
            tracked = subprocess.run(
                ["git", "ls-files", "--error-unmatch", str(path.relative_to(REPO))],
                cwd=REPO,
                capture_output=True,
                check=False,
            )
            assert tracked.returncode == 0, f"{name} mounts {source}, which is not committed"
            mounted.append(name)
    assert set(mounted) == {"exporter", "prometheus", "alertmanager", "grafana"}


def test_only_the_status_page_is_published_and_grafana_and_the_exporter_on_loopback(resolved):
    published = {
        name: service["ports"]
        for name, service in resolved["services"].items()
        if "ports" in service
    }
    assert published == {
        "statuspage": ["0.0.0.0:8080:8080/tcp"],
        "grafana": ["127.0.0.1:3000:3000/tcp"],
        "exporter": ["127.0.0.1:9115:9115/tcp"],
    }


def test_the_host_proxy_reaches_the_exporters_heartbeat_endpoint_at_the_bound_address():
    """EXPORTER_BIND/EXPORTER_PORT move the published address; it lands on the port the
    exporter listens on, so a proxy forwarding /api/v1/heartbeat/ there reaches it."""
    moved = resolve(COMPOSE, EXPORTER_BIND="10.0.0.5", EXPORTER_PORT="19115")
    exporter = moved["services"]["exporter"]
    (listen,) = [a for a in exporter["command"] if a.startswith("--web.listen-address=")]
    (published,) = exporter["ports"]
    assert published == f"10.0.0.5:19115:{listen.rpartition(':')[2]}/tcp"


def test_prometheus_and_alertmanager_run_with_the_local_stack_flags(resolved):
    services = resolved["services"]
    assert services["prometheus"]["command"] == prometheus_flags(
        "/etc/prometheus/prometheus.yml", "/prometheus", "0.0.0.0:9090"
    )
    assert "--storage.tsdb.retention.time=30d" in services["prometheus"]["command"]
    assert services["alertmanager"]["command"] == alertmanager_flags(
        "/etc/alertmanager/alertmanager.yml",
        "/alertmanager",
        "0.0.0.0:9093",
        "http://localhost:9093",
    )


def test_the_exporter_in_compose_reloads_on_sighup_only(resolved):
    """On the compose network anyone could POST /-/reload: the lifecycle API stays off there."""
    command = resolved["services"]["exporter"]["command"]
    assert command[0] == "status-exporter"
    assert "--web.enable-lifecycle" not in command


def reloaded_on_sighup(resolved: dict[str, Any]) -> list[str]:
    """The services that read a config file (`--config.file`), which SIGHUP makes them re-read."""
    return [
        name
        for name, service in resolved["services"].items()
        if any(str(arg).startswith("--config.file") for arg in service.get("command") or [])
    ]


def test_readme_reload_commands_signal_every_process_with_a_config_file(resolved, resolved_ha):
    """README's `kill -s HUP`, for one of each and for the HA variant; that each program
    re-reads its file on SIGHUP is tests/e2e/test_reload.py's part."""
    for prefix, config in (
        ("docker compose kill -s HUP ", resolved),
        (f"docker compose -f {COMPOSE.name} -f {COMPOSE_HA.name} kill -s HUP ", resolved_ha),
    ):
        names = command_starting(prefix).removeprefix(prefix).split()
        assert sorted(names) == sorted(reloaded_on_sighup(config)), prefix
    assert len(reloaded_on_sighup(resolved_ha)) == 6


def version_of(command: list[str]) -> str:
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
    return re.search(r"\d+\.\d+", output.stdout + output.stderr)[0]


def image_tag(resolved: dict[str, Any], service: str) -> str:
    return resolved["services"][service]["image"].rpartition(":")[2]


def test_images_are_pinned_to_the_versions_the_tests_run(resolved):
    prometheus = version_of([find_binary("prometheus"), "--version"])
    alertmanager = version_of([find_binary("prometheus-alertmanager"), "--version"])
    postgres_major = version_of([postgres_bin("postgres"), "--version"]).split(".")[0]
    assert image_tag(resolved, "prometheus").startswith(f"v{prometheus}.")
    assert image_tag(resolved, "alertmanager").startswith(f"v{alertmanager}.")
    assert image_tag(resolved, "postgres").startswith(f"{postgres_major}.")
    grafana_sdk = metadata.version("grafana-foundation-sdk").partition("!")[2]
    assert image_tag(resolved, "grafana") == grafana_sdk
    for name, service in resolved["services"].items():
        tag = image_tag(resolved, name)
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-\w+)?", tag) or service.get("build"), name


def test_postgres_keeps_its_data_and_the_status_page_waits_for_it(resolved):
    services = resolved["services"]
    assert "postgres-data:/var/lib/postgresql/data:rw" in services["postgres"]["volumes"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["statuspage"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("prometheus-data", "alertmanager-data", "grafana-data", "postgres-data"):
        assert name in resolved["volumes"]


def mount_target(service: dict[str, Any], source_suffix: str) -> str:
    (target,) = [t for s, t in bind_mounts(service) if s.endswith(source_suffix)]
    return target


def test_config_files_find_what_the_containers_mount(resolved):
    """Paths and host names inside the configs agree with the compose file."""
    services = resolved["services"]
    prometheus_yml = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    config_dir = Path(mount_target(services["prometheus"], "prometheus.yml")).parent
    rules_dir = mount_target(services["prometheus"], "deploy/prometheus/rules")
    assert [str(config_dir / glob) for glob in prometheus_yml["rule_files"]] == [
        f"{rules_dir}/*.yml"
    ]
    for job in [*prometheus_yml["scrape_configs"], *prometheus_yml["alerting"]["alertmanagers"]]:
        hosts = [t.split(":")[0] for c in job.get("static_configs", []) for t in c["targets"]]
        hosts += [name for config in job.get("dns_sd_configs", []) for name in config["names"]]
        assert hosts
        for host in hosts:
            assert host in services or host == "localhost", f"{job.get('job_name')}: {host}"

    alertmanager_yml = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    am_dir = Path(mount_target(services["alertmanager"], "alertmanager.yml")).parent
    templates = mount_target(services["alertmanager"], "deploy/alertmanager/templates")
    assert [str(am_dir / glob) for glob in alertmanager_yml["templates"]] == [f"{templates}/*.tmpl"]
    am_secrets = {f"/run/secrets/{s['source']}" for s in services["alertmanager"]["secrets"]}
    files = [
        value
        for receiver in alertmanager_yml["receivers"]
        for config in receiver.get("slack_configs", []) + receiver.get("webhook_configs", [])
        for value in (
            config.get("api_url_file"),
            config.get("http_config", {}).get("authorization", {}).get("credentials_file"),
        )
        if value
    ]
    assert set(files) == am_secrets

    statuspage = services["statuspage"]
    page_secrets = {f"/run/secrets/{s['source']}" for s in statuspage["secrets"]}
    environment = statuspage["environment"]
    assert (
        set(environment["ADMIN_TOKENS_FILE"].split(",")) | {environment["DATABASE_PASSWORD_FILE"]}
        == page_secrets
    )
    assert "/run/secrets/statuspage-hook-token" in page_secrets & am_secrets

    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/sefaria-status.yml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] == mount_target(services["grafana"], "grafana/dashboards")
    datasource = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == environment["PROMETHEUS_URL"] == "http://prometheus:9090"


def test_every_variable_is_documented_in_env_example():
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?(\w+)=", example, re.MULTILINE))
    assert used
    assert used <= documented, f"undocumented: {used - documented}"
    assert documented - used == {"SLACK_WEBHOOK_URL"}
    assert "SLACK_WEBHOOK_URL" in INIT_SECRETS.read_text()


def run_init_secrets(secrets_dir: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INIT_SECRETS)],
        env=clean_environment(SECRETS_DIR=str(secrets_dir), **environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_init_secrets_writes_every_secret_compose_mounts_and_keeps_them(tmp_path, resolved):
    secrets_dir = tmp_path / "secrets"
    refused = run_init_secrets(secrets_dir)
    assert refused.returncode == 1
    assert "set SLACK_WEBHOOK_URL" in refused.stderr
    assert not any(secrets_dir.glob("*"))

    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    first = run_init_secrets(secrets_dir, SLACK_WEBHOOK_URL=url)
    assert first.returncode == 0, first.stderr
    assert {path.name for path in secrets_dir.iterdir()} == set(resolved["secrets"])
    assert (secrets_dir / "slack-webhook-url").read_text().strip() == url
    assert oct(secrets_dir.stat().st_mode & 0o777) == "0o700"
    values = {path.name: path.read_text() for path in secrets_dir.iterdir()}
    assert len(set(values.values())) == len(values)
    generated = {name: value for name, value in values.items() if name != "slack-webhook-url"}
    # README: 32 letters and digits, twice the 16 characters the status page requires.
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}\n", value) for value in generated.values())

    again = run_init_secrets(secrets_dir)
    assert again.returncode == 0, again.stderr
    assert {path.name: path.read_text() for path in secrets_dir.iterdir()} == values


def test_init_secrets_refuses_a_webhook_that_is_not_https(tmp_path):
    result = run_init_secrets(tmp_path / "secrets", SLACK_WEBHOOK_URL="hooks.slack.com/x")
    assert result.returncode == 1
    assert "must be an https:// URL" in result.stderr


def test_dockerfile_installs_every_package_and_runs_unprivileged_with_a_healthcheck():
    dockerfile = (REPO / "Dockerfile").read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(re.findall(r"^COPY (\w+) ", dockerfile, re.MULTILINE))
    assert copied == packages
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert len(stages) == 2
    assert len(set(stages)) == 1
    python = f"python:{sys.version_info.major}.{sys.version_info.minor}."
    assert stages[0].startswith(python)
    final_stage = dockerfile.split("\nFROM ")[-1]
    user = re.search(r"^USER (\S+)", final_stage, re.MULTILINE)
    assert user
    assert user[1].split(":")[0] not in {"0", "root"}
    assert "HEALTHCHECK" in final_stage
    ignored = set((REPO / ".dockerignore").read_text().splitlines())
    assert "*" in ignored
    assert {f"!{package}/" for package in packages} <= ignored


def test_the_exporter_keeps_heartbeat_reports_on_a_volume_its_user_can_write(resolved):
    """Its config is mounted read-only, so the state file cannot sit next to it."""
    exporter = resolved["services"]["exporter"]
    (flag,) = [arg for arg in exporter["command"] if arg.startswith("--heartbeat.state-file=")]
    directory = str(Path(flag.partition("=")[2]).parent)
    assert f"exporter-data:{directory}:rw" in exporter["volumes"]
    assert "exporter-data" in resolved["volumes"]
    dockerfile = (REPO / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)", dockerfile, re.MULTILINE)
    assert f"install -d -o {user[1]} -g {user[2]} {directory}" in dockerfile


def test_ha_variant_adds_a_prometheus_replica_and_an_alertmanager_cluster(resolved, resolved_ha):
    services = resolved_ha["services"]
    added = {"prometheus-b", "alertmanager-2", "alertmanager-3"}
    assert set(services) == set(resolved["services"]) | added
    for name in ("prometheus", "prometheus-b"):
        assert services[name]["command"] == prometheus_flags(
            "/etc/prometheus/prometheus.yml", "/prometheus", "0.0.0.0:9090"
        )
        assert services[name]["volumes"][:2] == services["prometheus"]["volumes"][:2]
    replicas = [
        services[n]["environment"]["PROMETHEUS_REPLICA"] for n in ("prometheus", "prometheus-b")
    ]
    assert replicas == ["a", "b"]
    members = ["alertmanager", "alertmanager-2", "alertmanager-3"]
    for name in members:
        peers = [f"{other}:9094" for other in members if other != name]
        assert services[name]["command"] == alertmanager_flags(
            "/etc/alertmanager/alertmanager.yml",
            "/alertmanager",
            "0.0.0.0:9093",
            "http://localhost:9093",
            cluster_flags("0.0.0.0:9094", peers),
        )
        assert services[name]["secrets"] == services["alertmanager"]["secrets"]
        # prometheus.yml finds the Alertmanagers by this one name (DNS service discovery).
        aliases = (services[name].get("networks") or {}).get("default", {}).get("aliases", [])
        assert name == "alertmanager" or "alertmanager" in aliases, name
    data = [
        volume.split(":")[0]
        for name in ("prometheus", "prometheus-b", *members)
        for volume in services[name]["volumes"]
        if not volume.startswith("/")
    ]
    assert len(data) == len(set(data)) == 5, "each replica keeps its own data"
    assert not any("ports" in services[name] for name in added)
