"""Reading events: get by id or ref, keyset pages, filters, and visibility (product.md s1, s4)."""

from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import Event
from app.rules.vocabulary import Role
from tests.api.flow import report as _event
from tests.conftest import Actor, MakeActor


async def _lead(
    maker: async_sessionmaker[AsyncSession], event_id: str, lead: str, cooperating: list[str]
) -> None:
    """Put an event under a department directly (assignment is tested elsewhere)."""
    async with maker() as session:
        await session.execute(
            sa.update(Event)
            .where(Event.id == event_id)
            .values(lead_department=lead, cooperating_departments=cooperating, status="assigned")
        )
        await session.commit()


async def test_get_by_id_and_by_ref(client: httpx.AsyncClient, reporter: Actor) -> None:
    event = await _event(client, reporter)
    by_id = await client.get(f"/v1/events/{event['id']}", headers=reporter.headers)
    by_ref = await client.get(f"/v1/events/{event['ref'].lower()}", headers=reporter.headers)
    assert by_id.json() == by_ref.json()
    assert by_id.headers["etag"] == '"v1"'


async def test_unknown_event_is_404_problem(client: httpx.AsyncClient, desk: Actor) -> None:
    for ident in ("EV-2026-999999", "00000000-0000-7000-8000-000000000000", "nonsense"):
        response = await client.get(f"/v1/events/{ident}", headers=desk.headers)
        assert response.status_code == 404
        assert response.json()["type"].endswith("/not-found")


async def test_keyset_pages_cover_everything_once(client: httpx.AsyncClient, desk: Actor) -> None:
    created = [(await _event(client, desk, title=f"Paged {i}"))["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "q": "Paged"}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/events", params=params, headers=desk.headers)
        assert response.status_code == 200
        page = response.json()
        seen += [e["id"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            break
        assert 'rel="next"' in response.headers["link"]
        assert "cursor=" in response.headers["link"]
    assert pages == 3
    assert seen == list(reversed(created))


async def test_bad_cursor_and_limit_are_client_errors(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    bad = await client.get("/v1/events", params={"cursor": "!!notacursor"}, headers=desk.headers)
    assert bad.status_code == 400
    assert bad.json()["type"].endswith("/invalid-cursor")
    too_big = await client.get("/v1/events", params={"limit": 10_000}, headers=desk.headers)
    assert too_big.status_code == 422
    bad_status = await client.get("/v1/events", params={"status": "open"}, headers=desk.headers)
    assert bad_status.status_code == 422


async def test_filters(
    client: httpx.AsyncClient, desk: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    urgent = await _event(client, desk, title="Server room flooding", urgent=True)
    plain = await _event(client, desk, title="Printer jams on floor two")
    await _lead(session_maker, plain["id"], "OPS", ["IT"])

    async def ids(**params: Any) -> set[str]:
        response = await client.get("/v1/events", params=params, headers=desk.headers)
        assert response.status_code == 200, response.text
        return {e["id"] for e in response.json()["items"]}

    assert urgent["id"] in await ids(urgent="true")
    assert plain["id"] not in await ids(urgent="true")
    assert plain["id"] in await ids(status="assigned")
    assert urgent["id"] in await ids(status=["reported", "assigned"])
    assert plain["id"] in await ids(department="IT")
    assert plain["id"] in await ids(department="OPS")
    assert urgent["id"] not in await ids(department="OPS")
    assert await ids(q="flooding") == {urgent["id"]}
    assert urgent["id"] not in await ids(overdue="true")
    assert urgent["id"] in await ids(overdue="false")
    assert (
        await ids(created_from="2000-01-01T00:00:00Z", created_to="2000-01-02T00:00:00Z") == set()
    )
    assert await ids(severity="major") == set()
    bad_range = await client.get(
        "/v1/events",
        params={"created_from": "2026-01-02T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"},
        headers=desk.headers,
    )
    assert bad_range.status_code == 422


async def test_overdue_when_response_deadline_passed(
    client: httpx.AsyncClient, desk: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await _event(client, desk)
    async with session_maker() as session:
        await session.execute(
            sa.update(Event)
            .where(Event.id == event["id"])
            .values(respond_by=sa.func.now() - sa.text("interval '1 minute'"))
        )
        await session.commit()
    response = await client.get("/v1/events", params={"overdue": "true"}, headers=desk.headers)
    assert event["id"] in {e["id"] for e in response.json()["items"]}


async def test_visibility_across_two_departments(
    client: httpx.AsyncClient,
    desk: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Handlers see what their department leads or cooperates on; 404 otherwise, lists too."""
    it_handler = await make_actor(Role.HANDLER, department="IT")
    ops_head = await make_actor(Role.DEPT_HEAD, department="OPS")
    log_handler = await make_actor(Role.HANDLER, department="LOG")
    it_event = await _event(client, desk, title="IT led")
    ops_event = await _event(client, desk, title="OPS led with LOG")
    await _lead(session_maker, it_event["id"], "IT", [])
    await _lead(session_maker, ops_event["id"], "OPS", ["LOG"])

    async def visible(actor: Actor) -> set[str]:
        response = await client.get("/v1/events", headers=actor.headers)
        return {e["id"] for e in response.json()["items"]}

    assert await visible(it_handler) == {it_event["id"]}
    assert await visible(ops_head) == {ops_event["id"]}
    assert await visible(log_handler) == {ops_event["id"]}
    assert {it_event["id"], ops_event["id"]} <= await visible(desk)

    hidden = await client.get(f"/v1/events/{ops_event['id']}", headers=it_handler.headers)
    assert hidden.status_code == 404
    hidden_timeline = await client.get(
        f"/v1/events/{ops_event['ref']}/timeline", headers=it_handler.headers
    )
    assert hidden_timeline.status_code == 404
    shown = await client.get(f"/v1/events/{ops_event['id']}", headers=log_handler.headers)
    assert shown.status_code == 200


async def test_reporters_and_integrations_see_only_their_own(
    client: httpx.AsyncClient, reporter: Actor, make_actor: MakeActor
) -> None:
    other = await make_actor(Role.REPORTER, department="HR")
    bridge = await make_actor(Role.INTEGRATION)
    mine = await _event(client, reporter)
    theirs = await _event(client, other)
    pushed = await _event(client, bridge, external_ref={"system": "crm", "id": "42"})
    listed = await client.get("/v1/events", headers=reporter.headers)
    assert {e["id"] for e in listed.json()["items"]} == {mine["id"]}
    assert (
        await client.get(f"/v1/events/{theirs['id']}", headers=reporter.headers)
    ).status_code == 404
    bridge_list = await client.get("/v1/events", headers=bridge.headers)
    assert {e["id"] for e in bridge_list.json()["items"]} == {pushed["id"]}
