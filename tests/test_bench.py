"""The benchmarks `make bench` runs, in miniature: they start, measure and write their JSON."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=110,
    )


def test_exporter_benchmark_measures_checks_cpu_and_both_scrape_formats(tmp_path):
    output = tmp_path / "exporter_load.json"
    result = run_bench(
        "exporter_load.py",
        *("--services", "10", "--interval", "1", "--window", "2", "--output", str(output)),
    )
    assert result.returncode == 0, result.stderr
    assert "checks_per_s_achieved" in result.stdout
    assert "side by side at 10 checks/s" in result.stdout
    (row,) = json.loads(output.read_text())["exporter"]
    assert row["services"] == 10
    assert row["checks_per_s_achieved"] > 5
    assert row["failed_services"] == 0
    assert row["cpu_ms_per_check"] > 0
    assert row["blackbox_cpu_ms"] > 0
    assert row["blackbox_latency_error_p99_ms"] >= 0
    assert row["scrape_text_ms"] > 0
    assert row["scrape_openmetrics_ms"] > 0


def test_statuspage_benchmark_drives_both_endpoints(tmp_path):
    output = tmp_path / "statuspage_load.json"
    result = run_bench("statuspage_load.py", "--duration", "1", "--output", str(output))
    assert result.returncode == 0, result.stderr
    runs = json.loads(output.read_text())["runs"]
    assert {(run["path"], run["connections"]) for run in runs} == {
        (path, clients) for path in ("/", "/api/v2/summary.json") for clients in (1, 50, 500)
    }
    assert all(run["requests_per_second"] > 0 and run["non_2xx"] == 0 for run in runs)
