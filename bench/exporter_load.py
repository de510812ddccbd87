"""Exporter load benchmark: N services against a local target, side by side with blackbox_exporter.

Starts a loopback target server (20 ms per request; every tenth service 200 ms), then the exporter
with N services at one interval, and measures over a window, while scraping /metrics every 15 s
as Prometheus does (alternately as OpenMetrics, what Prometheus asks for, and as text): checks/s
achieved vs scheduled, CPU ms per check, RSS, scheduling lag p50/p99 (histogram bucket bounds),
measured-latency error p50/p99 against the known delay, and the scrape time of each format.
Debian's prometheus-blackbox-exporter runs at the same time, probed at the same rate and the
same mix of targets, so both pay the same machine load: its CPU per probe and latency error are
measured alongside (the target's own delays are in both). Prints a table and writes
bench/results/exporter_load.json.

    python bench/exporter_load.py          # N = 100, 1000, 6000 (100 checks/s), 10000 at 60 s
    python bench/exporter_load.py --services 100 --interval 10 --window 10
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "exporter_load.json"
FAST, SLOW = 0.020, 0.200
TICKS = os.sysconf("SC_CLK_TCK")

TARGET = """
import asyncio, sys
from aiohttp import web
async def fast(request):
    await asyncio.sleep(0.020)
    return web.Response(text="ok")
async def slow(request):
    await asyncio.sleep(0.200)
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/fast", fast)
app.router.add_get("/slow", slow)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def expected_delay(service_id: str) -> float:
    """Every tenth service (svc-0, svc-10, …) points at the slow path."""
    return SLOW if int(service_id.removeprefix("svc-")) % 10 == 0 else FAST


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_http(session: aiohttp.ClientSession, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as response:
                if response.status < 500:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
SCRAPE_EVERY = 15.0


async def fetch_metrics(
    session: aiohttp.ClientSession, url: str, openmetrics: bool
) -> tuple[str, float]:
    """The exposition in one format and the seconds the scrape took."""
    headers = {"Accept": OPENMETRICS if openmetrics else "text/plain"}
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        text = await response.text()
    return text, time.perf_counter() - started


def parse(text: str, openmetrics: bool) -> dict:
    families = (openmetrics_families if openmetrics else text_string_to_metric_families)(text)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def total(samples: dict, name: str, **match: str) -> float:
    return sum(
        value
        for (sample, labels), value in samples.items()
        if sample == name and all(dict(labels).get(k) == v for k, v in match.items())
    )


def bucket_quantile(samples: dict, name: str, quantile: float, before: dict) -> float:
    """Upper bound of the histogram bucket holding `quantile` of the window's observations."""
    buckets = sorted(
        (float(dict(labels)["le"]), value - before.get((sample, labels), 0))
        for (sample, labels), value in samples.items()
        if sample == f"{name}_bucket"
    )
    count = buckets[-1][1] if buckets else 0
    for bound, cumulative in buckets:
        if count and cumulative >= quantile * count:
            return bound
    return float("nan")


def percentile(values: list[float], quantile: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def service_config(services: int, interval: int, target: int) -> dict:
    base = f"http://127.0.0.1:{target}"
    return {
        "defaults": {
            "interval": f"{interval}s",
            "timeout": "5s",
            "retries": {"attempts": 1, "backoff": "1s"},
        },
        "services": [
            {"id": f"svc-{i}", "url": f"{base}/{'slow' if i % 10 == 0 else 'fast'}"}
            for i in range(services)
        ],
    }


async def scrape_periodically(
    session: aiohttp.ClientSession, url: str, seconds: float
) -> dict[bool, list[float]]:
    """Scrape every 15 s for `seconds`, alternating OpenMetrics and text; times per format."""
    times: dict[bool, list[float]] = {True: [], False: []}
    started = time.monotonic()
    for index in range(int(seconds // SCRAPE_EVERY)):
        await asyncio.sleep(max(0.0, started + (index + 1) * SCRAPE_EVERY - time.monotonic()))
        openmetrics = index % 2 == 0
        _, elapsed = await fetch_metrics(session, url, openmetrics)
        times[openmetrics].append(elapsed)
    await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
    return times


async def run_exporter(
    services: int,
    interval: int,
    window: float,
    target: int,
    alongside: Callable[[float, float], Awaitable[dict]] | None = None,
) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-exporter-"))
    (workdir / "services.yml").write_text(json.dumps(service_config(services, interval, target)))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter",
        "--config.file",
        str(workdir / "services.yml"),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--log.level",
        "error",
        "--checks.max-concurrent",
        "1000",
        cwd=REPO,
    )
    base = f"http://127.0.0.1:{port}"
    metrics = f"{base}/metrics"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_http(session, f"{base}/-/healthy")
            # Warm up one interval, so every service's first (jittered) check has started.
            await asyncio.sleep(interval)
            before_text, _ = await fetch_metrics(session, metrics, False)
            cpu_before, started = cpu_seconds(process.pid), time.monotonic()
            before = parse(before_text, False)
            scrapes = scrape_periodically(session, metrics, window)
            if alongside is None:
                times, other = await scrapes, None
            else:
                times, other = await asyncio.gather(scrapes, alongside(services / interval, window))
            cpu_used, elapsed = cpu_seconds(process.pid) - cpu_before, time.monotonic() - started
            text, text_seconds = await fetch_metrics(session, metrics, False)
            openmetrics_text, openmetrics_seconds = await fetch_metrics(session, metrics, True)
            times[False].append(text_seconds)
            times[True].append(openmetrics_seconds)
            after = parse(text, False)
            parse(openmetrics_text, True)  # the strict OpenMetrics parser accepts it
            async with session.get(f"{base}/api/v1/results") as response:
                results = (await response.json())["services"]
        checks = total(after, "probe_checks_total") - total(before, "probe_checks_total")
        overruns = total(after, "status_exporter_check_overruns_total") - total(
            before, "status_exporter_check_overruns_total"
        )
        errors = [
            abs(entry["duration_seconds"] - expected_delay(entry["service"]))
            for entry in results
            if entry.get("up")
        ]
        failed = sum(1 for entry in results if entry.get("up") is False)
        lag = "status_exporter_scheduling_lag_seconds"
        row = {
            "services": services,
            "interval_s": interval,
            "window_s": round(elapsed, 1),
            "checks_per_s_scheduled": round(services / interval, 2),
            "checks_per_s_achieved": round(checks / elapsed, 2),
            "on_time_pct": round(100 * (1 - overruns / checks), 2) if checks else 0.0,
            "failed_services": failed,
            "cpu_ms_per_check": round(1000 * cpu_used / checks, 3) if checks else float("nan"),
            "rss_mb": round(rss_mb(process.pid), 1),
            "lag_p50_s_le": bucket_quantile(after, lag, 0.50, before),
            "lag_p99_s_le": bucket_quantile(after, lag, 0.99, before),
            "latency_error_p50_ms": round(1000 * percentile(errors, 0.50), 2),
            "latency_error_p99_ms": round(1000 * percentile(errors, 0.99), 2),
            "latency_error_max_ms": round(1000 * max(errors, default=float("nan")), 2),
            "scrape_text_ms": round(1000 * percentile(times[False], 0.5), 1),
            "scrape_openmetrics_ms": round(1000 * percentile(times[True], 0.5), 1),
            "exposition_kib": round(len(text.encode()) / 1024),
            "samples": len(after),
        }
        if other is not None:
            row |= other
            row["ours_vs_blackbox_cpu"] = round(
                row["cpu_ms_per_check"] / other["blackbox_cpu_ms"], 2
            )
        return row
    finally:
        process.terminate()
        await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def blackbox_exporter() -> AsyncIterator[tuple[int, int] | None]:
    """Debian's blackbox_exporter on loopback: (pid, port), or None when it is not installed."""
    binary = shutil.which("prometheus-blackbox-exporter")
    if binary is None:
        yield None
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-blackbox-"))
    (workdir / "blackbox.yml").write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
    )
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={workdir / 'blackbox.yml'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=error",
    )
    try:
        async with aiohttp.ClientSession() as session:
            await wait_http(session, f"http://127.0.0.1:{port}/-/healthy")
        yield process.pid, port
    finally:
        process.terminate()
        await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def drive_blackbox(pid: int, port: int, rate: float, seconds: float, target: int) -> dict:
    """Probe at `rate` per second, every tenth probe the slow path, as the exporter's services."""
    probe_url = f"http://127.0.0.1:{port}/probe?module=http_2xx&target=http://127.0.0.1:{target}"
    errors: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def probe(index: int) -> None:
            slow = index % 10 == 0
            async with session.get(probe_url + ("/slow" if slow else "/fast")) as response:
                text = await response.text()
            duration = parse(text, False).get(("probe_duration_seconds", ()))
            if duration is not None:
                errors.append(abs(duration - (SLOW if slow else FAST)))

        cpu_before, started, tasks = cpu_seconds(pid), time.monotonic(), []
        for index in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            tasks.append(asyncio.create_task(probe(index)))
        await asyncio.gather(*tasks)
        cpu_used = cpu_seconds(pid) - cpu_before
    return {
        "blackbox_cpu_ms": round(1000 * cpu_used / len(tasks), 3),
        "blackbox_latency_error_p50_ms": round(1000 * percentile(errors, 0.50), 2),
        "blackbox_latency_error_p99_ms": round(1000 * percentile(errors, 0.99), 2),
    }


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def print_table(rows: list[dict]) -> None:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    for line in [columns, *cells]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[100, 1000, 6000, 10000])
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--window", type=float, default=60)
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    host = machine()
    print(f"{host['date']}  {host['cpu']} x{host['cores']}  Python {host['python']}")
    target_port = free_port()
    target = await asyncio.create_subprocess_exec(sys.executable, "-c", TARGET, str(target_port))
    try:
        async with aiohttp.ClientSession() as session:
            await wait_http(session, f"http://127.0.0.1:{target_port}/fast")
        rows = []
        async with blackbox_exporter() as blackbox:
            for count in args.services:
                alongside = None
                if blackbox is not None:

                    def alongside(rate: float, seconds: float) -> Awaitable[dict]:
                        return drive_blackbox(*blackbox, rate, seconds, target_port)

                rows.append(
                    await run_exporter(count, args.interval, args.window, target_port, alongside)
                )
                print(f"measured N={count}", file=sys.stderr)
    finally:
        target.terminate()
        await target.wait()
    host["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    print_table(rows)
    if blackbox is None:
        print("\nblackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter)")
    for row in rows:
        if "blackbox_cpu_ms" in row:
            print(
                f"\nside by side at {row['checks_per_s_scheduled']:g} checks/s: CPU ms per check "
                f"ours {row['cpu_ms_per_check']} vs blackbox_exporter {row['blackbox_cpu_ms']} "
                f"= {row['ours_vs_blackbox_cpu']}x; latency error p99 ours "
                f"{row['latency_error_p99_ms']} ms vs {row['blackbox_latency_error_p99_ms']} ms"
            )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": host, "exporter": rows}, indent=2))
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    asyncio.run(main())
