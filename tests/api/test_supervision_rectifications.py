"""Rectification orders (R5.3; issue 14 item 2): `issued -> responded -> verified -> closed`,
a response rejected back to `issued`, a department sees only its own orders, and every step on
the order's history and in the outbox."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.outbox.models import OutboxMessage
from app.rules.vocabulary import Role
from tests.api.flow import call, not_allowed, refused
from tests.conftest import Actor, MakeActor

JSON = dict[str, Any]
DEMAND = "Find out why complaints wait for a plan and fix the hand-over."


async def issue(
    client: httpx.AsyncClient, supervisor: Actor, department: str, **extra: Any
) -> JSON:
    return await call(
        client,
        "POST",
        "/v1/rectifications",
        supervisor,
        json={"department": department, "demand": DEMAND, **extra},
        expect=201,
    )


def order_url(order: JSON, tail: str = "") -> str:
    return f"/v1/rectifications/{order['id']}{tail}"


async def test_a_response_rejected_once_then_verified_and_closed(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 14 "Done when": a rectification rejected once and then verified (R5.3); each
    change bumps the version (ETag, If-Match 412), lands on the order's history and in the
    outbox as `rectification.<action>`; illegal steps are 409 with `allowed`."""
    supervisor = await make_actor(Role.SUPERVISOR, department="SUP")
    head = await make_actor(Role.DEPT_HEAD, department="IT")
    handler = await make_actor(Role.HANDLER, department="IT")
    before = datetime.now(UTC)
    order = await issue(client, supervisor, "IT")
    assert (order["status"], order["version"], order["allowed_actions"]) == (
        "issued",
        1,
        ["respond"],
    )
    due = datetime.fromisoformat(order["due_at"])
    assert before + timedelta(days=14) <= due <= datetime.now(UTC) + timedelta(days=14)
    assert order["overdue"] is False

    answer = {"cause": "Hand-over list not read", "measures": "Daily hand-over review"}
    await refused(client, "POST", order_url(order, "/response"), handler, json=answer, status=403)
    await refused(
        client,
        "POST",
        order_url(order, "/response"),
        head,
        json=answer,
        headers={"If-Match": '"v7"'},
        status=412,
    )
    responded = await call(
        client,
        "POST",
        order_url(order, "/response"),
        head,
        json=answer,
        headers={"If-Match": '"v1"'},
    )
    assert (responded["status"], responded["version"]) == ("responded", 2)
    assert responded["cause"] == answer["cause"]
    assert await not_allowed(client, "POST", order_url(order, "/response"), head, json=answer) == [
        "accept",
        "reject",
    ]

    verify = order_url(order, "/verification")
    problem = await refused(
        client, "POST", verify, supervisor, json={"accepted": False}, status=422
    )
    assert problem["errors"][0]["field"] == "body.note"
    await refused(client, "POST", verify, head, json={"accepted": True}, status=403)
    rejected = await call(
        client,
        "POST",
        verify,
        supervisor,
        json={"accepted": False, "note": "No evidence the review happens"},
    )
    assert (rejected["status"], rejected["version"]) == ("issued", 3)
    assert rejected["verification_note"] == "No evidence the review happens"

    again = {"cause": answer["cause"], "measures": "Review minutes filed in the wiki, see p. 12"}
    await call(client, "POST", order_url(order, "/response"), head, json=again)
    await not_allowed(client, "POST", order_url(order, "/close"), supervisor)
    verified = await call(client, "POST", verify, supervisor, json={"accepted": True})
    assert (verified["status"], verified["allowed_actions"]) == ("verified", ["close"])
    response = await client.post(order_url(order, "/close"), headers=supervisor.headers)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v6"'
    closed = response.json()
    assert (closed["status"], closed["version"], closed["allowed_actions"]) == ("closed", 6, [])
    assert await not_allowed(client, "POST", verify, supervisor, json={"accepted": True}) == []

    history = await call(client, "GET", order_url(order, "/timeline"), head)
    assert [(e["seq"], e["action"]) for e in history["items"]] == [
        (1, "issue"),
        (2, "respond"),
        (3, "reject"),
        (4, "respond"),
        (5, "accept"),
        (6, "close"),
    ]
    assert history["items"][2]["note"] == "No evidence the review happens"
    assert history["items"][2]["actor_id"] == str(supervisor.id)
    assert history["items"][3]["after"]["measures"] == again["measures"]

    async with session_maker() as session:
        messages = (
            await session.execute(
                sa.select(OutboxMessage.type, OutboxMessage.payload)
                .where(OutboxMessage.type.like("rectification.%"))
                .where(OutboxMessage.payload["data"]["id"].astext == order["id"])
                .order_by(OutboxMessage.id)
            )
        ).all()
    assert [m.type for m in messages] == [
        "rectification.issued",
        "rectification.responded",
        "rectification.rejected",
        "rectification.responded",
        "rectification.verified",
        "rectification.closed",
    ]
    assert [m.payload["data"]["version"] for m in messages] == [1, 2, 3, 4, 5, 6]
    assert {m.payload["data"]["department"] for m in messages} == {"IT"}


async def test_a_department_sees_only_its_own_orders(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """R5.3: a department sees its own orders and 404 for another's (as for none at all);
    supervisors and admins see every order; only supervisors issue them."""
    supervisor = await make_actor(Role.SUPERVISOR, department="SUP")
    admin = await make_actor(Role.ADMIN)
    it_head = await make_actor(Role.DEPT_HEAD, department="IT")
    it_handler = await make_actor(Role.HANDLER, department="IT")
    ops_head = await make_actor(Role.DEPT_HEAD, department="OPS")
    reporter = await make_actor(Role.REPORTER, department="IT")
    it_order = await issue(client, supervisor, "IT")
    ops_order = await issue(client, supervisor, "OPS")

    for who in (it_head, it_handler):
        assert (await call(client, "GET", order_url(it_order), who))["id"] == it_order["id"]
        await refused(client, "GET", order_url(ops_order), who, status=404)
        await refused(client, "GET", order_url(ops_order, "/timeline"), who, status=404)
        listed = await call(client, "GET", "/v1/rectifications", who)
        assert [o["department"] for o in listed["items"]] == ["IT"]
    await refused(
        client,
        "POST",
        order_url(it_order, "/response"),
        ops_head,
        json={"cause": "x", "measures": "y"},
        status=404,
    )
    await refused(client, "GET", order_url(it_order), reporter, status=404)
    assert (await call(client, "GET", "/v1/rectifications", reporter))["items"] == []
    await refused(client, "GET", f"/v1/rectifications/{uuid.uuid4()}", it_head, status=404)

    for who in (supervisor, admin):
        listed = await call(client, "GET", "/v1/rectifications", who)
        assert {o["id"] for o in listed["items"]} >= {it_order["id"], ops_order["id"]}
    only_ops = await call(client, "GET", "/v1/rectifications?department=OPS", supervisor)
    assert {o["department"] for o in only_ops["items"]} == {"OPS"}

    body = {"department": "IT", "demand": DEMAND}
    await refused(client, "POST", "/v1/rectifications", it_head, json=body, status=403)
    unknown = await refused(
        client,
        "POST",
        "/v1/rectifications",
        supervisor,
        json={"department": "NOPE", "demand": DEMAND, "due_at": "2001-01-01T00:00:00Z"},
        status=422,
    )
    assert {e["field"] for e in unknown["errors"]} == {"body.department", "body.due_at"}


async def test_orders_are_located_tagged_and_listed_in_keyset_pages(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """Issue 11 item 3 (the shapes every route shares, each with one home in app/core): a new
    order answers 201 with its `Location` and `ETag`; the list pages newest first (limit,
    `next_cursor`, a `Link` to the next page, no order twice); `If-Match: *` accepts any
    version and a weak ETag none (RFC 9110 section 13.1.1)."""
    supervisor = await make_actor(Role.SUPERVISOR, department="SUP")
    head = await make_actor(Role.DEPT_HEAD, department="IT")
    response = await client.post(
        "/v1/rectifications",
        json={"department": "IT", "demand": DEMAND},
        headers=supervisor.headers,
    )
    assert response.status_code == 201, response.text
    first = response.json()
    assert response.headers["Location"] == order_url(first)
    assert response.headers["ETag"] == '"v1"'
    second, third = [await issue(client, supervisor, "IT") for _ in range(2)]

    page = await client.get("/v1/rectifications?department=IT&limit=2", headers=head.headers)
    assert [o["id"] for o in page.json()["items"]] == [third["id"], second["id"]]
    url, rel = page.headers["Link"].split("; ")
    assert rel == 'rel="next"'
    assert page.json()["next_cursor"] in url
    last = await client.get(url.strip("<>"), headers=head.headers)
    assert [o["id"] for o in last.json()["items"]] == [first["id"]]
    assert last.json()["next_cursor"] is None
    assert "Link" not in last.headers

    answer = {"cause": "Hand-over list not read", "measures": "Daily hand-over review"}
    weak = {"If-Match": 'W/"v1"'}
    await refused(
        client, "POST", order_url(first, "/response"), head, json=answer, headers=weak, status=412
    )
    responded = await client.post(
        order_url(first, "/response"), json=answer, headers={**head.headers, "If-Match": "*"}
    )
    assert responded.status_code == 200, responded.text
    assert responded.headers["ETag"] == '"v2"'
