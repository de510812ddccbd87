"""Status page load benchmark: requests/s and latency for `/` and `/api/v2/summary.json`.

Starts the simulated Sefaria services, a real exporter checking 50 services, Prometheus,
a throwaway PostgreSQL with 20 incidents, and the status page pinned to one core
(`taskset -c 0`). Debian's `wrk` (pinned to the other core) drives 1, 50 and 500 concurrent
connections at each path. Prometheus' own request counter gives the number of queries the
page sent per minute under each load: it must not grow with visitors. Prints a table and
writes bench/results/statuspage_load.json.

    python bench/statuspage_load.py                  # 30 s per run
    python bench/statuspage_load.py --duration 10
"""

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "statuspage_load.json"
sys.path[:0] = [str(REPO), str(REPO / "deploy" / "local")]

from postgres import PostgresCluster  # noqa: E402
from stack import Process, Stack, Timings, free_port  # noqa: E402

from simulation import services_yaml  # noqa: E402
from statuspage.status import Impact  # noqa: E402
from statuspage.store import Store  # noqa: E402

SERVICES, INCIDENTS = 50, 20
PATHS = ("/", "/api/v2/summary.json")
CONNECTIONS = (1, 50, 500)
QUERIES = re.compile(r'prometheus_http_requests_total\{code="200",handler="/api/v1/query"\} (\S+)')


def services_file(directory: Path, simulator: str) -> Path:
    base = json.loads(services_yaml(simulator, "10s", "100ms"))
    template = base["services"][0]
    base["services"] = [
        {
            **template,
            "id": f"service-{n:02d}",
            "name": f"Service {n:02d}",
            "group": f"Group {n % 5}",
        }
        for n in range(SERVICES)
    ]
    path = directory / "services.yml"
    path.write_text(json.dumps(base))
    return path


async def seed_incidents(database_url: str) -> None:
    store = Store(database_url)
    await store.connect()
    try:
        for n in range(INCIDENTS):
            status = "investigating" if n < 2 else "resolved"
            await store.create_incident(
                f"Incident {n}", Impact.MINOR, status, "Details " * 20, [f"service-{n:02d}"]
            )
    finally:
        await store.close()


def prometheus_queries(prometheus: str) -> float:
    with urllib.request.urlopen(f"{prometheus}/metrics", timeout=5) as response:
        match = QUERIES.search(response.read().decode())
    return float(match[1]) if match else 0.0


def wrk(url: str, connections: int, seconds: int) -> dict:
    argv = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        url,
    ]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+(\S+)", output)[1]),
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "non_2xx": int(errors[1]) if errors else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run `make bench` (installs Debian's wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="statuspage-bench-"))
    workdir.chmod(0o755)
    processes: list[Process] = []
    cluster = PostgresCluster(workdir / "pgdata", free_port(), durable=False)
    sim_port, page_port = free_port(), free_port()
    simulator = f"http://127.0.0.1:{sim_port}"
    stack = Stack(
        workdir=workdir / "stack",
        services_file=services_file(workdir, simulator),
        slack_webhook_url=f"{simulator}/nowhere",
        timings=Timings("5s", "5s"),
    )
    try:
        processes.append(
            Process(
                "simulation",
                [
                    sys.executable,
                    "-m",
                    "simulation",
                    "--web.listen-address",
                    f"127.0.0.1:{sim_port}",
                ],
                workdir / "simulation.log",
                f"{simulator}/-/sim",
            )
        )
        processes[-1].start()
        processes[-1].wait_ready()
        stack.start()
        stack.wait_for_query(f"count(service:probe_success:quorum == 1) >= {SERVICES}", timeout=60)
        cluster.start()
        database_url = cluster.create_database("statuspage")
        asyncio.run(seed_incidents(database_url))
        page = f"http://127.0.0.1:{page_port}"
        env = {
            "PROMETHEUS_URL": stack.url("prometheus"),
            "DATABASE_URL": database_url,
            "CACHE_TTL": "30",
        }
        argv = ["taskset", "-c", "0", sys.executable, "-m", "statuspage"]
        argv += ["--web.listen-address", f"127.0.0.1:{page_port}", "--log.level", "warn"]
        status_page = Process(
            "statuspage", argv, workdir / "statuspage.log", f"{page}/-/ready", env=env
        )
        processes.append(status_page)
        status_page.start()
        status_page.wait_ready()
        rows = []
        for path in PATHS:
            for connections in CONNECTIONS:
                before, started = prometheus_queries(stack.url("prometheus")), time.monotonic()
                result = wrk(page + path, connections, args.duration)
                elapsed = time.monotonic() - started
                queries = prometheus_queries(stack.url("prometheus")) - before
                rows.append(
                    {"path": path, "connections": connections, **result,
                     "prometheus_queries_per_minute": round(queries / elapsed * 60, 1)}
                )  # fmt: skip
                print_row(rows[-1])
    finally:
        for process in reversed(processes):
            process.stop()
        stack.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"at": datetime.now(UTC).isoformat(), "services": SERVICES,
                    "incidents": INCIDENTS, "seconds_per_run": args.duration, "runs": rows},
                   indent=2)
    )  # fmt: skip
    print(f"\nwrote {args.output}")


def print_row(row: dict) -> None:
    if row["path"] == PATHS[0] and row["connections"] == CONNECTIONS[0]:
        print(f"{'path':<22} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'non-2xx':>8} {'Prometheus queries/min':>23}")  # fmt: skip
    print(
        f"{row['path']:<22} {row['connections']:>7} {row['requests_per_second']:>9.0f} "
        f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['non_2xx']:>8} "
        f"{row['prometheus_queries_per_minute']:>23}"
    )


if __name__ == "__main__":
    main()
