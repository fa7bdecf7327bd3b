"""The delivery's connections (issue 13, items 2 and 3; app/webhooks/transport.py) against a
real receiver on 127.0.0.1: kept alive and reused, at most `WEBHOOK_ENDPOINT_CONCURRENCY` of
them to an endpoint at once, never reused once the receiver closes them or their answer was
not read to the end."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.runner.job import Piece
from app.webhooks.config import WebhookSettings, get_webhook_settings
from app.webhooks.delivery import EXCERPT_BYTES, Deliverer
from app.webhooks.transport import Connections
from tests.api.flow import call
from tests.conftest import Actor, intake_body
from tests.webhook_receiver import Received, receiving

HOOKS = "/v1/webhook-endpoints"
JSON = [(b"content-type", b"application/json")]


@pytest.fixture
async def connections() -> AsyncIterator[Connections]:
    made = Connections(allow_private=True)
    yield made
    await made.aclose()


async def test_requests_one_after_another_share_one_kept_alive_connection(
    connections: Connections,
) -> None:
    with receiving() as receiver:
        for number in range(5):
            answer = await connections.post(
                receiver.url, [*JSON, (b"webhook-id", b"m%d" % number)], b"{}", timeout=5, limit=64
            )
            assert (answer.status, answer.head) == (200, b"ok")
        got = receiver.wait_for(5)
    assert [r.webhook_id for r in got] == [f"m{n}" for n in range(5)]
    assert len({r.client_port for r in got}) == 1


async def test_a_connection_the_receiver_closes_is_not_reused(connections: Connections) -> None:
    with receiving(answer=lambda _r: (200, {"Connection": "close"}, b"bye")) as receiver:
        for _ in range(3):
            answer = await connections.post(receiver.url, JSON, b"{}", timeout=5, limit=64)
            assert (answer.status, answer.head) == (200, b"bye")
        got = receiver.wait_for(3)
    assert len({r.client_port for r in got}) == 3


async def test_a_long_answer_is_read_only_to_the_excerpt_and_its_connection_dropped(
    connections: Connections,
) -> None:
    # Far longer than one read of the connection (httpcore reads up to 64 KiB at a time), so
    # stopping after the excerpt leaves most of it unread however the receiver's writes arrive.
    long = b"x" * (1024 * 1024 + 64 * EXCERPT_BYTES)

    def answer(received: Received) -> tuple[int, dict[str, str], bytes]:
        return 500, {"Retry-After": "7"}, long if received.number == 1 else b""

    with receiving(answer=answer) as receiver:
        first = await connections.post(receiver.url, JSON, b"{}", timeout=5, limit=EXCERPT_BYTES)
        second = await connections.post(receiver.url, JSON, b"{}", timeout=5, limit=EXCERPT_BYTES)
        got = receiver.wait_for(2)
    assert (first.status, first.retry_after) == (500, "7")
    assert EXCERPT_BYTES <= len(first.head) < len(long)
    assert (second.status, second.head) == (500, b"")
    assert got[0].client_port != got[1].client_port


async def test_no_redirect_is_followed(connections: Connections) -> None:
    with (
        receiving() as target,
        receiving(answer=lambda _r: (307, {"Location": target.url}, b"")) as moved,
    ):
        answer = await connections.post(moved.url, JSON, b"{}", timeout=5, limit=64)
        moved.wait_for(1)
    assert answer.status == 307
    assert target.received == []


async def test_a_piece_sends_over_at_most_the_endpoint_concurrency_and_the_next_reuses_them(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Items 2 and 3: 2 at once to an endpoint (a slow receiver, so requests overlap), over
    kept-alive connections that the next piece reuses."""
    settings = WebhookSettings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_ENDPOINT_CONCURRENCY=2)
    app.dependency_overrides[get_webhook_settings] = lambda: settings
    deliverer = Deliverer(settings, jitter=lambda _low, _high: 1.0)
    try:
        with receiving(delay=0.05) as receiver:
            created = await call(
                client, "POST", HOOKS, admin, json={"url": receiver.url}, expect=201
            )
            receiver.secrets.append(created["secret"])
            for batch in (6, 4):
                for _ in range(batch):
                    await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
                for work in (deliverer.fanout, deliverer.deliver):
                    async with session_maker() as session, session.begin():
                        await work(Piece(session=session, now=utcnow(), holder="test"))
            got = await asyncio.to_thread(receiver.wait_for, 10)
    finally:
        await deliverer.close()
    assert all(r.verified_by for r in got)
    first, second = got[:6], got[6:]
    assert len({r.client_port for r in first}) == 2
    assert {r.client_port for r in second} <= {r.client_port for r in first}
