"""Issue 13, "Done when" faults: real `python -m app serve` processes on one embedded
PostgreSQL, delivering to a real receiver on 127.0.0.1 (tests/webhook_receiver.py) that
verifies every request.

* kill -9 of the service during a burst of 500 deliveries, then a restart: every message
  arrives (none lost); a message that arrives twice does so with the same `webhook-id`.
* two service processes on one database, a receiver that always answers 200: each message
  is delivered exactly once (counted by `webhook-id`), and both processes delivered.

Every process is stopped, also on failure; every wait is bounded."""

import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.embedded import start_embedded
from app.core.migrations import upgrade
from tests.conftest import _in_thread
from tests.e2e.processes import Service, scratch_dir, service_env
from tests.webhook_receiver import Receiver, receiving

BURST = 500
SENDING_JOBS = ("webhook_fanout", "webhook_deliver")


@pytest.fixture
def database() -> Iterator[tuple[str, Path]]:
    """A migrated embedded PostgreSQL of the test's own (URL, scratch folder)."""
    with scratch_dir("cle-hooks-") as scratch:
        server, url = start_embedded(scratch / "data", cleanup="delete")
        try:
            _in_thread(lambda: upgrade(url))
            yield url, scratch
        finally:
            server.cleanup()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.close()


def _serve(url: str, scratch: Path, services: list[Service], name: str, **env: str) -> Service:
    settings = {
        "DATABASE_URL": url,
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_POLL_SECONDS": "0.1",
        "LOG_LEVEL": "INFO",
        **env,
    }
    service = Service(service_env(**settings), scratch / f"{name}.log")
    services.append(service)
    service.wait_ready()
    return service


def _endpoint(service: Service, token: str, receiver: Receiver) -> None:
    response = httpx.post(
        service.base + "/v1/webhook-endpoints",
        json={"url": receiver.url, "event_types": ["event.reported"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    receiver.secrets.append(response.json()["secret"])


def _intake(services: list[Service], token: str, count: int) -> list[str]:
    """`count` events taken in through the services in turn; their ids."""
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    clients = [httpx.Client(base_url=s.base, headers=headers, timeout=10) for s in services]
    try:
        for n in range(count):
            response = clients[n % len(clients)].post(
                "/v1/events",
                json={
                    "title": f"Burst {n}",
                    "description": "Webhook fault test",
                    "channel": "api",
                    "reporter": {"name": "Load", "email": "load@example.com"},
                },
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    finally:
        for client in clients:
            client.close()
    return ids


def _by_event(receiver: Receiver) -> dict[str, set[str]]:
    """event id -> the `webhook-id`s its messages arrived with."""
    seen: dict[str, set[str]] = collections.defaultdict(set)
    for got in list(receiver.received):
        seen[got.json["data"]["id"]].add(got.webhook_id)
    return seen


def _wait_all(receiver: Receiver, events: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while set(events) - set(_by_event(receiver)):
        missing = len(set(events) - set(_by_event(receiver)))
        assert time.monotonic() < deadline, f"{missing} of {len(events)} never arrived"
        time.sleep(0.2)


def _deliver_runs(service: Service) -> int:
    """How many runs of the webhook jobs that send (the fan-out sends what it can at once,
    the delivery what is queued) did something in this process."""
    runs = 0
    for line in service.log_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "job_ran" and entry.get("job") in SENDING_JOBS:
            runs += 1
    return runs


def test_kill_9_during_a_burst_then_restart_loses_nothing(
    database: tuple[str, Path], services: list[Service]
) -> None:
    url, scratch = database
    # A slow receiver and few requests at once, so the kill lands while deliveries are due.
    with receiving(delay=0.05) as receiver:
        first = _serve(url, scratch, services, "first", WEBHOOK_ENDPOINT_CONCURRENCY="4")
        token = first.token
        assert token is not None
        _endpoint(first, token, receiver)
        events = _intake([first], token, BURST)
        arrived = len(_by_event(receiver))
        assert arrived < BURST, "the burst was delivered before the kill: nothing tested"
        first.kill()
        at_kill = len(_by_event(receiver))

        _serve(url, scratch, services, "second")
        _wait_all(receiver, events)
        time.sleep(1)  # anything sent twice arrives now

    seen = _by_event(receiver)
    assert set(seen) == set(events)
    assert all(len(ids) == 1 for ids in seen.values()), "a message arrived under two ids"
    assert all(got.verified_by for got in receiver.received)
    assert 0 < at_kill < BURST
    bodies: dict[str, set[bytes]] = collections.defaultdict(set)
    for got in receiver.received:
        bodies[got.webhook_id].add(got.body)
    assert all(len(b) == 1 for b in bodies.values())


def test_two_services_on_one_database_deliver_each_message_exactly_once(
    database: tuple[str, Path], services: list[Service]
) -> None:
    url, scratch = database
    with receiving() as receiver:
        first = _serve(url, scratch, services, "first")
        token = first.token
        assert token is not None
        second = _serve(url, scratch, services, "second")
        _endpoint(first, token, receiver)
        events = _intake([first, second], token, 300)
        _wait_all(receiver, events)
        time.sleep(2)  # a duplicate would arrive now

    counts = collections.Counter(got.webhook_id for got in receiver.received)
    assert len(counts) == 300
    assert set(counts.values()) == {1}, [i for i, c in counts.items() if c > 1][:5]
    assert set(_by_event(receiver)) == set(events)
    assert all(got.verified_by for got in receiver.received)
    assert _deliver_runs(first) > 0
    assert _deliver_runs(second) > 0
