"""Directory and access (product.md section 1): departments, users, API keys, /v1/me."""

import hashlib

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.directory.models import ApiKey
from app.events.models import Event
from app.rules.vocabulary import Role
from tests.conftest import Actor, MakeActor, intake_body


async def test_missing_token_is_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_wrong_token_is_401(client: httpx.AsyncClient) -> None:
    for header in ("Bearer cle_notarealtoken", "Basic abc", "Bearer", "cle_x"):
        response = await client.get("/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header


BAD_AUTHORIZATION = ("Bearer cle_notarealtoken", "Basic abc", "Bearer", "Bearer " + "x" * 300)


async def test_bad_token_does_not_break_routes_that_need_none(client: httpx.AsyncClient) -> None:
    """The middleware authenticates every request that carries a token, before routing; a bad
    one must only matter to routes that need a caller (product.md section 4: /healthz)."""
    for header in BAD_AUTHORIZATION:
        response = await client.get("/healthz", headers={"Authorization": header})
        assert response.status_code == 200, header
        assert response.json() == {"status": "ok"}


async def test_bad_token_on_get_event_is_401_problem(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    """product.md sections 1, 4: GET /v1/events/{id} (the hot path that takes its caller from
    the middleware) refuses a bad key with a 401 problem, even for an existing event."""
    event = await client.post("/v1/events", json=intake_body(), headers=reporter.headers)
    for header in BAD_AUTHORIZATION:
        response = await client.get(event.headers["location"], headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "Ana Ruiz" not in response.text


async def test_revoked_key_is_refused_on_read_and_intake(
    client: httpx.AsyncClient,
    admin: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """product.md section 1: an API key is revocable; a revoked key (cached as a valid caller
    a moment ago) reads nothing and reports nothing, with or without an Idempotency-Key."""
    bridge = await make_actor(Role.INTEGRATION)
    event = await client.post("/v1/events", json=intake_body(), headers=bridge.headers)
    assert (await client.get(event.headers["location"], headers=bridge.headers)).status_code == 200
    keys = await client.get(
        "/v1/api-keys", params={"user_id": str(bridge.id)}, headers=admin.headers
    )
    revoked = await client.delete(f"/v1/api-keys/{keys.json()[0]['id']}", headers=admin.headers)
    assert revoked.status_code == 200

    read = await client.get(event.headers["location"], headers=bridge.headers)
    unkeyed = await client.post("/v1/events", json=intake_body(), headers=bridge.headers)
    keyed = await client.post(
        "/v1/events", json=intake_body(), headers={**bridge.headers, "Idempotency-Key": "new"}
    )
    for response in (read, unkeyed, keyed):
        assert response.status_code == 401, response.request.url
        assert response.json()["type"].endswith("/unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    async with session_maker() as session:
        made = await session.scalars(sa.select(Event.id).where(Event.created_by == bridge.id))
        assert [str(i) for i in made] == [event.json()["id"]]


async def test_me_returns_the_caller(client: httpx.AsyncClient, desk: Actor) -> None:
    response = await client.get("/v1/me", headers=desk.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == str(desk.id)
    assert body["user"]["roles"] == ["intake_agent"]
    assert body["user"]["department"] == "CS"


async def test_admin_manages_departments(client: httpx.AsyncClient, admin: Actor) -> None:
    created = await client.post(
        "/v1/departments", json={"code": "QA", "name": "Quality"}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/departments/QA"
    again = await client.post(
        "/v1/departments", json={"code": "QA", "name": "Quality"}, headers=admin.headers
    )
    assert again.status_code == 409
    renamed = await client.patch(
        "/v1/departments/QA", json={"name": "Quality assurance"}, headers=admin.headers
    )
    assert renamed.json()["name"] == "Quality assurance"
    listed = await client.get("/v1/departments", headers=admin.headers)
    assert "QA" in [d["code"] for d in listed.json()]
    bad = await client.post(
        "/v1/departments", json={"code": "qa lower", "name": "x"}, headers=admin.headers
    )
    assert bad.status_code == 422


async def test_non_admin_cannot_manage_directory(client: httpx.AsyncClient, desk: Actor) -> None:
    response = await client.post(
        "/v1/departments", json={"code": "QA", "name": "Quality"}, headers=desk.headers
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")
    response = await client.post(
        "/v1/users", json={"name": "X", "roles": ["admin"]}, headers=desk.headers
    )
    assert response.status_code == 403


async def test_user_needs_known_department_and_roles(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    unknown = await client.post(
        "/v1/users",
        json={"name": "X", "department": "NOPE", "roles": ["handler"]},
        headers=admin.headers,
    )
    assert unknown.status_code == 422
    no_roles = await client.post(
        "/v1/users", json={"name": "X", "department": "IT", "roles": []}, headers=admin.headers
    )
    assert no_roles.status_code == 422
    bad_role = await client.post(
        "/v1/users", json={"name": "X", "roles": ["wizard"]}, headers=admin.headers
    )
    assert bad_role.status_code == 422


async def test_api_key_shown_once_stored_hashed_and_revocable(
    client: httpx.AsyncClient, admin: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    user = await client.post(
        "/v1/users",
        json={
            "name": "Hugo",
            "email": "hugo@example.com",
            "department": "IT",
            "roles": ["handler"],
        },
        headers=admin.headers,
    )
    assert user.status_code == 201, user.text
    key = await client.post(
        "/v1/api-keys", json={"name": "laptop", "user_id": user.json()["id"]}, headers=admin.headers
    )
    assert key.status_code == 201
    token = key.json()["token"]
    async with session_maker() as session:
        stored = await session.scalar(sa.select(ApiKey).where(ApiKey.id == key.json()["id"]))
        assert stored is not None
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {stored.token_hash, stored.prefix}

    listed = await client.get("/v1/api-keys", headers=admin.headers)
    assert all("token" not in k for k in listed.json())

    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["user"]["name"] == "Hugo"
    used = await client.get(
        "/v1/api-keys", params={"user_id": user.json()["id"]}, headers=admin.headers
    )
    assert used.json()[0]["last_used_at"] is not None

    revoked = await client.delete(f"/v1/api-keys/{key.json()['id']}", headers=admin.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    after = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401


async def test_deactivated_user_loses_access(
    client: httpx.AsyncClient, admin: Actor, make_actor: MakeActor
) -> None:
    handler = await make_actor("handler", department="IT")
    assert (await client.get("/v1/me", headers=handler.headers)).status_code == 200
    response = await client.patch(
        f"/v1/users/{handler.id}", json={"active": False}, headers=admin.headers
    )
    assert response.status_code == 200
    assert (await client.get("/v1/me", headers=handler.headers)).status_code == 401
