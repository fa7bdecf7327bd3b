"""Responses that carry a secret are never stored for replay (issue 10, item 2).

`POST /v1/api-keys` shows a token once and the survey link is a bearer secret for the customer
(R6.2): neither may sit in `idempotency_record` in clear, and a replay of the key must not hand
it out again. The replay answers 409 `idempotency-secret-withheld` instead."""

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.idempotency_models import IdempotencyRecord
from app.rules.vocabulary import Role, Status
from tests.api import flow
from tests.api.flow import url
from tests.conftest import Actor, MakeActor


async def _record(
    session_maker: async_sessionmaker[AsyncSession], key: str
) -> IdempotencyRecord | None:
    async with session_maker() as session:
        return await session.scalar(
            sa.select(IdempotencyRecord).where(IdempotencyRecord.key == key)
        )


async def test_api_key_token_is_not_stored_and_not_replayed(
    client: httpx.AsyncClient,
    admin: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    bridge = await make_actor(Role.INTEGRATION)
    headers = {**admin.headers, "Idempotency-Key": "new-key-1"}
    body = {"name": "zendesk bridge", "user_id": str(bridge.id)}
    first = await client.post("/v1/api-keys", json=body, headers=headers)
    assert first.status_code == 201
    token = first.json()["token"]

    record = await _record(session_maker, "new-key-1")
    assert record is not None
    assert record.secret_withheld is True
    assert token.encode() not in record.body
    assert token not in str(record.headers)

    replay = await client.post("/v1/api-keys", json=body, headers=headers)
    assert replay.status_code == 409
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.json()["type"].endswith("/idempotency-secret-withheld")
    assert token not in replay.text
    # Review of issue 10, item 3: the problem says what was created, without the secret.
    created = {k: v for k, v in first.json().items() if k != "token"}
    assert replay.json()["resource"] == created
    assert created["prefix"] == token[:12]
    # Still one key: the replay created nothing.
    keys = await client.get(
        "/v1/api-keys", params={"user_id": str(bridge.id)}, headers=admin.headers
    )
    assert len(keys.json()) == 2  # the fixture's key and the one made here


async def test_survey_link_is_not_stored_and_not_replayed(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(
        client, cast, flow.BUSINESS_ISSUE, Status.FEEDBACK_GIVEN, satisfied=False
    )
    headers = {**cast.desk.headers, "Idempotency-Key": "survey-1"}
    first = await client.post(url(event["id"], "/survey-link"), headers=headers)
    assert first.status_code == 201
    token = first.json()["token"]

    record = await _record(session_maker, "survey-1")
    assert record is not None
    assert token.encode() not in record.body
    assert token not in str(record.headers)

    replay = await client.post(url(event["id"], "/survey-link"), headers=headers)
    assert replay.status_code == 409
    assert replay.json()["type"].endswith("/idempotency-secret-withheld")
    assert token not in replay.text
    # Review of issue 10, item 3: the link's expiry, without the token or the URL holding it.
    assert replay.json()["resource"] == {"expires_at": first.json()["expires_at"]}


async def test_responses_without_secrets_are_still_replayed(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    headers = {**admin.headers, "Idempotency-Key": "dept-1"}
    body = {"code": "QA", "name": "Quality assurance"}
    first = await client.post("/v1/departments", json=body, headers=headers)
    replay = await client.post("/v1/departments", json=body, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
