"""Signed webhooks from the outbox (issue 13, items 1-5 and 7) through real HTTP into the app
and a real receiver on 127.0.0.1 (tests/webhook_receiver.py) that verifies every request with
`standardwebhooks.Webhook(secret).verify`.

The runner's pieces are run by the test, in the test's rolled-back transaction, with an
injected clock: `drain` fans out and delivers until nothing is due at that time."""

import itertools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.outbox.models import OutboxMessage
from app.rules.views import EventView
from app.rules.vocabulary import Role, Status
from app.runner.job import Piece
from app.webhooks.config import WebhookSettings, get_webhook_settings
from app.webhooks.delivery import DIRECT_SLOW_MS, SLOW_FOR, Deliverer, dispatch_row
from app.webhooks.models import WebhookDelivery, WebhookDispatch
from app.webhooks.repository import PARKED, relax_commit, uuid7_floor
from tests.api import flow
from tests.api.flow import BUSINESS_ISSUE, MakeActor, call, refused
from tests.conftest import Actor, intake_body
from tests.webhook_receiver import Received, Receiver, receiving

JSON = dict[str, Any]
HOOKS = "/v1/webhook-endpoints"


@pytest.fixture
def settings() -> WebhookSettings:
    return WebhookSettings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_TIMEOUT_SECONDS=5)


@pytest.fixture(autouse=True)
def _webhook_settings(app: FastAPI, settings: WebhookSettings) -> None:
    app.dependency_overrides[get_webhook_settings] = lambda: settings


@pytest.fixture
async def deliverer(settings: WebhookSettings) -> AsyncIterator[Deliverer]:
    deliverer = Deliverer(settings, jitter=lambda _low, _high: 1.0)
    yield deliverer
    await deliverer.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


async def _piece(maker: async_sessionmaker[AsyncSession], work: Any, now: datetime) -> int:
    async with maker() as session, session.begin():
        done: int = await work(Piece(session=session, now=now, holder="test"))
        return done


async def drain(
    maker: async_sessionmaker[AsyncSession], deliverer: Deliverer, now: datetime | None = None
) -> None:
    """Fan out and deliver until nothing is left that is due at `now`."""
    now = now or utcnow()
    for _ in range(500):
        fanned = await _piece(maker, deliverer.fanout, now)
        sent = await _piece(maker, deliverer.deliver, now)
        if not fanned and not sent:
            return
    raise AssertionError("delivery did not settle")


async def register(
    client: httpx.AsyncClient, actor: Actor, receiver: Receiver, **fields: Any
) -> JSON:
    """A new endpoint for `receiver`, whose secret the receiver learns."""
    created = await call(
        client, "POST", HOOKS, actor, json={"url": receiver.url, **fields}, expect=201
    )
    receiver.secrets.append(created["secret"])
    return created


async def outbox_of(
    maker: async_sessionmaker[AsyncSession], event_id: str
) -> list[tuple[str, str]]:
    """(id, type) of the event's outbox messages in the order they were written."""
    async with maker() as session:
        rows = await session.execute(
            sa.select(OutboxMessage.id, OutboxMessage.type)
            .where(OutboxMessage.event_id == uuid.UUID(event_id))
            .order_by(OutboxMessage.id)
        )
        return [(str(r.id), r.type) for r in rows]


def about(received: list[Received], event_id: str) -> list[Received]:
    return [r for r in received if r.json["data"].get("id") == event_id]


# ---- endpoints (item 1) -----------------------------------------------------------------------


async def test_an_admin_registers_reads_changes_and_deletes_an_endpoint(
    client: httpx.AsyncClient, admin: Actor, receiver: Receiver
) -> None:
    """Item 1: the secret is shown once (`whsec_`), never again; PATCH and DELETE work."""
    response = await client.post(
        HOOKS,
        json={"url": receiver.url, "description": "CRM", "event_types": ["event.closed"]},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert response.headers["Location"] == f"{HOOKS}/{created['id']}"
    assert (created["enabled"], created["event_types"], created["owner_id"]) == (
        True,
        ["event.closed"],
        str(admin.id),
    )
    one = await call(client, "GET", f"{HOOKS}/{created['id']}", admin)
    assert "secret" not in one
    listed = await call(client, "GET", HOOKS, admin)
    assert created["id"] in [e["id"] for e in listed["items"]]
    assert all("secret" not in e for e in listed["items"])

    changed = await call(
        client,
        "PATCH",
        f"{HOOKS}/{created['id']}",
        admin,
        json={"event_types": None, "departments": ["IT"], "enabled": False},
    )
    assert (changed["event_types"], changed["departments"], changed["enabled"]) == (
        None,
        ["IT"],
        False,
    )
    assert changed["disabled_reason"]
    again = await call(client, "PATCH", f"{HOOKS}/{created['id']}", admin, json={"enabled": True})
    assert (again["enabled"], again["disabled_reason"]) == (True, None)

    response = await client.delete(f"{HOOKS}/{created['id']}", headers=admin.headers)
    assert response.status_code == 204
    await refused(client, "GET", f"{HOOKS}/{created['id']}", admin, status=404)


async def test_only_admins_and_integrations_manage_endpoints_each_integration_its_own(
    client: httpx.AsyncClient, admin: Actor, desk: Actor, make_actor: MakeActor, receiver: Receiver
) -> None:
    """Item 1: admins manage every endpoint; an integration its own; others get 403."""
    crm = await make_actor(Role.INTEGRATION, name="CRM")
    helpdesk = await make_actor(Role.INTEGRATION, name="Helpdesk")
    own = await register(client, crm, receiver)
    await refused(client, "POST", HOOKS, desk, json={"url": receiver.url}, status=403)
    await refused(client, "GET", HOOKS, desk, status=403)
    await refused(client, "GET", f"{HOOKS}/{own['id']}", helpdesk, status=404)
    await refused(client, "DELETE", f"{HOOKS}/{own['id']}", helpdesk, status=404)
    assert (await call(client, "GET", HOOKS, helpdesk))["items"] == []
    assert [e["id"] for e in (await call(client, "GET", HOOKS, crm))["items"]] == [own["id"]]
    assert own["id"] in [e["id"] for e in (await call(client, "GET", HOOKS, admin))["items"]]
    await call(client, "GET", f"{HOOKS}/{own['id']}", admin)


async def test_endpoint_requests_are_checked(
    client: httpx.AsyncClient, admin: Actor, receiver: Receiver
) -> None:
    for body in (
        {"url": receiver.url, "event_types": ["event.nope"]},
        {"url": receiver.url, "departments": ["NOPE"]},
        {"url": "ftp://example.com/x"},
        {"url": receiver.url, "secret": "whsec_mine"},
    ):
        problem = await refused(client, "POST", HOOKS, admin, json=body, status=422)
        assert problem["type"].endswith("/validation-error"), problem


async def test_endpoints_and_the_delivery_log_page_newest_first(
    client: httpx.AsyncClient,
    admin: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Items 1 and 4 with issue 11 item 3 (one keyset helper in app/core/pagination.py):
    endpoints and an endpoint's attempts come newest first, `limit` at a time; each
    `next_cursor` leads on to the rest without repeating one, the last page has none."""
    older, newer = [await register(client, admin, receiver) for _ in range(2)]
    first = await call(client, "GET", f"{HOOKS}?limit=1", admin)
    assert [e["id"] for e in first["items"]] == [newer["id"]]
    rest = await call(client, "GET", f"{HOOKS}?limit=1&cursor={first['next_cursor']}", admin)
    assert [e["id"] for e in rest["items"]] == [older["id"]]
    assert rest["next_cursor"] is None

    test = f"{HOOKS}/{older['id']}/test"
    sent = [(await call(client, "POST", test, admin, expect=202))["message_ids"][0]]
    await drain(session_maker, deliverer)
    for _ in range(2):
        sent.append((await call(client, "POST", test, admin, expect=202))["message_ids"][0])
        await drain(session_maker, deliverer)
    log = f"{HOOKS}/{older['id']}/deliveries?limit=2"
    page = await call(client, "GET", log, admin)
    last = await call(client, "GET", f"{log}&cursor={page['next_cursor']}", admin)
    assert [d["message_id"] for d in page["items"] + last["items"]] == sent[::-1]
    assert last["next_cursor"] is None


# ---- delivery (item 2) --------------------------------------------------------------------------


async def test_an_event_walked_to_closed_arrives_as_every_message_in_order_signed(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    admin: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 2: every lifecycle message of an event arrives once, in the order written, signed
    (Standard Webhooks), `webhook-id` = the outbox message id, `{type, timestamp, data}` with
    the event's summary, version and link."""
    await register(client, admin, receiver)
    cast = await flow.make_cast(make_actor, BUSINESS_ISSUE.lead)
    event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.CLOSED)
    written = await outbox_of(session_maker, event["id"])
    assert [t for _i, t in written][:3] == ["event.reported", "event.classified", "event.assigned"]
    assert written[-1][1] == "event.closed"

    await drain(session_maker, deliverer)

    got = about(receiver.received, event["id"])
    assert [(r.webhook_id, r.type) for r in got] == written
    assert all(r.verified_by == tuple(receiver.secrets) for r in got)
    versions = [r.json["data"]["version"] for r in got]
    assert versions == sorted(versions)
    assert versions[0] == 1
    assert versions[-1] == event["version"]
    last = got[-1].json
    assert set(last) == {"type", "timestamp", "data"}
    assert last["data"]["ref"] == event["ref"]
    assert last["data"]["status"] == "closed"
    assert last["data"]["links"]["self"] == f"/v1/events/{event['id']}"
    assert all(len(r.body) < 20_000 for r in got)
    deliveries = await call(
        client,
        "GET",
        f"{HOOKS}/{(await _only_endpoint(client, admin))}/deliveries?limit=200",
        admin,
    )
    assert {d["message_id"] for d in deliveries["items"]} >= {i for i, _t in written}
    assert {d["outcome"] for d in deliveries["items"]} == {"delivered"}


async def _only_endpoint(client: httpx.AsyncClient, admin: Actor) -> str:
    items = (await call(client, "GET", HOOKS, admin))["items"]
    endpoint_id: str = items[0]["id"]
    return endpoint_id


def _failing_first(times: int, status: int = 500, headers: dict[str, str] | None = None) -> Any:
    """An answer: `status` to the first `times` requests of each `webhook-id`, then 200."""
    seen: dict[str, int] = {}

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        seen[request.webhook_id] = seen.get(request.webhook_id, 0) + 1
        if seen[request.webhook_id] <= times:
            return status, headers or {}, b'{"error": "try later"}'
        return 200, {}, b"thanks"

    return answer


async def test_a_500_then_200_delivers_twice_with_one_webhook_id(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """Item 2: a failure is retried 5 s later with the same `webhook-id` (and signature
    headers made afresh); the log shows each attempt with status, error, next retry and the
    first 1 kB of the response."""
    with receiving(answer=_failing_first(1)) as receiver:
        endpoint = await register(client, admin, receiver)
        event = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        now = utcnow()
        await drain(session_maker, deliverer, now)
        assert len(receiver.received) == 1
        await drain(session_maker, deliverer, now + timedelta(seconds=4))
        assert len(receiver.received) == 1  # not due before 5 s
        await drain(session_maker, deliverer, now + timedelta(seconds=6))
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id
    assert first.json["data"]["id"] == event["id"]
    assert first.body == second.body
    assert first.verified_by
    assert second.verified_by
    log = await call(client, "GET", f"{HOOKS}/{endpoint['id']}/deliveries", admin)
    retried, delivered = reversed(log["items"])
    assert (retried["attempt"], retried["outcome"], retried["status_code"]) == (1, "retrying", 500)
    assert retried["error"] == "HTTP 500"
    assert retried["response_excerpt"] == '{"error": "try later"}'
    assert datetime.fromisoformat(retried["next_attempt_at"]) == now + timedelta(seconds=5)
    assert retried["message_id"] == first.webhook_id
    assert (delivered["attempt"], delivered["outcome"], delivered["status_code"]) == (
        2,
        "delivered",
        200,
    )
    assert delivered["next_attempt_at"] is None
    assert delivered["response_excerpt"] == "thanks"


async def test_later_messages_of_an_event_wait_while_an_earlier_one_is_retried(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """Item 2's order: `event.classified` waits while `event.reported` of the same event is
    being retried; another event's messages go meanwhile, in their own order."""
    with receiving() as receiver:
        await register(client, admin, receiver)
        blocked = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        free = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        receiver.answer = _fails_once(blocked["id"], receiver)
        for event in (blocked, free):
            await call(
                client,
                "POST",
                f"/v1/events/{event['id']}/classification",
                desk,
                json=flow.classification(BUSINESS_ISSUE),
            )
        now = utcnow()
        await drain(session_maker, deliverer, now)
        assert [r.type for r in about(receiver.received, blocked["id"])] == ["event.reported"]
        assert [r.type for r in about(receiver.received, free["id"])] == [
            "event.reported",
            "event.classified",
        ]
        await drain(session_maker, deliverer, now + timedelta(seconds=6))
    assert [r.type for r in about(receiver.received, blocked["id"])] == [
        "event.reported",
        "event.reported",
        "event.classified",
    ]


async def test_the_fanout_sends_at_once_only_what_waits_behind_nothing(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """The fan-out sends a message at once (no dispatch row) when nothing about its event
    waits for its endpoint and the endpoint answers; a message written while an earlier one
    of its event is being retried is queued behind it (item 2's order), and so is every
    message to an endpoint that is failing, until it answers again."""
    with receiving() as receiver:
        endpoint = await register(client, admin, receiver)
        endpoint_id = uuid.UUID(endpoint["id"])

        async def fanout(now: datetime) -> tuple[int, int]:
            """The fan-out at `now`: (requests received, rows queued) after it."""
            await _piece(session_maker, deliverer.fanout, now)
            queued = await _rows(session_maker, WebhookDispatch, endpoint_id=endpoint_id)
            return len(receiver.received), queued

        retried = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        receiver.answer = _fails_once(retried["id"], receiver)
        now = utcnow()
        # Both sent by the fan-out itself; one failed and waits for its retry, the other was
        # answered, so the endpoint is not failing.
        assert await fanout(now) == (2, 1)
        # Written while `event.reported` waits for its retry: queued behind it, not sent.
        await call(
            client,
            "POST",
            f"/v1/events/{retried['id']}/classification",
            desk,
            json=flow.classification(BUSINESS_ISSUE),
        )
        assert await fanout(now) == (2, 2)
        await drain(session_maker, deliverer, now + timedelta(seconds=6))
        assert [r.type for r in about(receiver.received, retried["id"])] == [
            "event.reported",
            "event.reported",
            "event.classified",
        ]
        # Every attempt fails: the endpoint is failing, and the next message is queued.
        receiver.answer = lambda _r: (500, {}, b"")
        for expected in ((5, 1), (5, 2)):
            await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
            assert await fanout(now + timedelta(seconds=7)) == expected
        # It answers again: once a queued message is delivered, the next goes at once.
        receiver.answer = lambda _r: (200, {}, b"")
        await drain(session_maker, deliverer, now + timedelta(seconds=20))
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        assert await fanout(now + timedelta(seconds=21)) == (8, 0)


def _one_lane() -> Deliverer:
    """A deliverer that sends one request at a time to an endpoint."""
    return Deliverer(
        WebhookSettings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_ENDPOINT_CONCURRENCY=1),
        jitter=lambda _low, _high: 1.0,
    )


async def test_a_slow_endpoint_is_sent_to_through_the_queue_for_a_while(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """The fan-out holds the fan-out lock while it sends: once an endpoint took longer than
    `DIRECT_SLOW_MS` to answer, the fan-out queues its messages not yet sent in that piece
    (a hanging endpoint holds it for one timeout at most), and all of its messages for
    `SLOW_FOR`, for the delivery to send from dispatch rows; then it tries again."""
    deliverer = _one_lane()
    with receiving(delay=DIRECT_SLOW_MS / 1000 + 0.1) as receiver:
        endpoint = await register(client, admin, receiver)
        endpoint_id = uuid.UUID(endpoint["id"])

        async def fanout(now: datetime, intakes: int = 1) -> tuple[int, int]:
            """`intakes` events taken in, then the fan-out at `now`: (requests received,
            rows queued) after it."""
            for _ in range(intakes):
                await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
            await _piece(session_maker, deliverer.fanout, now)
            queued = await _rows(session_maker, WebhookDispatch, endpoint_id=endpoint_id)
            return len(receiver.received), queued

        try:
            now = utcnow()
            assert await fanout(now, intakes=2) == (1, 1)  # slow: the second is queued
            receiver.delay = 0
            assert await fanout(now) == (1, 2)  # queued, however fast it is now
            await drain(session_maker, deliverer, now)
            assert len(receiver.received) == 3
            assert await fanout(now + SLOW_FOR - timedelta(seconds=1)) == (3, 1)
            await drain(session_maker, deliverer, now + SLOW_FOR - timedelta(seconds=1))
            assert await fanout(now + SLOW_FOR + timedelta(seconds=1)) == (5, 0)  # at once
        finally:
            await deliverer.close()
    log = await call(client, "GET", f"{HOOKS}/{endpoint['id']}/deliveries", admin)
    assert [item["outcome"] for item in log["items"]] == ["delivered"] * 5


async def test_after_a_failed_attempt_the_fanout_queues_the_rest_for_that_endpoint_only(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """In the piece where an attempt to an endpoint fails, the fan-out sends it nothing
    more: the rest of its messages are queued (due at once, for the delivery); another
    endpoint gets every message from the fan-out itself."""
    deliverer = _one_lane()
    with receiving(answer=lambda _r: (500, {}, b"")) as failing, receiving() as answering:
        bad = await register(client, admin, failing)
        good = await register(client, admin, answering)
        for _ in range(3):
            await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        try:
            assert await _piece(session_maker, deliverer.fanout, utcnow()) == 3
        finally:
            await deliverer.close()
        assert (len(failing.received), len(answering.received)) == (1, 3)
    for endpoint, queued in ((bad, 3), (good, 0)):  # one retry and two never sent
        rows = await _rows(session_maker, WebhookDispatch, endpoint_id=uuid.UUID(endpoint["id"]))
        assert rows == queued
    async with session_maker() as session:
        attempts = (await session.scalars(sa.select(WebhookDispatch.attempts))).all()
    assert sorted(attempts) == [0, 0, 1]


async def test_requests_to_an_endpoint_share_its_slots_whichever_job_sends(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """At most `WEBHOOK_ENDPOINT_CONCURRENCY` requests of a process are in flight to one
    endpoint, whether the fan-out or the delivery sends them: with one of two slots taken
    (as by the delivery's request), the fan-out sends one at a time; with both free, two."""
    deliverer = Deliverer(
        WebhookSettings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_ENDPOINT_CONCURRENCY=2)
    )
    with receiving(delay=0.2) as receiver:
        endpoint = await register(client, admin, receiver)
        try:
            for slots_taken, most in ((1, 1), (0, 2)):
                for _ in range(3):
                    await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
                receiver.most_in_flight = 0
                taken = deliverer.limit(uuid.UUID(endpoint["id"]))
                for _ in range(slots_taken):
                    await taken.acquire()
                assert await _piece(session_maker, deliverer.fanout, utcnow()) == 3
                for _ in range(slots_taken):
                    taken.release()
                assert receiver.most_in_flight == most
        finally:
            await deliverer.close()
    assert len(receiver.received) == 6


def _fails_once(event_id: str, receiver: Receiver) -> Any:
    """503 to the first request about `event_id`, 204 to everything else."""

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        earlier = about(receiver.received, event_id)
        if earlier and earlier[0] is request:
            return 503, {}, b""
        return 204, {}, b""

    return answer


async def test_410_gone_disables_the_endpoint_and_tells_admins(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 2: a 410 disables the endpoint at once (nothing more is sent to it) and an
    `endpoint.disabled` message goes to the admins' endpoints."""
    watcher = await register(client, admin, receiver, event_types=["endpoint.disabled"])
    with receiving(answer=lambda _r: (410, {}, b"gone")) as gone_receiver:
        gone = await register(client, admin, gone_receiver)
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        now = utcnow()
        await drain(session_maker, deliverer, now)
        assert len(gone_receiver.received) == 1
        endpoint = await call(client, "GET", f"{HOOKS}/{gone['id']}", admin)
        assert endpoint["enabled"] is False
        assert "410" in endpoint["disabled_reason"]
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        await drain(session_maker, deliverer, now + timedelta(hours=1))
        assert len(gone_receiver.received) == 1
    [told] = receiver.received
    assert told.type == "endpoint.disabled"
    assert told.json["data"]["endpoint_id"] == gone["id"]
    assert told.verified_by
    log = await call(client, "GET", f"{HOOKS}/{gone['id']}/deliveries", admin)
    [attempt] = log["items"]
    assert (attempt["status_code"], attempt["outcome"], attempt["next_attempt_at"]) == (
        410,
        "failed",
        None,
    )
    await refused(client, "POST", f"{HOOKS}/{gone['id']}/test", admin, status=409)
    assert watcher["enabled"]


async def test_an_endpoint_failing_for_five_days_is_disabled_and_a_success_clears_it(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 2: `failing_since` is set by the first failure and cleared by a success; a failure
    five days after it disables the endpoint with an `endpoint.disabled` message."""
    await register(client, admin, receiver, event_types=["endpoint.disabled"])
    answers = iter([500, 200, 500, 500])
    with receiving(answer=lambda _r: (next(answers), {}, b"")) as flaky_receiver:
        flaky = await register(client, admin, flaky_receiver)
        url = f"{HOOKS}/{flaky['id']}"
        now = utcnow()
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        await drain(session_maker, deliverer, now)
        assert (await call(client, "GET", url, admin))["failing_since"] is not None
        await drain(session_maker, deliverer, now + timedelta(seconds=6))
        assert (await call(client, "GET", url, admin))["failing_since"] is None
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        await drain(session_maker, deliverer, now + timedelta(minutes=1))
        endpoint = await call(client, "GET", url, admin)
        assert endpoint["enabled"] is True
        assert endpoint["failing_since"] is not None
        later = datetime.fromisoformat(endpoint["failing_since"]) + timedelta(days=5, seconds=1)
        await drain(session_maker, deliverer, later)
    endpoint = await call(client, "GET", url, admin)
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"] == "every attempt failed for 5 days"
    assert [r.type for r in receiver.received] == ["endpoint.disabled"]
    assert receiver.received[0].json["data"]["reason"] == "every attempt failed for 5 days"


async def test_a_message_is_given_up_after_ten_attempts_on_the_schedule_then_the_next_goes(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """Item 2: attempts at 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; after the
    tenth failure the message is given up on and the event's next message is sent."""
    with receiving() as receiver:
        await register(client, admin, receiver)
        event = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        receiver.answer = lambda r: (500 if r.type == "event.reported" else 200, {}, b"")
        await call(
            client,
            "POST",
            f"/v1/events/{event['id']}/classification",
            desk,
            json=flow.classification(BUSINESS_ISSUE),
        )
        at = utcnow()
        gaps = [timedelta(0), *(schedule_delays())]
        for gap in gaps:
            at += gap
            await drain(session_maker, deliverer, at)
        types = [r.type for r in receiver.received]
    assert types == ["event.reported"] * 10 + ["event.classified"]
    endpoint_id = await _only_endpoint(client, admin)
    log = (await call(client, "GET", f"{HOOKS}/{endpoint_id}/deliveries?limit=20", admin))["items"]
    reported = sorted(
        (d for d in log if d["message_type"] == "event.reported"), key=lambda d: d["attempt"]
    )
    assert [d["attempt"] for d in reported] == list(range(1, 11))
    assert [d["outcome"] for d in reported] == ["retrying"] * 9 + ["failed"]
    spacing = [
        datetime.fromisoformat(b["attempted_at"]) - datetime.fromisoformat(a["attempted_at"])
        for a, b in itertools.pairwise(reported)
    ]
    assert spacing == list(schedule_delays())


def schedule_delays() -> tuple[timedelta, ...]:
    from app.webhooks.schedule import RETRY_DELAYS

    return RETRY_DELAYS


async def test_retry_after_on_429_is_honoured(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """Item 2: a 429 with `Retry-After: 120` waits two minutes, not the schedule's 5 s."""
    with receiving(answer=_failing_first(1, status=429, headers={"Retry-After": "120"})) as rec:
        endpoint = await register(client, admin, rec)
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        now = utcnow()
        await drain(session_maker, deliverer, now)
        await drain(session_maker, deliverer, now + timedelta(seconds=60))
        assert len(rec.received) == 1
        await drain(session_maker, deliverer, now + timedelta(seconds=121))
        assert len(rec.received) == 2
    log = await call(client, "GET", f"{HOOKS}/{endpoint['id']}/deliveries", admin)
    first = log["items"][-1]
    assert datetime.fromisoformat(first["next_attempt_at"]) == now + timedelta(seconds=120)


async def test_redirects_are_never_followed_and_a_timeout_is_a_failure(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    settings: WebhookSettings,
) -> None:
    """Items 2 and 5: a 302 is a failure (its `Location` is not visited); so is no answer
    within the timeout."""
    slow = Deliverer(
        settings.model_copy(update={"timeout_seconds": 0.3}), jitter=lambda _a, _b: 1.0
    )
    with receiving() as target, receiving() as sleepy:
        sleepy.answer = _late
        with receiving(answer=lambda _r: (302, {"Location": target.url}, b"")) as redirecting:
            moved = await register(client, admin, redirecting)
            late = await register(client, admin, sleepy)
            await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
            try:
                await drain(session_maker, slow)
            finally:
                await slow.close()
    assert len(redirecting.received) == 1
    assert target.received == []
    [redirect] = (await call(client, "GET", f"{HOOKS}/{moved['id']}/deliveries", admin))["items"]
    assert (redirect["status_code"], redirect["outcome"]) == (302, "retrying")
    assert "redirects are not followed" in redirect["error"]
    [timeout] = (await call(client, "GET", f"{HOOKS}/{late['id']}/deliveries", admin))["items"]
    assert (timeout["status_code"], timeout["outcome"]) == (None, "retrying")
    assert timeout["error"] == "no answer within 0.3 s"


def _late(_request: Received) -> tuple[int, dict[str, str], bytes]:
    """An answer after 0.6 s (the receiver's thread sleeps)."""
    time.sleep(0.6)
    return 200, {}, b""


async def test_rotation_signs_with_both_secrets_for_24_hours(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 1: after `rotate-secret` every message carries two `v1,` signatures, one per
    secret, and each secret verifies it; after 24 hours only the new one signs."""
    endpoint = await register(client, admin, receiver)
    old = receiver.secrets[0]
    rotated = await call(client, "POST", f"{HOOKS}/{endpoint['id']}/rotate-secret", admin)
    new = rotated["secret"]
    assert new.startswith("whsec_")
    assert new != old
    receiver.secrets.append(new)
    now = utcnow()
    await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    await drain(session_maker, deliverer, now)
    await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    await drain(session_maker, deliverer, now + timedelta(hours=25))
    during, after = receiver.received
    assert len(during.signature.split(" ")) == 2
    assert all(s.startswith("v1,") for s in during.signature.split(" "))
    assert set(during.verified_by) == {old, new}
    assert after.verified_by == (new,)
    assert len(after.signature.split(" ")) == 1


async def test_replay_sends_a_time_range_again_and_resend_one_delivery(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 4: replay {since, until} queues again every message written in the range (with
    their `webhook-id`s), and only those; resend sends the message of one attempt again."""
    endpoint = await register(client, admin, receiver)
    early = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    since = utcnow()
    inside = [
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        for _ in range(3)
    ]
    until = utcnow()
    await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    await drain(session_maker, deliverer)
    assert len(receiver.received) == 5
    first_ids = {r.json["data"]["id"]: r.webhook_id for r in receiver.received}

    queued = await call(
        client,
        "POST",
        f"{HOOKS}/{endpoint['id']}/replay",
        admin,
        json={"since": since.isoformat(), "until": until.isoformat()},
        expect=202,
    )
    assert queued["queued"] == 3
    await drain(session_maker, deliverer)
    replayed = receiver.received[5:]
    assert sorted(r.json["data"]["id"] for r in replayed) == sorted(e["id"] for e in inside)
    assert all(first_ids[r.json["data"]["id"]] == r.webhook_id for r in replayed)
    assert all(r.verified_by for r in replayed)

    log = await call(client, "GET", f"{HOOKS}/{endpoint['id']}/deliveries?limit=50", admin)
    [of_early] = [d for d in log["items"] if d["message_id"] == first_ids[early["id"]]]
    resent = await call(
        client,
        "POST",
        f"{HOOKS}/{endpoint['id']}/deliveries/{of_early['id']}/resend",
        admin,
        expect=202,
    )
    assert resent == {"queued": 1, "message_ids": [first_ids[early["id"]]]}
    await drain(session_maker, deliverer)
    assert receiver.received[-1].webhook_id == first_ids[early["id"]]
    assert len(receiver.received) == 9
    await refused(
        client,
        "POST",
        f"{HOOKS}/{endpoint['id']}/replay",
        admin,
        json={"since": until.isoformat(), "until": since.isoformat()},
        status=422,
    )
    await refused(
        client,
        "POST",
        f"{HOOKS}/{endpoint['id']}/deliveries/{uuid.uuid4()}/resend",
        admin,
        status=404,
    )


async def test_a_test_message_goes_to_its_endpoint_only(
    client: httpx.AsyncClient,
    admin: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 1: `POST .../test` sends a signed `webhook.test` to that endpoint alone."""
    endpoint = await register(client, admin, receiver)
    with receiving() as other:
        await register(client, admin, other)
        queued = await call(client, "POST", f"{HOOKS}/{endpoint['id']}/test", admin, expect=202)
        await drain(session_maker, deliverer)
    [got] = receiver.received
    assert got.type == "webhook.test"
    assert got.webhook_id == queued["message_ids"][0]
    assert got.verified_by
    assert other.received == []


async def test_an_integrations_endpoint_receives_only_what_it_may_see_in_its_view(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """Item 1: an integration's endpoint gets messages about the events it may see (those it
    pushed in), never another department's, and in the reporter view (no severity, no
    routing, no assignee: app/rules/views.py); an admin's endpoint gets everything."""
    crm = await make_actor(Role.INTEGRATION, department="SALES", name="CRM")
    with receiving() as crm_receiver, receiving() as admin_receiver:
        await register(client, crm, crm_receiver)
        await register(client, admin, admin_receiver)
        mine = await call(client, "POST", "/v1/events", crm, json=intake_body(), expect=201)
        hr = await make_actor(Role.REPORTER, department="HR")
        theirs = await call(client, "POST", "/v1/events", hr, json=intake_body(), expect=201)
        for event in (mine, theirs):
            await call(
                client,
                "POST",
                f"/v1/events/{event['id']}/classification",
                desk,
                json=flow.classification(BUSINESS_ISSUE),
            )
            await call(client, "POST", f"/v1/events/{event['id']}/assignment", desk, json={})
        await drain(session_maker, deliverer)
    assert {r.json["data"]["id"] for r in crm_receiver.received} == {mine["id"]}
    assert [r.type for r in crm_receiver.received] == [
        "event.reported",
        "event.classified",
        "event.assigned",
    ]
    for got in crm_receiver.received:
        assert got.verified_by
        assert {"severity", "lead_department", "assignee_id", "cooperating_departments"}.isdisjoint(
            got.json["data"]
        )
    assert {r.json["data"]["id"] for r in admin_receiver.received} == {mine["id"], theirs["id"]}
    classified = [r for r in admin_receiver.received if r.type == "event.classified"]
    assert all("severity" in r.json["data"] for r in classified)


async def test_type_and_department_filters(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """Item 1: `event_types` and `departments` narrow what an endpoint receives."""
    with receiving() as typed, receiving() as it_only:
        await register(client, admin, typed, event_types=["event.classified"])
        await register(client, admin, it_only, departments=["IT"])
        for involved in (["IT"], ["HR"]):
            await call(
                client,
                "POST",
                "/v1/events",
                desk,
                json=intake_body(involved_departments=involved),
                expect=201,
            )
        event = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        await call(
            client,
            "POST",
            f"/v1/events/{event['id']}/classification",
            desk,
            json=flow.classification(BUSINESS_ISSUE),
        )
        await drain(session_maker, deliverer)
    assert [r.type for r in typed.received] == ["event.classified"]
    assert len(it_only.received) == 1
    assert it_only.received[0].type == "event.reported"


async def test_purge_removes_what_is_older_than_the_retention(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 7: delivered messages and their attempts are purged after
    `OUTBOX_RETENTION_DAYS`; a message still waiting for an endpoint is kept."""
    endpoint = await register(client, admin, receiver)
    delivered = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    await drain(session_maker, deliverer)
    receiver.answer = lambda _r: (500, {}, b"")
    waiting = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    await drain(session_maker, deliverer)
    await _piece(session_maker, deliverer.purge, utcnow() + timedelta(days=29))
    assert await outbox_of(session_maker, delivered["id"])
    purged = await _piece(session_maker, deliverer.purge, utcnow() + timedelta(days=31))
    assert purged >= 3  # two attempts, one message
    assert await outbox_of(session_maker, delivered["id"]) == []
    assert len(await outbox_of(session_maker, waiting["id"])) == 1
    async with session_maker() as session:
        pending = await session.scalar(
            sa.select(sa.func.count())
            .select_from(WebhookDispatch)
            .where(WebhookDispatch.endpoint_id == uuid.UUID(endpoint["id"]))
        )
    assert pending == 1
    log = await call(client, "GET", f"{HOOKS}/{endpoint['id']}/deliveries", admin)
    assert log["items"] == []


async def _rows(maker: async_sessionmaker[AsyncSession], table: Any, **where: Any) -> int:
    async with maker() as session:
        found = await session.scalar(
            sa.select(sa.func.count())
            .select_from(table)
            .where(*(getattr(table, k) == v for k, v in where.items()))
        )
    return int(found or 0)


async def test_the_purge_takes_a_purged_messages_newer_attempts_and_rows_left_waiting_for_nothing(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 7 without foreign keys on the queue and the log (migration 6f3b8d0e2a47): a
    message's later attempts (a resend) go with the message, and a queued row whose endpoint
    or message is gone is deleted, whatever its age."""
    endpoint = await register(client, admin, receiver)
    event = await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    await drain(session_maker, deliverer)
    [(message_id, _type)] = await outbox_of(session_maker, event["id"])
    later = utcnow() + timedelta(days=40)
    async with session_maker() as session, session.begin():
        # an attempt made after the purge's cutoff (a resend 40 days on)
        await session.execute(
            sa.insert(WebhookDelivery).values(
                id=uuid7_floor(later),
                endpoint_id=uuid.UUID(endpoint["id"]),
                message_id=uuid.UUID(message_id),
                message_type="event.reported",
                attempt=2,
                attempted_at=later,
                outcome="delivered",
                status_code=200,
                duration_ms=1,
            )
        )
        for endpoint_id, queued_message in (
            (uuid.uuid4(), uuid.UUID(message_id)),  # its endpoint deleted meanwhile
            (uuid.UUID(endpoint["id"]), uuid.uuid4()),  # its message purged meanwhile
        ):
            await session.execute(
                sa.insert(WebhookDispatch).values(
                    dispatch_row(endpoint_id, queued_message, None, 0, EventView.STAFF, utcnow())
                    | {"next_attempt_at": PARKED}
                )
            )
    assert await _rows(session_maker, WebhookDelivery, message_id=uuid.UUID(message_id)) == 2
    await _piece(session_maker, deliverer.purge, utcnow() + timedelta(days=1))
    assert await _rows(session_maker, WebhookDispatch) == 0
    assert await outbox_of(session_maker, event["id"])  # still within the retention
    await _piece(session_maker, deliverer.purge, utcnow() + timedelta(days=31))
    assert await outbox_of(session_maker, event["id"]) == []
    assert await _rows(session_maker, WebhookDelivery, message_id=uuid.UUID(message_id)) == 0


async def test_only_the_webhook_pieces_commit_without_waiting_for_the_disk(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    deliverer: Deliverer,
) -> None:
    """The fan-out and the delivery set `synchronous_commit = off` for their own transaction
    (`repository.relax_commit`: a piece lost in a database crash is done again, the message
    sent again with its `webhook-id`); the connection's next transaction (an intake on the
    pooled connection, say) waits for the disk again. The fan-out also reads without bitmap
    scans (they revisit the dead index entries of published messages every piece). The
    fan-out's attempt fails, so the delivery has a retry to claim."""
    setting = sa.text("SELECT current_setting('synchronous_commit')")
    with receiving(answer=_failing_first(1)) as receiver:
        await register(client, admin, receiver)
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        now = utcnow()
        async with session_maker() as session, session.begin():
            assert await session.scalar(setting) == "on"  # the intake's
            for work, at in (
                (deliverer.fanout, now),
                (deliverer.deliver, now + timedelta(seconds=6)),
            ):
                for name in ("synchronous_commit", "enable_bitmapscan"):
                    await session.execute(sa.text(f"SET LOCAL {name} = on"))
                assert await work(Piece(session=session, now=at, holder="test")) == 1
                assert await session.scalar(setting) == "off"
                if work == deliverer.fanout:  # its reads of the outbox's partial index
                    bitmap = sa.text("SELECT current_setting('enable_bitmapscan')")
                    assert await session.scalar(bitmap) == "off"
    first, again = receiver.received  # answered 500, then 200
    assert first.webhook_id == again.webhook_id
    # Each test runs in one transaction; the scope is seen on a connection of its own.
    async with engine.connect() as connection:
        async with connection.begin():
            await relax_commit(AsyncSession(bind=connection))
            assert await connection.scalar(setting) == "off"
        async with connection.begin():
            assert await connection.scalar(setting) == "on"


async def test_deleting_an_endpoint_deletes_what_waits_for_it_and_its_log(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    """Item 1's DELETE: the endpoint's delivery log and what still waits for it go with it
    (the other endpoint's stay)."""
    gone = await register(client, admin, receiver)
    kept = await register(client, admin, receiver)
    await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    await drain(session_maker, deliverer)
    receiver.answer = lambda _r: (500, {}, b"")
    await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    await drain(session_maker, deliverer)
    ids = {name: uuid.UUID(e["id"]) for name, e in (("gone", gone), ("kept", kept))}
    for name in ids:
        assert await _rows(session_maker, WebhookDelivery, endpoint_id=ids[name]) == 2
        assert await _rows(session_maker, WebhookDispatch, endpoint_id=ids[name]) == 1
    response = await client.delete(f"{HOOKS}/{gone['id']}", headers=admin.headers)
    assert response.status_code == 204
    assert await _rows(session_maker, WebhookDelivery, endpoint_id=ids["gone"]) == 0
    assert await _rows(session_maker, WebhookDispatch, endpoint_id=ids["gone"]) == 0
    assert await _rows(session_maker, WebhookDelivery, endpoint_id=ids["kept"]) == 2
    assert await _rows(session_maker, WebhookDispatch, endpoint_id=ids["kept"]) == 1


async def test_what_waits_for_a_disabled_endpoint_is_parked_and_resumed_when_enabled(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """A message still to be sent when its endpoint is disabled waits, set aside (the claims
    never walk past it), and is sent, with its `webhook-id`, once the endpoint is enabled."""
    with receiving(answer=lambda _r: (410, {}, b"")) as receiver:
        endpoint = await register(client, admin, receiver)
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        now = utcnow()
        await drain(session_maker, deliverer, now)
        async with session_maker() as session:
            waiting = (await session.scalars(sa.select(WebhookDispatch.next_attempt_at))).all()
        assert waiting == [PARKED]
        receiver.answer = lambda _r: (200, {}, b"")
        enabled = await call(
            client, "PATCH", f"{HOOKS}/{endpoint['id']}", admin, json={"enabled": True}
        )
        assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
        await drain(session_maker, deliverer, now + timedelta(seconds=1))
    first, again = receiver.received
    assert first.webhook_id == again.webhook_id


async def _unpublished(maker: async_sessionmaker[AsyncSession]) -> int:
    async with maker() as session:
        found = await session.scalar(
            sa.select(sa.func.count()).where(OutboxMessage.published_at.is_(None))
        )
    return int(found or 0)


async def test_with_no_endpoint_the_fanout_writes_nothing_and_the_purge_takes_the_messages(
    client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    desk: Actor,
) -> None:
    """Issue 12's intake target (runner on vs off) and item 7: with no enabled endpoint the
    fan-out does no work and writes nothing (nobody listens), and with no endpoint at all a
    poll is one read, without the fan-out's lock; the messages, never to be sent, are purged
    after the retention like delivered ones."""
    for _ in range(3):
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    before = await _unpublished(session_maker)
    assert before >= 3
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    bind = session_maker.kw["bind"].sync_connection
    sa.event.listen(bind, "before_cursor_execute", seen)
    try:
        assert await _piece(session_maker, deliverer.fanout, utcnow()) == 0
    finally:
        sa.event.remove(bind, "before_cursor_execute", seen)
    # The test's own transaction makes the piece's a savepoint: not the fan-out's.
    read = [sql for sql in statements if "SAVEPOINT" not in sql]
    assert len(read) == 1, statements
    assert "EXISTS (SELECT 1 FROM webhook_endpoint)" in read[0]
    async with session_maker() as session:  # the lock would last as long as the test's transaction
        held = await session.scalar(
            sa.text(
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
        )
    assert held == 0
    assert await _unpublished(session_maker) == before
    await _piece(session_maker, deliverer.purge, utcnow() + timedelta(days=31))
    assert await _unpublished(session_maker) == 0


async def test_an_endpoint_enabled_later_skips_what_was_written_before_it(
    client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    receiver: Receiver,
    admin: Actor,
    desk: Actor,
) -> None:
    """Messages written while nobody listened are marked published without being queued once
    an endpoint exists: in bulk for those older than its creation (less a minute of slack),
    one by one for the rest; the first message after it is delivered."""
    for _ in range(3):
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
    created = await register(client, admin, receiver)
    async with session_maker() as session, session.begin():
        # As if the endpoint had been created five minutes later than these messages.
        await session.execute(
            sa.text(
                "UPDATE webhook_endpoint SET created_at = created_at + interval '5 minutes'"
                " WHERE id = :id"
            ),
            {"id": uuid.UUID(created["id"])},
        )
    assert await _piece(session_maker, deliverer.fanout, utcnow()) >= 3
    assert await _unpublished(session_maker) == 0
    async with session_maker() as session:
        queued = await session.scalar(sa.select(sa.func.count()).select_from(WebhookDispatch))
    assert queued == 0
    await drain(session_maker, deliverer, utcnow())
    assert receiver.received == []


async def test_delivery_attempts_are_counted_by_outcome_once_committed(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """Issue 16 item 5: `cle_webhook_deliveries_total` by outcome, counted when the piece that
    recorded the attempts commits (the runner calls `Piece.on_commit`), not before."""

    def counted(outcome: str) -> float:
        return REGISTRY.get_sample_value("cle_webhook_deliveries_total", {"outcome": outcome}) or 0

    async def deliver_at(now: datetime) -> None:
        """The fan-out (which sends a message at once) and the delivery (which sends the
        retries that are due), each in a transaction; then what their commits call."""
        pieces = []
        for work in (deliverer.fanout, deliverer.deliver):
            async with session_maker() as session, session.begin():
                piece = Piece(session=session, now=now, holder="test")
                await work(piece)
                assert (counted("retrying"), counted("delivered")) == before  # not yet committed
            pieces.append(piece)
        for piece in pieces:
            for committed in piece.on_commit:
                committed()

    with receiving(answer=_failing_first(1)) as receiver:
        await register(client, admin, receiver)
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        now = utcnow()
        before = (counted("retrying"), counted("delivered"))
        await deliver_at(now)
        assert (counted("retrying"), counted("delivered")) == (before[0] + 1, before[1])
        before = (counted("retrying"), counted("delivered"))
        await deliver_at(now + timedelta(seconds=6))
    assert (counted("retrying"), counted("delivered")) == (before[0], before[1] + 1)
    assert len(receiver.received) == 2
