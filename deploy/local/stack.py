"""The no-Docker stack: exporter, Prometheus and Alertmanager on loopback, in one work directory.

Used by the end-to-end tests (and by `make run`/`make demo`). The Prometheus and Alertmanager
files are the production ones from deploy/, rewritten for local addresses and, for tests, faster
timings (`Timings.fast()`): alert `for:` durations are scaled, never copied by hand, so the rules
that are tested are the rules that run in production.

By default one of each. Scaled out (DESIGN §7) it runs one exporter per location (labelled
`location` in Prometheus), a Prometheus pair (replicas a, b) and an Alertmanager cluster
gossiping on loopback, the way tests/e2e/test_high_availability.py proves exactly-once alerts.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.durations import format_duration, parse_duration

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RETENTION = "30d"
EXPORTER_JOB = "sefaria-status-exporter"
PROMETHEUS_REPLICAS = "abcdefgh"
"""The `replica` external label of each Prometheus of a pair (or more), in order."""


@dataclass(frozen=True)
class Timings:
    """Intervals of the stack; `for_scale` multiplies every alert's `for:` duration.

    `peer_timeout` and `gossip_interval` only matter to an Alertmanager cluster (None keeps
    Alertmanager's defaults, 15s and 200ms). The member at position p of a cluster waits p times
    the peer timeout before checking what the others sent; that wait must end before the
    group's next flush (`group_interval`), or it sends a stale copy of a notification
    (prometheus/alertmanager#2447). Production: twice 15s against 5m; fast: twice 1s against 3s.
    """

    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    for_scale: float = 1.0
    group_wait: str | None = None
    group_interval: str | None = None
    peer_timeout: str | None = None
    gossip_interval: str | None = None

    @classmethod
    def fast(cls) -> "Timings":
        """For tests: a minute of production becomes a second (a cluster settles in ~5 s)."""
        return cls(
            "1s",
            "1s",
            1 / 60,
            group_wait="1s",
            group_interval="3s",
            peer_timeout="1s",
            gossip_interval="100ms",
        )


@dataclass(frozen=True)
class Location:
    """One exporter, named by the `location` label of its Prometheus target."""

    name: str
    services_file: Path | None = None
    """Its own services file; None: the stack's `services_file`."""


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


Targets = list[tuple[str, dict[str, str]]]
"""Scrape targets of one job: (host:port, target labels)."""


def render_prometheus(
    text: str,
    timings: Timings,
    rules_dir: Path,
    targets: dict[str, Targets],
    alertmanagers: Sequence[str],
) -> str:
    """prometheus.yml with local targets (jobs without any dropped) and Alertmanagers, in place
    of the service discovery of the production file."""
    document = yaml.safe_load(text)
    document["global"]["scrape_interval"] = timings.scrape_interval
    document["global"]["evaluation_interval"] = timings.evaluation_interval
    document["rule_files"] = [str(rules_dir / "*.yml")]
    document["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": list(alertmanagers)}]}]
    document["scrape_configs"] = [
        {
            **{key: value for key, value in job.items() if not key.endswith("_configs")},
            "static_configs": [
                {"targets": [address], **({"labels": labels} if labels else {})}
                for address, labels in targets[job["job_name"]]
            ],
        }
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
    """Prometheus' command line; docker-compose.yml must pass the same (a test checks).

    `expand-external-labels` lets the replicas of a pair share one prometheus.yml: each takes
    its `replica` label from $PROMETHEUS_REPLICA.
    """
    return [
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={listen}",
        "--enable-feature=expand-external-labels",
    ]


def alertmanager_flags(
    config: Path | str,
    data: Path | str,
    listen: str,
    external_url: str,
    cluster: Sequence[str] = (),
) -> list[str]:
    """Alertmanager's command line; docker-compose.yml passes it too. Without `cluster`
    (`cluster_flags(...)`) clustering is off."""
    return [
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address={listen}",
        f"--web.external-url={external_url}",
        *(cluster or ["--cluster.listen-address="]),
    ]


def cluster_flags(
    listen: str,
    peers: Sequence[str],
    advertise: str | None = None,
    timings: Timings | None = None,
) -> list[str]:
    """The documented flags of one member of an Alertmanager cluster: where it gossips, the
    address the others reach it at, and its peers."""
    flags = [f"--cluster.listen-address={listen}"]
    if advertise:
        flags.append(f"--cluster.advertise-address={advertise}")
    flags += [f"--cluster.peer={peer}" for peer in peers]
    if timings and timings.peer_timeout:
        flags.append(f"--cluster.peer-timeout={timings.peer_timeout}")
    if timings and timings.gossip_interval:
        flags.append(f"--cluster.gossip-interval={timings.gossip_interval}")
    return flags


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

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

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
    """Exporter(s) + Prometheus(es) + Alertmanager(s) in `workdir`; use as a context manager.

    Process names, also the keys of `ports` and `processes`: `exporter` (or `exporter-<location>`
    for each of `locations`), `prometheus`, `prometheus-b`, …, `alertmanager`,
    `alertmanager-2`, …
    """

    workdir: Path
    services_file: Path
    slack_webhook_url: str
    timings: Timings = field(default_factory=Timings)
    statuspage_hook_url: str | None = None
    statuspage_hook_token: str = "local-hook-token"
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    locations: tuple[Location, ...] = ()
    """One exporter per location; none: a single exporter with no `location` label."""
    prometheus_replicas: int = 1
    alertmanager_replicas: int = 1
    """More than one: a gossiping cluster."""

    @property
    def exporters(self) -> list[str]:
        return [f"exporter-{location.name}" for location in self.locations] or ["exporter"]

    @property
    def prometheuses(self) -> list[str]:
        return ["prometheus"] + [
            f"prometheus-{replica}" for replica in PROMETHEUS_REPLICAS[1 : self.prometheus_replicas]
        ]

    @property
    def alertmanagers(self) -> list[str]:
        return ["alertmanager"] + [
            f"alertmanager-{number}" for number in range(2, self.alertmanager_replicas + 1)
        ]

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
        for name in (*self.exporters, *self.prometheuses, *self.alertmanagers):
            self.ports.setdefault(name, free_port())
        if self.alertmanager_replicas > 1:
            for name in self.alertmanagers:
                self.ports.setdefault(f"{name}-cluster", free_port())
        self._write_configs()
        self._start_all([self._exporter(name, index) for index, name in enumerate(self.exporters)])
        self._start_all(
            [self._prometheus(name, index) for index, name in enumerate(self.prometheuses)]
        )
        # Alertmanager starts last, once Prometheus has scraped every exporter: until that first
        # scrape `ExporterDown` is briefly true, and it must not reach Slack.
        for prometheus in self.prometheuses:
            self.wait_for_query(
                f'count(up{{job="{EXPORTER_JOB}"}} == 1) >= {len(self.exporters)}',
                prometheus=prometheus,
            )
        self._start_all([self._alertmanager(name) for name in self.alertmanagers])
        if self.alertmanager_replicas > 1:
            for name in self.alertmanagers:
                self.wait_for_cluster(name)

    def _start_all(self, processes: list[Process]) -> None:
        for process in processes:
            self.processes[process.name] = process
            process.start()
        for process in processes:
            process.wait_ready()

    def query(self, promql: str, prometheus: str = "prometheus") -> list[dict[str, Any]]:
        """Instant query against one of the stack's Prometheus servers."""
        url = f"{self.url(prometheus)}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]["result"]

    def wait_for_query(
        self, promql: str, timeout: float = 30.0, prometheus: str = "prometheus"
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql, prometheus)
            if result:
                return result
            time.sleep(0.2)
        raise RuntimeError(f"no result for {promql} from {prometheus} after {timeout:g}s")

    def wait_for_cluster(self, alertmanager: str, timeout: float = 60.0) -> None:
        """Until `alertmanager` sees every live member and has settled (it holds notifications
        until then); a killed member drops out of the count."""
        members = sum(1 for name in self.alertmanagers if self.processes[name].running)
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url(alertmanager)}/api/v2/status", timeout=5) as r:
                status = json.load(r)["cluster"]
            if status["status"] == "ready" and len(status.get("peers") or []) == members:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{alertmanager}: cluster not ready after {timeout:g}s: {status}")

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def kill(self, name: str) -> None:
        """Kill one component without warning (as a crash would)."""
        self.processes[name].stop(signal.SIGKILL)

    def restart(self, name: str) -> None:
        """Stop one component cleanly and start it again with the same data."""
        process = self.processes[name]
        process.stop()
        process.start()
        process.wait_ready()

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
        exporters = [
            (self.address(name), {"location": location.name} if self.locations else {})
            for name, location in zip(self.exporters, self.locations or (None,), strict=True)
        ]
        targets = {
            EXPORTER_JOB: exporters,
            "alertmanager": [(self.address(name), {}) for name in self.alertmanagers],
        }
        if "statuspage" in self.ports:
            targets["statuspage"] = [(self.address("statuspage"), {})]
        for name in self.prometheuses:
            prometheus = render_prometheus(
                (DEPLOY / "prometheus" / "prometheus.yml").read_text(),
                self.timings,
                rules,
                {**targets, "prometheus": [(self.address(name), {})]},
                [self.address(alertmanager) for alertmanager in self.alertmanagers],
            )
            (self.workdir / f"{name}.yml").write_text(prometheus)
        alertmanager = render_alertmanager(
            (DEPLOY / "alertmanager" / "alertmanager.yml").read_text(),
            self.timings,
            secrets,
            self.statuspage_hook_url,
        )
        (self.workdir / "alertmanager.yml").write_text(alertmanager)

    def _process(
        self, name: str, argv: list[str], ready_path: str, env: dict[str, str] | None = None
    ) -> Process:
        log_path = self.workdir / "logs" / f"{name}.log"
        return Process(name, argv, log_path, f"{self.url(name)}{ready_path}", env)

    def _exporter(self, name: str, index: int) -> Process:
        location = self.locations[index] if self.locations else None
        services_file = (location and location.services_file) or self.services_file
        argv = [
            sys.executable,
            "-m",
            "exporter",
            "--config.file",
            str(services_file),
            "--web.listen-address",
            self.address(name),
            "--web.enable-lifecycle",  # loopback only: `curl -X POST …/-/reload` works locally
        ]
        if location:
            argv += ["--location", location.name]
        return self._process(name, argv, "/-/healthy")

    def _prometheus(self, name: str, index: int) -> Process:
        argv = prometheus_flags(
            self.workdir / f"{name}.yml", self.workdir / f"{name}-data", self.address(name)
        )
        env = {"PROMETHEUS_REPLICA": PROMETHEUS_REPLICAS[index]}
        return self._process(name, [find_binary("prometheus"), *argv], "/-/ready", env)

    def _alertmanager(self, name: str) -> Process:
        cluster: list[str] = []
        if self.alertmanager_replicas > 1:
            gossip = self.address(f"{name}-cluster")
            peers = [self.address(f"{other}-cluster") for other in self.alertmanagers]
            cluster = cluster_flags(gossip, [p for p in peers if p != gossip], gossip, self.timings)
        argv = alertmanager_flags(
            self.workdir / "alertmanager.yml",
            self.workdir / f"{name}-data",
            self.address(name),
            self.url(name),
            cluster,
        )
        binary = find_binary("prometheus-alertmanager")
        return self._process(name, [binary, *argv], "/-/ready")
