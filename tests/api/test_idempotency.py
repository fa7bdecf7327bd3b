"""Idempotency-Key on POST (product.md section 4)."""

import uuid
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.housekeeping import purge_expired_keys
from app.core.idempotency_models import IdempotencyRecord
from app.rules.vocabulary import Role
from tests.conftest import Actor, CommittedKey, MakeActor, intake_body


async def _listed(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    response = await client.get("/v1/events", headers=actor.headers)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_replay_returns_the_first_response(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    headers = {**reporter.headers, "Idempotency-Key": "intake-1"}
    first = await client.post("/v1/events", json=intake_body(), headers=headers)
    replay = await client.post("/v1/events", json=intake_body(), headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["location"] == first.headers["location"]
    listed = await client.get("/v1/events", headers=reporter.headers)
    assert len(listed.json()["items"]) == 1


async def test_same_key_other_body_is_an_error(client: httpx.AsyncClient, reporter: Actor) -> None:
    headers = {**reporter.headers, "Idempotency-Key": "intake-2"}
    await client.post("/v1/events", json=intake_body(), headers=headers)
    other = await client.post("/v1/events", json=intake_body(title="Else"), headers=headers)
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert [e["title"] for e in await _listed(client, reporter)] == [intake_body()["title"]]


async def test_keys_are_scoped_to_the_caller(
    client: httpx.AsyncClient, reporter: Actor, desk: Actor
) -> None:
    first = await client.post(
        "/v1/events", json=intake_body(), headers={**reporter.headers, "Idempotency-Key": "k"}
    )
    second = await client.post(
        "/v1/events", json=intake_body(), headers={**desk.headers, "Idempotency-Key": "k"}
    )
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]


async def test_failed_requests_do_not_consume_the_key(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    headers = {**reporter.headers, "Idempotency-Key": "retry-after-fix"}
    bad = await client.post("/v1/events", json=intake_body(channel="pigeon"), headers=headers)
    assert bad.status_code == 422
    good = await client.post("/v1/events", json=intake_body(), headers=headers)
    assert good.status_code == 201


async def test_expired_key_runs_again(
    client: httpx.AsyncClient, reporter: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    headers = {**reporter.headers, "Idempotency-Key": "old"}
    first = await client.post("/v1/events", json=intake_body(), headers=headers)
    async with session_maker() as session:
        await session.execute(
            sa.update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old")
            .values(expires_at=sa.func.now() - sa.text("interval '1 second'"))
        )
        await session.commit()
    again = await client.post("/v1/events", json=intake_body(), headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in again.headers
    # The key's record was replaced by the new first response, and replays it from now on.
    async with session_maker() as session:
        record = await session.scalar(
            sa.select(IdempotencyRecord).where(IdempotencyRecord.key == "old")
        )
        assert record is not None
        assert (record.status_code, record.body) == (201, again.content)
        assert record.expires_at - utcnow() > timedelta(hours=23)
    replay = await client.post("/v1/events", json=intake_body(), headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert (replay.status_code, replay.content) == (201, again.content)
    assert len(await _listed(client, reporter)) == 2


async def test_oversized_key_is_rejected(client: httpx.AsyncClient, reporter: Actor) -> None:
    response = await client.post(
        "/v1/events", json=intake_body(), headers={**reporter.headers, "Idempotency-Key": "k" * 300}
    )
    assert response.status_code == 422


async def test_replay_while_first_is_running_is_409(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, committed_key: CommittedKey
) -> None:
    """The first request holds the key's advisory lock for its whole transaction."""
    key = f"inflight-{uuid.uuid4()}"
    scope = str(committed_key.key_id)  # keys are scoped to the API key that sent them
    async with engine.connect() as holder:
        await holder.execute(
            sa.select(sa.func.pg_advisory_lock(sa.func.hashtextextended(scope + ":" + key, 0)))
        )
        response = await committing_client.post(
            "/v1/events",
            json=intake_body(),
            headers={"Authorization": f"Bearer {committed_key.token}", "Idempotency-Key": key},
        )
        await holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
    assert response.status_code == 409
    assert response.json()["type"].endswith("/idempotency-in-flight")


async def test_housekeeping_purges_only_expired_keys(
    client: httpx.AsyncClient, reporter: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    for key in ("keep", "drop"):
        await client.post(
            "/v1/events", json=intake_body(), headers={**reporter.headers, "Idempotency-Key": key}
        )
    async with session_maker() as session:
        await session.execute(
            sa.update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "drop")
            .values(expires_at=sa.func.now() - sa.text("interval '1 second'"))
        )
        assert await purge_expired_keys(session) == 1
        left = set(await session.scalars(sa.select(IdempotencyRecord.key)))
        await session.commit()
    assert "keep" in left
    assert "drop" not in left


async def test_revoked_key_gets_no_replay(
    client: httpx.AsyncClient, admin: Actor, make_actor: MakeActor
) -> None:
    bridge = await make_actor(Role.INTEGRATION)
    headers = {**bridge.headers, "Idempotency-Key": "before-revoke"}
    assert (await client.post("/v1/events", json=intake_body(), headers=headers)).status_code == 201
    keys = (
        await client.get("/v1/api-keys", params={"user_id": str(bridge.id)}, headers=admin.headers)
    ).json()
    await client.delete(f"/v1/api-keys/{keys[0]['id']}", headers=admin.headers)
    replay = await client.post("/v1/events", json=intake_body(), headers=headers)
    assert replay.status_code == 401
    assert "Ana Ruiz" not in replay.text


async def test_known_external_ref_under_keys_answers_and_replays_that_event(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """product.md section 4: a replay returns the first response, and an external_ref already
    known returns that event (200), never a duplicate; a new key's first response is that 200,
    so the key replays the 200."""
    helpdesk = await make_actor(Role.INTEGRATION)
    body = intake_body(external_ref={"system": "zendesk", "id": "T-2002"})
    key_a = {**helpdesk.headers, "Idempotency-Key": "ticket-a"}
    key_b = {**helpdesk.headers, "Idempotency-Key": "ticket-b"}

    created = await client.post("/v1/events", json=body, headers=key_a)
    assert created.status_code == 201
    assert "idempotent-replayed" not in created.headers
    again = await client.post("/v1/events", json=body, headers=key_a)
    assert (again.status_code, again.content) == (201, created.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == created.headers["location"]
    assert again.headers["etag"] == created.headers["etag"]

    known = await client.post("/v1/events", json=body, headers=key_b)
    assert known.status_code == 200
    assert "idempotent-replayed" not in known.headers
    assert known.json() == created.json()
    assert known.headers["location"] == created.headers["location"]
    replay_b = await client.post("/v1/events", json=body, headers=key_b)
    assert (replay_b.status_code, replay_b.content) == (200, known.content)
    assert replay_b.headers["idempotent-replayed"] == "true"
    assert replay_b.headers["etag"] == known.headers["etag"]

    unkeyed = await client.post("/v1/events", json=body, headers=helpdesk.headers)
    assert unkeyed.status_code == 200
    assert unkeyed.json() == created.json()
    assert [e["id"] for e in await _listed(client, helpdesk)] == [created.json()["id"]]
