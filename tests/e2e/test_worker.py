"""`python -m app worker` as a real process (issue 12, item 1): on a data folder with no
DATABASE_URL it starts the embedded PostgreSQL as `serve` does, runs the background jobs (the
Idempotency-Key purge deletes an expired record at once), and SIGTERM stops it and its
PostgreSQL cleanly (exit code 0)."""

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa

from app.core.clock import utcnow
from app.core.db import make_engine
from app.core.embedded import start_embedded
from app.core.idempotency_models import IdempotencyRecord
from app.core.migrations import upgrade
from tests.conftest import _in_thread
from tests.e2e.processes import stdout_record

ROOT = Path(__file__).resolve().parents[2]
SCOPE = "e2e-worker"
PURGE = "purge_idempotency_keys"


def _postmaster(data_dir: Path) -> int | None:
    """The pid of the data folder's running PostgreSQL, if one runs."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _postmaster_running(data_dir: Path) -> bool:
    return _postmaster(data_dir) is not None


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder whose PostgreSQL is stopped after the test, even if the worker had to be
    killed before it could stop it."""
    folder = tmp_path / "data"
    yield folder
    pid = _postmaster(folder)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _postmaster(folder) is not None and time.monotonic() < deadline:
            time.sleep(0.2)


async def _records(url: str, *, add_expired: bool = False) -> list[str]:
    """The keys of the test's Idempotency-Key records (after adding an expired one)."""
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            if add_expired:
                await conn.execute(
                    sa.insert(IdempotencyRecord).values(
                        scope=SCOPE,
                        key="expired",
                        request_hash="0" * 64,
                        status_code=201,
                        headers={},
                        body=b"{}",
                        expires_at=utcnow() - timedelta(hours=1),
                    )
                )
            rows = await conn.execute(
                sa.select(IdempotencyRecord.key).where(IdempotencyRecord.scope == SCOPE)
            )
            return [r[0] for r in rows]
    finally:
        await engine.dispose()


def _on_embedded(data_dir: Path, *, add_expired: bool = False) -> list[str]:
    """Start the data folder's PostgreSQL in this process, migrate, read (and add), stop."""
    server, url = start_embedded(data_dir)
    found: list[str] = []
    try:
        _in_thread(lambda: upgrade(url))
        _in_thread(lambda: found.extend(asyncio.run(_records(url, add_expired=add_expired))))
    finally:
        server.cleanup()
    return found


def _pump(stream: IO[str], lines: "queue.Queue[str]") -> None:
    for line in stream:
        lines.put(line)


def _json(line: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def test_worker_runs_the_purge_and_stops_cleanly_on_sigterm(data_dir: Path) -> None:
    assert _on_embedded(data_dir, add_expired=True) == ["expired"]
    assert not _postmaster_running(data_dir)

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(APP_DATA_DIR=str(data_dir), RUNNER_POLL_SECONDS="0.5")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    assert process.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, out), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, err), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    seen: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 120
        while not any(e.get("event") == "job_ran" for e in seen):
            assert process.poll() is None, f"worker exited: {seen}"
            assert time.monotonic() < deadline, f"no purge: {seen}"
            try:
                line = err.get(timeout=1)
            except queue.Empty:
                continue
            if (entry := _json(line)) is not None:
                seen.append(entry)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    for pump in pumps:
        pump.join(timeout=10)
    process.stdout.close()
    process.stderr.close()
    while not err.empty():
        if (entry := _json(err.get())) is not None:
            seen.append(entry)

    assert code == 0
    assert any(stdout_record(line)["event"] == "worker_running" for line in list(out.queue))
    [started] = [e for e in seen if e.get("event") == "runner_started"]
    assert started["jobs"][0] == "purge_idempotency_keys"
    assert {"webhook_fanout", "webhook_deliver", "webhook_purge"} <= set(started["jobs"])
    assert started["poll_seconds"] == 0.5
    [ran] = [e for e in seen if e.get("event") == "job_ran" and e.get("job") == PURGE]
    assert ran["job"] == "purge_idempotency_keys"
    assert ran["items"] >= 1
    assert [e["event"] for e in seen if e.get("event") == "runner_stopped"] == ["runner_stopped"]
    assert not [e for e in seen if e.get("event") == "job_failed"]
    assert not _postmaster_running(data_dir)
    assert _on_embedded(data_dir) == []
