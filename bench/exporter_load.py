"""Exporter load benchmark: N services against a local target, compared with blackbox_exporter.

Starts a loopback target server (20 ms per request; every tenth service 200 ms), then the exporter
with N services at one interval, and measures over a window: checks/s achieved vs scheduled, CPU ms
per check, RSS, scheduling lag p50/p99 (histogram bucket bounds), measured-latency error p50/p99
against the known delay, and /metrics scrape time. Then drives Debian's
prometheus-blackbox-exporter at a fixed probe rate against the same target and prints the
CPU-per-probe ratio. Prints a table and writes bench/results/exporter_load.json.

    python bench/exporter_load.py                       # N = 100, 1000, 10000 at 60 s
    python bench/exporter_load.py --services 100 --interval 10 --window 10
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
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


async def scrape(session: aiohttp.ClientSession, url: str) -> tuple[dict, float]:
    started = time.perf_counter()
    async with session.get(url) as response:
        text = await response.text()
    elapsed = time.perf_counter() - started
    samples: dict = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, elapsed


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


async def run_exporter(services: int, interval: int, window: float, target: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-exporter-"))
    base_target = f"http://127.0.0.1:{target}"
    config = {
        "defaults": {
            "interval": f"{interval}s",
            "timeout": "5s",
            "retries": {"attempts": 1, "backoff": "1s"},
        },
        "services": [
            {"id": f"svc-{i}", "url": f"{base_target}/{'slow' if i % 10 == 0 else 'fast'}"}
            for i in range(services)
        ],
    }
    (workdir / "services.yml").write_text(json.dumps(config))
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
    try:
        async with aiohttp.ClientSession() as session:
            await wait_http(session, f"{base}/-/healthy")
            # Warm up one interval, so every service's first (jittered) check has started.
            await asyncio.sleep(interval)
            before, _ = await scrape(session, f"{base}/metrics")
            cpu_before, started = cpu_seconds(process.pid), time.monotonic()
            await asyncio.sleep(window)
            after, scrape_seconds = await scrape(session, f"{base}/metrics")
            cpu_used, elapsed = cpu_seconds(process.pid) - cpu_before, time.monotonic() - started
            _, scrape_again = await scrape(session, f"{base}/metrics")
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
        return {
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
            "scrape_ms": round(1000 * min(scrape_seconds, scrape_again), 1),
        }
    finally:
        process.terminate()
        await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def run_blackbox(rate: float, seconds: float, target: int) -> dict | None:
    binary = shutil.which("prometheus-blackbox-exporter")
    if binary is None:
        return None
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
    url = f"http://127.0.0.1:{port}/probe?module=http_2xx&target=http://127.0.0.1:{target}/fast"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_http(session, f"http://127.0.0.1:{port}/-/healthy")

            async def probe() -> None:
                async with session.get(url) as response:
                    await response.read()

            cpu_before, started, tasks = cpu_seconds(process.pid), time.monotonic(), []
            for index in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
                tasks.append(asyncio.create_task(probe()))
            await asyncio.gather(*tasks)
            cpu_used = cpu_seconds(process.pid) - cpu_before
        return {
            "probes": len(tasks),
            "rate_per_s": rate,
            "cpu_ms_per_probe": round(1000 * cpu_used / len(tasks), 3),
        }
    finally:
        process.terminate()
        await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(column), *(len(str(row[column])) for row in rows)) for column in columns]
    for cells in [columns, *([str(row[column]) for column in columns] for row in rows)]:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--window", type=float, default=60)
    parser.add_argument("--blackbox-rate", type=float, default=100)
    parser.add_argument("--blackbox-seconds", type=float, default=20)
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    target_port = free_port()
    target = await asyncio.create_subprocess_exec(sys.executable, "-c", TARGET, str(target_port))
    try:
        async with aiohttp.ClientSession() as session:
            await wait_http(session, f"http://127.0.0.1:{target_port}/fast")
        rows = []
        for count in args.services:
            rows.append(await run_exporter(count, args.interval, args.window, target_port))
            print(f"measured N={count}", file=sys.stderr)
        blackbox = await run_blackbox(args.blackbox_rate, args.blackbox_seconds, target_port)
    finally:
        target.terminate()
        await target.wait()
    print_table(rows)
    if blackbox is None:
        print("\nblackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter)")
    else:
        print(
            f"\nblackbox_exporter at {blackbox['rate_per_s']:g} probes/s: "
            f"{blackbox['cpu_ms_per_probe']} CPU ms per probe"
        )
        for row in rows:
            ratio = row["cpu_ms_per_check"] / blackbox["cpu_ms_per_probe"]
            print(f"  N={row['services']}: ours/blackbox CPU per check = {ratio:.2f}x")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"exporter": rows, "blackbox": blackbox}, indent=2))
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    asyncio.run(main())
