"""The README's run story, end to end: `python -m app serve` on a fresh data folder starts an
embedded PostgreSQL, migrates, prints a first admin key once and serves on a real uvicorn;
SIGTERM stops it and its PostgreSQL; a second start reuses the data."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import stdout_record

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env["APP_DATA_DIR"] = str(data_dir)
    return env


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"server exited: {self.lines}")
            self.lines.append(line.strip())
            if stdout_record(line)["event"] == "serving":
                break
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("server did not become ready")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_prints_first_admin_key_and_stops_cleanly(data_dir: Path) -> None:
    server = Server(data_dir)
    try:
        server.wait_ready()
        [written] = [
            stdout_record(line)
            for line in server.lines
            if stdout_record(line)["event"] == "first_admin_key_written"
        ]
        key_file = Path(written["path"])
        assert key_file.stat().st_mode & 0o777 == 0o600  # the key, for its owner's eyes only
        token = key_file.read_text().strip()
        assert all(token not in line for line in server.lines)  # never on a stream
        me = httpx.get(server.base + "/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert "admin" in me.json()["user"]["roles"]

        made = subprocess.run(
            [sys.executable, "-m", "app", "create-api-key", "--name", "x", "--role", "admin"],
            cwd=ROOT,
            env=_env(data_dir),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        new_token = made.stdout.strip()
        assert new_token.startswith("cle_")
        assert len(made.stdout.strip().splitlines()) == 1
        me2 = httpx.get(server.base + "/v1/me", headers={"Authorization": f"Bearer {new_token}"})
        assert me2.status_code == 200
        assert me2.json()["user"]["name"] == "x"
    finally:
        code = server.stop()
    assert code == 0
    assert not _postmaster_running(data_dir)

    again = Server(data_dir)
    try:
        again.wait_ready()
        assert all(
            stdout_record(line)["event"] != "first_admin_key_written" for line in again.lines
        )
        me = httpx.get(again.base + "/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
    finally:
        again.stop()
    assert not _postmaster_running(data_dir)


def test_seed_demo_loads_departments_users_and_events(data_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "seed-demo"],
        cwd=ROOT,
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    lines = result.stdout.splitlines()
    roles = {line.split("\t")[1] for line in lines[1:] if not line.startswith("event")}
    assert roles == {
        "admin",
        "intake_agent",
        "handler",
        "dept_head",
        "supervisor",
        "reporter",
        "integration",
    }
    assert sum(line.startswith("event\tEV-") for line in lines) == 5
    assert not _postmaster_running(data_dir)
