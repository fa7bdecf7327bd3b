"""Intake (R3.1; product.md sections 2, 4, 7): shape, deadlines, external refs, bad input."""

import asyncio
import re
from datetime import datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.idempotency_models import IdempotencyRecord
from app.events import repository
from app.events.models import Event
from app.events.repository import hot
from app.outbox.models import OutboxMessage
from app.rules.vocabulary import Role
from tests.conftest import Actor, CommittedKey, MakeActor, intake_body

REF = re.compile(r"^EV-\d{4}-\d{6,}$")


async def _event_count(maker: async_sessionmaker[AsyncSession], actor: Actor) -> int:
    async with maker() as session:
        count = await session.scalar(
            sa.select(sa.func.count()).select_from(Event).where(Event.created_by == actor.id)
        )
    return int(count or 0)


async def test_intake_creates_reported_event_with_ref_location_and_etag(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    response = await client.post("/v1/events", json=intake_body(), headers=reporter.headers)
    assert response.status_code == 201
    event = response.json()
    assert REF.match(event["ref"])
    assert event["ref"].startswith(f"EV-{datetime.now().year}-")  # noqa: DTZ005
    assert event["status"] == "reported"
    assert event["version"] == 1
    assert event["intake_department"] == "CS"
    assert response.headers["location"] == f"/v1/events/{event['id']}"
    assert response.headers["etag"] == '"v1"'
    reported = datetime.fromisoformat(event["reported_at"])
    assert datetime.fromisoformat(event["respond_by"]) - reported == timedelta(hours=8)


async def test_urgent_event_gets_thirty_minute_response_clock_and_outbox_message(
    client: httpx.AsyncClient, reporter: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """R3.1.3: urgent events start the emergency path at once."""
    response = await client.post(
        "/v1/events", json=intake_body(urgent=True), headers=reporter.headers
    )
    event = response.json()
    reported = datetime.fromisoformat(event["reported_at"])
    assert datetime.fromisoformat(event["respond_by"]) - reported == timedelta(minutes=30)
    async with session_maker() as session:
        types = set(
            await session.scalars(
                sa.select(OutboxMessage.type).where(OutboxMessage.event_id == event["id"])
            )
        )
    assert types == {"event.reported", "event.urgent"}


async def test_refs_are_unique_and_increasing(client: httpx.AsyncClient, reporter: Actor) -> None:
    refs = []
    for _ in range(3):
        response = await client.post("/v1/events", json=intake_body(), headers=reporter.headers)
        refs.append(response.json()["ref"])
    numbers = [int(r.rsplit("-", 1)[1]) for r in refs]
    assert numbers == sorted(numbers)
    assert len(set(refs)) == 3


async def test_known_external_ref_returns_the_existing_event(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    helpdesk = await make_actor(Role.INTEGRATION)
    body = intake_body(external_ref={"system": "zendesk", "id": "T-1001"})
    first = await client.post("/v1/events", json=body, headers=helpdesk.headers)
    assert first.status_code == 201
    second = await client.post("/v1/events", json=body, headers=helpdesk.headers)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    other_system = await client.post(
        "/v1/events",
        json=intake_body(external_ref={"system": "jira", "id": "T-1001"}),
        headers=helpdesk.headers,
    )
    assert other_system.status_code == 201
    assert other_system.json()["id"] != first.json()["id"]


async def test_an_external_ref_of_an_event_one_may_not_see_is_refused_saying_nothing_of_it(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """Review of issue 10, item 11: the pair is unique service-wide (never a duplicate), so
    another integration's intake with it is refused; the refusal is its own problem type and
    tells nothing of the event (no id, ref or status, not that it is hidden from the caller):
    that the pair is taken is all any answer could not hide (README, API conventions)."""
    first, second = await make_actor(Role.INTEGRATION), await make_actor(Role.INTEGRATION)
    body = intake_body(external_ref={"system": "zendesk", "id": "T-7"})
    made = await client.post("/v1/events", json=body, headers=first.headers)
    assert made.status_code == 201
    refused = await client.post("/v1/events", json=body, headers=second.headers)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/external-ref-taken")
    assert [e["field"] for e in problem["errors"]] == ["body.external_ref"]
    for told in (made.json()["id"], made.json()["ref"], "see", "reported"):
        assert told not in refused.text


async def test_intake_is_never_refused_for_a_missing_contact(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    """R3.1.2, R3.1.3: an urgent hotline report without any contact is recorded at once; the
    contact becomes a gate of the feedback to the reporter instead (its checklist says so)."""
    response = await client.post(
        "/v1/events",
        json=intake_body(reporter={"name": "Anon"}, channel="hotline", urgent=True),
        headers=reporter.headers,
    )
    assert response.status_code == 201, response.text
    checklist = await client.get(
        f"/v1/events/{response.json()['id']}/checklist", headers=reporter.headers
    )
    contact = [i for i in checklist.json()["items"] if i["code"] == "reporter.contact"]
    assert [(i["stage"], i["done"]) for i in contact] == [("feedback_given", False)]
    phone_only = await client.post(
        "/v1/events",
        json=intake_body(reporter={"name": "Bo", "phone": "+49 30 1234567"}),
        headers=reporter.headers,
    )
    assert phone_only.status_code == 201


async def test_unknown_involved_department_is_422(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    response = await client.post(
        "/v1/events",
        json=intake_body(involved_departments=["IT", "NOPE"]),
        headers=reporter.headers,
    )
    assert response.status_code == 422
    assert "NOPE" in response.json()["detail"]


async def test_unknown_field_is_rejected_with_field_error(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    response = await client.post(
        "/v1/events", json=intake_body(priority="high"), headers=reporter.headers
    )
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("/validation-error")
    assert any(e["field"] == "body.priority" for e in problem["errors"])


async def test_wrong_enum_and_missing_fields_list_each_field(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    body = intake_body(channel="pigeon")
    del body["title"]
    response = await client.post("/v1/events", json=body, headers=reporter.headers)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"body.channel", "body.title"} <= fields


async def test_strings_are_bounded(client: httpx.AsyncClient, reporter: Actor) -> None:
    response = await client.post(
        "/v1/events", json=intake_body(title="x" * 201), headers=reporter.headers
    )
    assert response.status_code == 422
    response = await client.post(
        "/v1/events", json=intake_body(title="   "), headers=reporter.headers
    )
    assert response.status_code == 422


async def test_time_without_zone_is_rejected(client: httpx.AsyncClient, reporter: Actor) -> None:
    response = await client.post(
        "/v1/events", json=intake_body(occurred_at="2026-11-20T10:00:00"), headers=reporter.headers
    )
    assert response.status_code == 422
    ok = await client.post(
        "/v1/events",
        json=intake_body(occurred_at="2026-11-20T10:00:00+01:00"),
        headers=reporter.headers,
    )
    assert ok.status_code == 201


async def test_malformed_json_is_400_problem(client: httpx.AsyncClient, reporter: Actor) -> None:
    response = await client.post(
        "/v1/events",
        content=b'{"title": "unterminated',
        headers={**reporter.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-json")


async def test_oversize_body_is_413(client: httpx.AsyncClient, reporter: Actor) -> None:
    body = intake_body(description="x" * 1_100_000)
    response = await client.post("/v1/events", json=body, headers=reporter.headers)
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")


async def test_recurrence_must_point_at_an_existing_event(
    client: httpx.AsyncClient, reporter: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """R3.1.2, product.md section 4: an unknown recurrence_of is a 422 naming the field, and
    nothing is written (no event, no Idempotency-Key record: the key stays usable)."""
    first = (await client.post("/v1/events", json=intake_body(), headers=reporter.headers)).json()
    linked = await client.post(
        "/v1/events", json=intake_body(recurrence_of=first["id"]), headers=reporter.headers
    )
    assert linked.status_code == 201
    assert linked.json()["recurrence_of"] == first["id"]
    for headers in (reporter.headers, {**reporter.headers, "Idempotency-Key": "recur-unknown"}):
        missing = await client.post(
            "/v1/events",
            json=intake_body(recurrence_of="00000000-0000-7000-8000-000000000000"),
            headers=headers,
        )
        assert missing.status_code == 422
        assert [e["field"] for e in missing.json()["errors"]] == ["recurrence_of"]
    assert await _event_count(session_maker, reporter) == 2
    async with session_maker() as session:
        stored = sa.select(IdempotencyRecord).where(IdempotencyRecord.key == "recur-unknown")
        assert await session.scalar(stored) is None


async def test_concurrent_intake_gets_unique_refs(
    committing_client: httpx.AsyncClient, committed_key: CommittedKey
) -> None:
    """Refs come from a sequence: safe on real concurrent connections, no hot counter row."""
    headers = {"Authorization": f"Bearer {committed_key.token}"}
    responses = await asyncio.gather(
        *(
            committing_client.post("/v1/events", json=intake_body(), headers=headers)
            for _ in range(20)
        )
    )
    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.json()["ref"] for r in responses}) == 20


async def test_refs_keep_growing_past_six_digits(
    client: httpx.AsyncClient, reporter: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    async with session_maker() as session:
        previous = await session.scalar(sa.text("SELECT last_value FROM event_ref_seq"))
        await session.execute(sa.text("SELECT setval('event_ref_seq', 999998)"))
    try:
        refs = [
            (await client.post("/v1/events", json=intake_body(), headers=reporter.headers)).json()[
                "ref"
            ]
            for _ in range(3)
        ]
        assert [r.rsplit("-", 1)[1] for r in refs] == ["999999", "1000000", "1000001"]
    finally:
        async with session_maker() as session:
            # Sequences are not transactional: put it back past anything used before.
            await session.execute(
                sa.text("SELECT setval('event_ref_seq', greatest(:v, 1000001))"), {"v": previous}
            )


async def test_intake_response_is_exactly_what_get_returns(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """product.md section 4: intake renders its response before the single insert (it is also
    what an Idempotency-Key stores), so it must be the stored event, field for field, with the
    same ETag and a Location that GET answers. R3.1.2: everything recorded comes back."""
    helpdesk = await make_actor(Role.INTEGRATION)
    body = intake_body(
        urgent=True,
        occurred_at="2026-11-20T09:15:00.123456Z",
        reporter={"name": "Ana Ruiz", "phone": "+49 30 1234567", "external_id": "crm-77"},
        involved_departments=["IT", "OPS", "IT"],
        involved_people=["Bo Lind"],
        external_ref={"system": "zendesk", "id": "T-42"},
    )
    created = await client.post("/v1/events", json=body, headers=helpdesk.headers)
    assert created.status_code == 201, created.text
    read = await client.get(created.headers["location"], headers=helpdesk.headers)
    assert read.status_code == 200
    assert created.json() == read.json()
    assert created.headers["etag"] == read.headers["etag"]
    assert created.headers["location"] == f"/v1/events/{read.json()['id']}"
    assert created.json()["involved_departments"] == ["IT", "OPS"]


async def test_intake_response_matches_get_for_times_with_an_offset(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    """product.md section 4 (times are RFC 3339 with zone): the pre-rendered intake response
    (and the first response an Idempotency-Key replays) must show the time as a GET does."""
    body = intake_body(occurred_at="2026-11-20T10:00:00+01:00")
    created = await client.post("/v1/events", json=body, headers=reporter.headers)
    assert created.status_code == 201
    read = await client.get(created.headers["location"], headers=reporter.headers)
    assert created.json()["occurred_at"] == read.json()["occurred_at"]


async def test_intake_columns_match_the_event_table(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """The single intake statement casts every parameter by hand (`INTAKE_COLUMNS`): each cast
    is the column's type in the catalog, every NOT NULL column is written, and the columns it
    leaves out are nullable without a default, because the response rendered before the insert
    shows them as null (but those no read shows: the rollup's `rollup_folded`)."""
    async with session_maker() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT attname, format_type(atttypid, NULL), attnotnull, atthasdef"
                    " FROM pg_attribute WHERE attrelid = 'event'::regclass"
                    " AND attnum > 0 AND NOT attisdropped"
                )
            )
        ).all()
        casts = {
            name: await session.scalar(
                sa.text("SELECT format_type(to_regtype(:t), NULL)"), {"t": sql_type}
            )
            for name, sql_type in repository.INTAKE_COLUMNS
        }
    catalog = {name: sql_type for name, sql_type, _, _ in rows}
    assert set(catalog) == set(repository.EVENT_COLUMNS)
    assert len(casts) == len(repository.INTAKE_COLUMNS), "a column is written twice"
    assert casts == {name: catalog.get(name) for name in casts}
    left_out = [(name, not_null or has_default) for name, _, not_null, has_default in rows]
    shown = set(hot.READ_COLUMNS)
    assert [n for n, filled in left_out if filled and n not in casts and n in shown] == []
    assert set(repository.EVENT_COLUMNS) - shown - set(casts) == {"rollup_folded"}
