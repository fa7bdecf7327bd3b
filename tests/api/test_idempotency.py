"""Idempotency-Key on POST (product.md section 4)."""

import uuid

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.housekeeping import purge_expired_keys
from app.core.idempotency_models import IdempotencyRecord
from app.rules.vocabulary import Role
from tests.conftest import Actor, CommittedKey, MakeActor, intake_body


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
