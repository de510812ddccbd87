"""Running the Prometheus tool binaries the Debian packages install."""

import shutil
import subprocess
from pathlib import Path


def run_tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(name)
    assert binary, f"{name} is missing: `make test` installs prometheus and prometheus-alertmanager"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
