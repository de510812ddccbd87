"""The no-Docker stack: exporter, Prometheus and Alertmanager on loopback, in one work directory.

Used by the end-to-end tests (and by `make run`/`make demo`). The Prometheus and Alertmanager
files are the production ones from deploy/, rewritten for local addresses and, for tests, faster
timings (`Timings.fast()`): alert `for:` durations are scaled, never copied by hand, so the rules
that are tested are the rules that run in production.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.durations import format_duration, parse_duration

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RETENTION = "30d"


@dataclass(frozen=True)
class Timings:
    """Intervals of the stack; `for_scale` multiplies every alert's `for:` duration."""

    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    for_scale: float = 1.0
    group_wait: str | None = None
    group_interval: str | None = None

    @classmethod
    def fast(cls) -> "Timings":
        """For tests: a minute of production becomes a second."""
        return cls("1s", "1s", 1 / 60, group_wait="1s", group_interval="2s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed: run `make test`, or apt-get install "
            "prometheus prometheus-alertmanager"
        )
    return path


def render_rules(text: str, timings: Timings) -> str:
    """A rules file with every `for:` scaled by `timings.for_scale` (at least 1s)."""
    document = yaml.safe_load(text)
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                seconds = max(1.0, parse_duration(rule["for"]) * timings.for_scale)
                rule["for"] = format_duration(seconds)
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def render_prometheus(
    text: str, timings: Timings, rules_dir: Path, targets: dict[str, str], alertmanager: str
) -> str:
    """prometheus.yml with local targets (`job name → host:port`; jobs without one dropped)."""
    document = yaml.safe_load(text)
    document["global"]["scrape_interval"] = timings.scrape_interval
    document["global"]["evaluation_interval"] = timings.evaluation_interval
    document["rule_files"] = [str(rules_dir / "*.yml")]
    document["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    document["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [targets[job["job_name"]]]}]}
        for job in document["scrape_configs"]
        if job["job_name"] in targets
    ]
    return yaml.safe_dump(document, sort_keys=False)


def render_alertmanager(
    text: str, timings: Timings, secrets_dir: Path, statuspage_hook_url: str | None
) -> str:
    """alertmanager.yml with local secret files, templates and (optionally) faster grouping."""
    document = yaml.safe_load(text)
    document["templates"] = [str(DEPLOY / "alertmanager" / "templates" / "*.tmpl")]
    for key in ("group_wait", "group_interval"):
        if getattr(timings, key):
            document["route"][key] = getattr(timings, key)
    for receiver in document["receivers"]:
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(secrets_dir / Path(slack["api_url_file"]).name)
        for hook in receiver.get("webhook_configs", []):
            credentials = hook["http_config"]["authorization"]
            credentials["credentials_file"] = str(
                secrets_dir / Path(credentials["credentials_file"]).name
            )
            if statuspage_hook_url:
                hook["url"] = statuspage_hook_url
    if not statuspage_hook_url:
        document["route"]["routes"] = [
            route for route in document["route"]["routes"] if route["receiver"] != "statuspage"
        ]
        document["receivers"] = [r for r in document["receivers"] if r["name"] != "statuspage"]
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def prometheus_flags(config: Path | str, data: Path | str, listen: str) -> list[str]:
    """Prometheus' command line; docker-compose.yml must pass the same (a test checks)."""
    return [
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={listen}",
    ]


def alertmanager_flags(
    config: Path | str, data: Path | str, listen: str, external_url: str
) -> list[str]:
    """Alertmanager's command line (one instance, no cluster); docker-compose.yml passes it too."""
    return [
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address={listen}",
        f"--web.external-url={external_url}",
        "--cluster.listen-address=",
    ]


@dataclass
class Process:
    """One child process with its log file, started in its own process group."""

    name: str
    argv: list[str]
    log_path: Path
    ready_url: str
    env: dict[str, str] | None = None
    """Extra environment variables (added to this process' own)."""
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            env=os.environ | self.env if self.env else None,
        )
        log.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited at start; see {self.log_path}:\n"
                    + self.log_path.read_text()[-2000:]
                )
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(self.ready_url, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:g}s; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@dataclass
class Stack:
    """Exporter + Prometheus + Alertmanager in `workdir`; use as a context manager."""

    workdir: Path
    services_file: Path
    slack_webhook_url: str
    timings: Timings = field(default_factory=Timings)
    statuspage_hook_url: str | None = None
    statuspage_hook_token: str = "local-hook-token"
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def url(self, name: str) -> str:
        return f"http://{self.address(name)}"

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def start(self) -> None:
        for name in ("exporter", "prometheus", "alertmanager"):
            self.ports.setdefault(name, free_port())
        self._write_configs()
        # Alertmanager starts last, once Prometheus has scraped the exporter: until that first
        # scrape `ExporterDown` is briefly true, and it must not reach Slack.
        for process in (self._exporter(), self._prometheus()):
            self.processes[process.name] = process
            process.start()
            process.wait_ready()
        self.wait_for_query('up{job="sefaria-status-exporter"} == 1')
        alertmanager = self.processes["alertmanager"] = self._alertmanager()
        alertmanager.start()
        alertmanager.wait_ready()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query against the stack's Prometheus."""
        url = f"{self.url('prometheus')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]["result"]

    def wait_for_query(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(0.2)
        raise RuntimeError(f"no result for {promql} after {timeout:g}s")

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def kill(self, name: str) -> None:
        """Kill one component without warning (as a crash would)."""
        self.processes[name].stop(signal.SIGKILL)

    def _write_configs(self) -> None:
        secrets = self.workdir / "secrets"
        rules = self.workdir / "rules"
        for directory in (secrets, rules, self.workdir / "logs"):
            directory.mkdir(parents=True, exist_ok=True)
        (secrets / "slack-webhook-url").write_text(self.slack_webhook_url)
        (secrets / "statuspage-hook-token").write_text(self.statuspage_hook_token)
        os.chmod(secrets / "slack-webhook-url", 0o600)
        for source in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
            (rules / source.name).write_text(render_rules(source.read_text(), self.timings))
        targets = {
            "sefaria-status-exporter": self.address("exporter"),
            "prometheus": self.address("prometheus"),
            "alertmanager": self.address("alertmanager"),
        }
        if "statuspage" in self.ports:
            targets["statuspage"] = self.address("statuspage")
        prometheus = render_prometheus(
            (DEPLOY / "prometheus" / "prometheus.yml").read_text(),
            self.timings,
            rules,
            targets,
            self.address("alertmanager"),
        )
        (self.workdir / "prometheus.yml").write_text(prometheus)
        alertmanager = render_alertmanager(
            (DEPLOY / "alertmanager" / "alertmanager.yml").read_text(),
            self.timings,
            secrets,
            self.statuspage_hook_url,
        )
        (self.workdir / "alertmanager.yml").write_text(alertmanager)

    def _process(self, name: str, argv: list[str], ready_path: str) -> Process:
        log_path = self.workdir / "logs" / f"{name}.log"
        return Process(name, argv, log_path, f"{self.url(name)}{ready_path}")

    def _exporter(self) -> Process:
        argv = [
            sys.executable,
            "-m",
            "exporter",
            "--config.file",
            str(self.services_file),
            "--web.listen-address",
            self.address("exporter"),
            "--web.enable-lifecycle",  # loopback only: `curl -X POST …/-/reload` works locally
        ]
        return self._process("exporter", argv, "/-/healthy")

    def _prometheus(self) -> Process:
        argv = prometheus_flags(
            self.workdir / "prometheus.yml",
            self.workdir / "prometheus-data",
            self.address("prometheus"),
        )
        return self._process("prometheus", [find_binary("prometheus"), *argv], "/-/ready")

    def _alertmanager(self) -> Process:
        argv = alertmanager_flags(
            self.workdir / "alertmanager.yml",
            self.workdir / "alertmanager-data",
            self.address("alertmanager"),
            self.url("alertmanager"),
        )
        binary = find_binary("prometheus-alertmanager")
        return self._process("alertmanager", [binary, *argv], "/-/ready")
