"""A PostgreSQL cluster of our own on loopback: throwaway for tests, persistent for `make run`.

`initdb` refuses to run as root, so as root every server command runs as the `postgres` OS
user (created by Debian's package) and the data directory is handed to it.
"""

import contextlib
import glob
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "statuspage"
SHARED_HOME = Path("/var/lib/sefaria-status")
"""Where root keeps clusters whose own directory the postgres user cannot reach."""


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: run `make test`, or apt-get install postgresql"
        )
    return on_path


def _version(path: str) -> int:
    part = Path(path).parts[4]
    return int(part) if part.isdigit() else 0


def reachable_datadir(wanted: Path, shared_home: Path = SHARED_HOME) -> Path:
    """Where to keep the persistent cluster meant for `wanted`: `wanted`, unless PostgreSQL
    could not reach it.

    As root, PostgreSQL runs as the postgres user, which cannot pass a 0700 directory on the way
    to a checkout under /root or a `mktemp -d`. The cluster then lives in `shared_home` (0755),
    in a directory named after `wanted`'s path, and `wanted` becomes a symbolic link to it: the
    next run, and anyone looking in `.local/`, find the data through it.
    """
    if wanted.is_symlink():
        return wanted.resolve()
    if os.geteuid() != 0 or _postgres_can_reach(wanted.parent):
        return wanted
    if wanted.exists():
        if any(wanted.iterdir()):
            raise RuntimeError(
                f"{wanted} holds data the postgres user cannot reach: move it away, or make "
                "its parent directories readable by others (chmod o+x)"
            )
        wanted.rmdir()  # left empty by a run that failed here before
    target = shared_home / hashlib.sha256(str(wanted).encode()).hexdigest()[:16] / wanted.name
    target.parent.mkdir(parents=True, exist_ok=True)
    for directory in (shared_home, target.parent):
        directory.chmod(0o755)
    wanted.symlink_to(target, target_is_directory=True)
    return target


def _postgres_can_reach(directory: Path) -> bool:
    check = ["runuser", "-u", "postgres", "--", "test", "-x", str(directory)]
    return subprocess.run(check, cwd="/", capture_output=True, check=False).returncode == 0


def _reason(output: str) -> str:
    """The line of a failed command's output (or server log) that says why."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("FATAL", "error", "could not"):
        found = next((line for line in lines if marker in line), None)
        if found is not None:
            return found
    return lines[-1] if lines else "no output"


@dataclass
class PostgresCluster:
    datadir: Path
    port: int
    durable: bool = True
    """False for tests: no fsync (a crash loses data, a test run does not care)."""
    password: str | None = field(default=None, repr=False)
    """The superuser's password, required over TCP when set; None trusts every connection."""
    server_settings: dict[str, str] = field(default_factory=dict)
    """Extra `postgres -c name=value` settings (e.g. shared_preload_libraries)."""

    @property
    def log_path(self) -> Path:
        return self.datadir.with_name(self.datadir.name + ".log")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """initdb if the directory is new, then start and wait until it accepts connections."""
        if not (self.datadir / "PG_VERSION").exists():
            self.datadir.mkdir(parents=True, exist_ok=True)
            self._hand_over(self.datadir)
            with self._auth_options() as auth:
                self._run(
                    postgres_bin("initdb"),
                    "--pgdata",
                    str(self.datadir),
                    "--username",
                    SUPERUSER,
                    *auth,
                    "--encoding",
                    "UTF8",
                    "--no-instructions",
                    *([] if self.durable else ["--no-sync"]),
                )
        self.log_path.touch()
        self._hand_over(self.log_path)
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.datadir}",
            *([] if self.durable else ["-c fsync=off", "-c synchronous_commit=off"]),
            *(f"-c {name}={value}" for name, value in self.server_settings.items()),
        ]
        self._run(
            postgres_bin("pg_ctl"),
            "start",
            "--pgdata",
            str(self.datadir),
            "--log",
            str(self.log_path),
            "--wait",
            "--timeout",
            "30",
            "-o",
            " ".join(options),
        )

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, committed data is kept."""
        if not (self.datadir / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(postgres_bin("pg_ctl"), "stop", "--pgdata", str(self.datadir), "-m", "fast")

    def create_database(self, name: str) -> str:
        self._run(
            postgres_bin("createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            name,
        )
        return self.url(name)

    @contextlib.contextmanager
    def _auth_options(self) -> Iterator[list[str]]:
        """initdb's options; a password goes through a file that exists only while initdb runs."""
        if self.password is None:
            yield ["--auth", "trust"]
            return
        password_file = self.datadir.with_name(self.datadir.name + ".password")
        password_file.write_text(self.password)
        self._hand_over(password_file)
        try:
            yield ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}"]
        finally:
            password_file.unlink()

    def _hand_over(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        started = time.monotonic()
        result = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, cwd="/", check=False
        )
        if result.returncode != 0:
            log = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
            output = f"{result.stdout}{result.stderr}"
            raise RuntimeError(
                f"{Path(argv[0]).name} failed after {time.monotonic() - started:.1f}s: "
                f"{_reason(output + log)} (log: {self.log_path})\n{output}{log}"
            )
