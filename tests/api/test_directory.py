"""Directory and access (product.md section 1): departments, users, API keys, /v1/me."""

import asyncio
import hashlib
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.core import auth
from app.core.auth import hash_token, new_token
from app.directory.models import ApiKey, User
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


async def test_each_directory_route_checks_its_roles_and_a_new_user_is_located(
    client: httpx.AsyncClient, admin: Actor, reporter: Actor
) -> None:
    """Issue 11 item 3: the roles a directory route needs are checked before it runs (anyone
    with a key reads departments; staff read users; admins manage), and a created user
    answers 201 with its `Location`."""
    created = await client.post(
        "/v1/users",
        json={"name": "Lee", "department": "IT", "roles": ["handler"]},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location == f"/v1/users/{created.json()['id']}"
    assert (await client.get(location, headers=admin.headers)).json()["name"] == "Lee"
    for path in ("/v1/departments", "/v1/departments/IT"):
        assert (await client.get(path, headers=reporter.headers)).status_code == 200
        assert (await client.get(path)).status_code == 401
    for method, path, body in (
        ("GET", "/v1/users", None),
        ("GET", location, None),
        ("GET", "/v1/api-keys", None),
        ("PATCH", "/v1/departments/IT", {"name": "IT"}),
        ("PATCH", location, {"name": "Lee"}),
        ("DELETE", f"/v1/api-keys/{uuid.uuid4()}", None),
    ):
        response = await client.request(method, path, json=body, headers=reporter.headers)
        assert response.status_code == 403, (method, path)


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


# ---- unique values are checked before writing (issue 10 item 10) ---------------------------


async def _inserted(connection: AsyncConnection, table: str) -> int:
    """Rows this transaction has tried to insert into `table`, kept or not: PostgreSQL counts
    a row inserted before its unique index refused it (and the savepoint rolled it back)."""
    count = await connection.scalar(
        sa.text("SELECT n_tup_ins FROM pg_stat_xact_user_tables WHERE relname = :t"),
        {"t": table},
    )
    return int(count or 0)


@pytest.mark.parametrize(
    ("path", "first", "again", "table"),
    [
        (
            "/v1/users",
            {"name": "Mei", "email": "mei@example.com", "roles": ["handler"]},
            {"name": "Mei two", "email": "MEI@example.com", "roles": ["handler"]},
            "app_user",
        ),
        (
            "/v1/departments",
            {"code": "QA", "name": "Quality"},
            {"code": "QA", "name": "Q"},
            "department",
        ),
    ],
)
async def test_duplicate_is_409_without_a_failed_insert(
    client: httpx.AsyncClient,
    admin: Actor,
    connection: AsyncConnection,
    path: str,
    first: dict[str, Any],
    again: dict[str, Any],
    table: str,
) -> None:
    """Issue 10 item 10: a taken e-mail address or department code answers the same 409, found
    by a check before the INSERT: no unique violation is raised, so PostgreSQL's log gets no
    `Key (lower(email))=(...) already exists` with the address in it."""
    assert (await client.post(path, json=first, headers=admin.headers)).status_code == 201
    before = await _inserted(connection, table)
    duplicate = await client.post(path, json=again, headers=admin.headers)
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert duplicate.json()["type"].endswith("/conflict")
    assert duplicate.json()["detail"].endswith("already exists")
    assert await _inserted(connection, table) == before


async def test_taking_another_users_email_is_409_without_a_failed_update(
    client: httpx.AsyncClient, admin: Actor, make_actor: MakeActor, connection: AsyncConnection
) -> None:
    """Issue 10 item 10: the same check on PATCH (excluding the user themselves)."""
    handler = await make_actor(Role.HANDLER, department="IT")
    other = await client.post(
        "/v1/users",
        json={"name": "Mei", "email": "mei@example.com", "roles": ["handler"]},
        headers=admin.headers,
    )
    assert other.status_code == 201
    updated = "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'app_user'"
    before = await connection.scalar(sa.text(updated))
    taken = await client.patch(
        f"/v1/users/{handler.id}", json={"email": "Mei@Example.com"}, headers=admin.headers
    )
    assert taken.status_code == 409, taken.text
    assert taken.json()["type"].endswith("/conflict")
    assert await connection.scalar(sa.text(updated)) == before
    own = await client.patch(
        f"/v1/users/{other.json()['id']}", json={"email": "MEI@example.com"}, headers=admin.headers
    )
    assert own.status_code == 200, own.text


# ---- the last admin (issue 10 item 11) ------------------------------------------------------


async def _only_admin(session_maker: async_sessionmaker[AsyncSession], admin: Actor) -> None:
    """Make `admin` the only active admin of this (rolled-back) test transaction."""
    async with session_maker() as session:
        await session.execute(
            sa.update(User)
            .where(User.id != admin.id, User.active, User.roles.contains(["admin"]))
            .values(active=False)
        )
        await session.commit()


@pytest.mark.parametrize(
    "change",
    [{"active": False}, {"roles": ["handler"]}, {"roles": ["supervisor"], "active": True}],
)
async def test_the_last_active_admin_cannot_be_removed(
    client: httpx.AsyncClient,
    admin: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
    change: dict[str, Any],
) -> None:
    """Issue 10 item 11: the last active admin may not deactivate or demote themselves (409
    `last-admin`); with a second admin they may, and then the second is the last."""
    await _only_admin(session_maker, admin)
    refused = await client.patch(f"/v1/users/{admin.id}", json=change, headers=admin.headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/last-admin")
    assert "last active admin" in refused.json()["detail"]
    me = await client.get("/v1/me", headers=admin.headers)
    assert me.json()["user"]["active"] is True
    assert me.json()["user"]["roles"] == ["admin"]

    kept = await client.patch(
        f"/v1/users/{admin.id}",
        json={"name": "Still admin", "roles": ["admin", "supervisor"], "active": True},
        headers=admin.headers,
    )
    assert kept.status_code == 200, kept.text

    second = await make_actor(Role.ADMIN)
    allowed = await client.patch(f"/v1/users/{admin.id}", json=change, headers=admin.headers)
    assert allowed.status_code == 200, allowed.text
    last = await client.patch(f"/v1/users/{second.id}", json=change, headers=second.headers)
    assert last.status_code == 409
    assert last.json()["type"].endswith("/last-admin")


async def test_an_inactive_admin_does_not_count(
    client: httpx.AsyncClient,
    admin: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 10 item 11: only *active* admins keep the service administrable."""
    await _only_admin(session_maker, admin)
    dormant = await make_actor(Role.ADMIN)
    deactivated = await client.patch(
        f"/v1/users/{dormant.id}", json={"active": False}, headers=admin.headers
    )
    assert deactivated.status_code == 200
    refused = await client.patch(
        f"/v1/users/{admin.id}", json={"roles": ["handler"]}, headers=admin.headers
    )
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/last-admin")


@pytest.mark.parametrize("how", ["demote each other", "each deactivate themselves"])
async def test_two_admins_removing_admins_at_once_leave_one(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, how: str
) -> None:
    """Issue 10 item 11, race-safe: two admins, each removing an admin in their own committed
    transaction at the same time, leave one active admin: the admin rows are locked, so the
    second change sees the first and is refused."""
    made = [(uuid.uuid4(), uuid.uuid4(), new_token()) for _ in range(2)]
    async with engine.begin() as conn:
        others = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(User)
            .where(User.active, User.roles.contains(["admin"]))
        )
        assert others == 0, "the committed database holds another admin"
        for user_id, key_id, token in made:
            await conn.execute(
                sa.insert(User).values(id=user_id, name="racing admin", roles=["admin"])
            )
            await conn.execute(
                sa.insert(ApiKey).values(
                    id=key_id,
                    user_id=user_id,
                    name="t",
                    prefix=token[:12],
                    token_hash=hash_token(token),
                )
            )
    (a, _, token_a), (b, _, token_b) = made
    requests: list[tuple[str, uuid.UUID, dict[str, Any]]]
    if how == "demote each other":
        requests = [(token_a, b, {"roles": ["handler"]}), (token_b, a, {"roles": ["handler"]})]
    else:
        requests = [(token_a, a, {"active": False}), (token_b, b, {"active": False})]
    try:
        for _ in range(3):  # a few rounds, in case one round happens not to overlap
            for token in (token_a, token_b):  # both callers known (cached) before either acts
                me = await committing_client.get(
                    "/v1/me", headers={"Authorization": f"Bearer {token}"}
                )
                assert me.status_code == 200
            responses = await asyncio.gather(
                *(
                    committing_client.patch(
                        f"/v1/users/{target}", json=change, headers={"Authorization": f"Bearer {t}"}
                    )
                    for t, target, change in requests
                )
            )
            statuses = sorted(r.status_code for r in responses)
            async with engine.connect() as conn:
                remaining = await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(User)
                    .where(User.id.in_([a, b]), User.active, User.roles.contains(["admin"]))
                )
            assert remaining == 1, [r.text for r in responses]
            assert statuses == [200, 409], [r.text for r in responses]
            refused = next(r for r in responses if r.status_code == 409)
            assert refused.json()["type"].endswith("/last-admin")
            async with engine.begin() as conn:  # both admins again for the next round
                await conn.execute(
                    sa.update(User).where(User.id.in_([a, b])).values(roles=["admin"], active=True)
                )
            auth.forget_principals()
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.delete(ApiKey).where(ApiKey.user_id.in_([a, b])))
            await conn.execute(sa.delete(User).where(User.id.in_([a, b])))


async def test_the_last_key_of_the_last_admin_cannot_be_revoked(
    client: httpx.AsyncClient,
    admin: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Review of issue 10, item 11: revoking the last API key that lets an active admin in
    would leave nobody to administer the service through the API: 409 `last-admin`, and the
    key still works. With a second admin key the first may go; then the second is the last."""
    await _only_admin(session_maker, admin)
    keys = await client.get(
        "/v1/api-keys", params={"user_id": str(admin.id)}, headers=admin.headers
    )
    [first] = keys.json()
    refused = await client.delete(f"/v1/api-keys/{first['id']}", headers=admin.headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/last-admin")
    assert (await client.get("/v1/me", headers=admin.headers)).status_code == 200

    spare = await client.post(
        "/v1/api-keys", json={"name": "spare", "user_id": str(admin.id)}, headers=admin.headers
    )
    assert spare.status_code == 201
    spare_headers = {"Authorization": f"Bearer {spare.json()['token']}"}
    revoked = await client.delete(f"/v1/api-keys/{first['id']}", headers=spare_headers)
    assert revoked.status_code == 200, revoked.text
    last = await client.delete(f"/v1/api-keys/{spare.json()['id']}", headers=spare_headers)
    assert last.status_code == 409
    assert last.json()["type"].endswith("/last-admin")
