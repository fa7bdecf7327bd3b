"""The login-free survey link (R6.2; review of issue 10, item 10).

* `POST /v1/surveys/{token}` with an `Idempotency-Key` works without an API key: the key is
  scoped to the link (the hash of its path), so a retry replays the first answer.
* The link's URL is built from the configured `PUBLIC_BASE_URL`, never from the request's
  `Host` header (which a client or a misconfigured proxy may set to anything); without the
  setting it is a path.
"""

import hashlib

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.idempotency_models import IdempotencyRecord
from app.events.models import Satisfaction
from app.rules.vocabulary import Status
from tests.api import flow
from tests.api.flow import url
from tests.conftest import MakeActor, build_app


async def _link(client: httpx.AsyncClient, make_actor: MakeActor, **headers: str) -> str:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(
        client, cast, flow.BUSINESS_ISSUE, Status.FEEDBACK_GIVEN, satisfied=False
    )
    response = await client.post(
        url(event["id"], "/survey-link"), headers={**cast.desk.headers, **headers}
    )
    assert response.status_code == 201, response.text
    link: str = response.json()["url"]
    return link


async def test_a_keyed_survey_answer_needs_no_api_key_and_replays(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    path = await _link(client, make_actor)
    token = path.rsplit("/", 1)[1]
    headers = {"Idempotency-Key": "answer-1"}
    first = await client.post(path, json={"score": 5}, headers=headers)
    assert first.status_code == 200, first.text
    again = await client.post(path, json={"score": 5}, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    other = await client.post(path, json={"score": 2}, headers=headers)
    assert other.status_code == 422  # the same key with another answer
    assert other.json()["type"].endswith("/idempotency-key-reused")
    unkeyed = await client.post(path, json={"score": 5})
    assert unkeyed.status_code == 409  # the link works once

    async with session_maker() as session:
        record = await session.scalar(
            sa.select(IdempotencyRecord).where(IdempotencyRecord.key == "answer-1")
        )
        answers = await session.scalar(
            sa.select(sa.func.count()).select_from(Satisfaction).where(Satisfaction.score == 5)
        )
    assert record is not None
    assert record.scope == hashlib.sha256(path.encode()).hexdigest()
    assert token not in record.scope
    assert token.encode() not in record.body
    assert answers == 1


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("https://events.example.com/", "https://events.example.com/v1/surveys/"),
        ("", "/v1/surveys/"),
    ],
)
async def test_the_survey_url_comes_from_the_setting_not_the_host_header(
    session_maker: async_sessionmaker[AsyncSession],
    make_actor: MakeActor,
    setting: str,
    expected: str,
) -> None:
    app = build_app(session_maker, PUBLIC_BASE_URL=setting)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        link = await _link(client, make_actor, Host="attacker.example")
    assert link.startswith(expected), link
    assert "attacker" not in link
