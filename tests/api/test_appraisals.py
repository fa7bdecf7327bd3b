"""`GET /v1/appraisals` (R5.4, R5.5; issue 14 item 3): every figure with its numerator,
denominator and definition, per department or named employee, marked by the policy."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import Event
from app.rules.vocabulary import Role
from app.supervision.models import Rectification, SpotCheck, SpotCheckAnswer, SpotCheckItem
from tests.conftest import Actor, MakeActor, intake_body

# A window nobody else writes into: the events of each test are moved there.
START = datetime(2001, 1, 1, tzinfo=UTC)
PERIOD = {"from": "2001-01-01", "to": "2001-02-01"}


async def place(
    client: httpx.AsyncClient,
    who: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    *,
    day: float = 10,
    **columns: Any,
) -> uuid.UUID:
    """An event taken in through the API, then placed in the window with `columns` (the
    rollup's triggers follow the update)."""
    response = await client.post("/v1/events", json=intake_body(), headers=who.headers)
    assert response.status_code == 201, response.text
    event_id = uuid.UUID(response.json()["id"])
    created = START + timedelta(days=day)
    async with session_maker() as session:
        await session.execute(
            sa.update(Event)
            .where(Event.id == event_id)
            .values(created_at=created, reported_at=created, respond_by=created, **columns)
        )
        await session.commit()
    return event_id


def hours(day: float, h: float) -> datetime:
    return START + timedelta(days=day, hours=h)


async def appraisals(client: httpx.AsyncClient, who: Actor, **params: str) -> httpx.Response:
    return await client.get("/v1/appraisals", params={**PERIOD, **params}, headers=who.headers)


@pytest.fixture
async def supervisor(make_actor: MakeActor) -> Actor:
    return await make_actor(Role.SUPERVISOR, department="SUP")


def figure(value: float | None, numerator: float, denominator: float, fid: str) -> dict[str, Any]:
    return {
        "value": value,
        "numerator": numerator,
        "denominator": denominator,
        "definition": {"id": fid, "version": 1},
    }


async def test_department_figures_carry_numerator_denominator_and_definition(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.4: on time per stage (late when finished after the due time or still unfinished
    after it), satisfaction mean, distribution and response rate."""
    # Responded on time, resolved late, closed, score 5.
    await place(
        client,
        desk,
        session_maker,
        status="closed",
        lead_department="IT",
        assigned_at=hours(10, -1),
        resolve_by=hours(11, 0),
        resolved_at=hours(11, 5),
        closed_at=hours(12, 0),
        satisfaction_score=5,
    )
    # Responded late, resolution still open and overdue; closed? no: in progress.
    await place(
        client,
        desk,
        session_maker,
        status="in_progress",
        lead_department="IT",
        assigned_at=hours(10, 3),
        resolve_by=hours(12, 0),
    )
    # Cancelled before assignment: its unfinished respond stage is not counted.
    await place(client, desk, session_maker, status="cancelled", cancelled_at=hours(10, 1))

    response = await appraisals(client, supervisor)

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["from"], report["to"], report["group_by"]) == (
        "2001-01-01",
        "2001-02-01",
        "department",
    )
    assert {d["id"] for d in report["definitions"]} >= {"on_time_rate", "recurrence_rate"}
    rows = {r["key"]: r for r in report["groups"]}
    it = rows["IT"]
    assert it["events"] == 2
    assert it["on_time_by_stage"]["respond"] == figure(0.5, 1, 2, "on_time_rate.respond")
    assert it["on_time_by_stage"]["resolve"] == figure(0.0, 0, 2, "on_time_rate.resolve")
    assert it["on_time_rate"] == figure(0.25, 1, 4, "on_time_rate")
    assert it["satisfaction"]["mean"] == figure(5.0, 5, 1, "satisfaction_mean")
    assert it["satisfaction"]["response_rate"] == figure(1.0, 1, 1, "satisfaction_response_rate")
    assert it["satisfaction"]["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}
    assert rows[None]["on_time_rate"]["denominator"] == 0  # the cancelled one: not counted
    assert report["totals"]["events"] == 3


async def test_marks_follow_the_policy_thresholds_with_reasons(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.5: below the on-time threshold: needs improvement, saying why; too few: not rated."""
    for day in range(5):
        await place(
            client,
            desk,
            session_maker,
            day=day,
            status="assigned",
            lead_department="OPS",
            assigned_at=hours(day, 2),  # after respond_by (the creation time): late
        )
    await place(client, desk, session_maker, status="assigned", lead_department="LOG")

    rows = {r["key"]: r for r in (await appraisals(client, supervisor)).json()["groups"]}

    assert rows["OPS"]["mark"] == "needs_improvement"
    assert rows["OPS"]["reasons"] == ["on_time_rate 0 < 0.8"]
    assert rows["LOG"]["mark"] == "not_rated"


async def test_employees_are_named(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.4: per employee (the assignee), with the directory's name and department."""
    handler = await make_actor(Role.HANDLER, department="IT", name="Li Wei 李伟")
    await place(
        client,
        desk,
        session_maker,
        status="assigned",
        lead_department="IT",
        assignee_id=handler.id,
        assigned_at=hours(10, -1),
    )

    report = (await appraisals(client, supervisor, group_by="employee")).json()

    row = next(r for r in report["groups"] if r["key"] == str(handler.id))
    assert (row["name"], row["department"], row["events"]) == ("Li Wei 李伟", "IT", 1)
    assert row["on_time_by_stage"]["respond"]["value"] == 1.0


async def test_recurrence_counts_against_the_department_that_closed_the_original(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R1.1, R5.4: linked, same category, original closed within the window before the new
    one was reported: a recurrence of the original's department, not the new one's."""
    original = await place(
        client,
        desk,
        session_maker,
        day=1,
        status="closed",
        category="business_issue",
        lead_department="IT",
        closed_at=hours(2, 0),
    )
    other_category = await place(
        client,
        desk,
        session_maker,
        day=1,
        status="closed",
        category="customer_complaint",
        lead_department="IT",
        closed_at=hours(2, 0),
    )
    for linked_to, category in ((original, "business_issue"), (other_category, "emergency")):
        await place(
            client,
            desk,
            session_maker,
            day=20,
            status="classified",
            category=category,
            lead_department="OPS",
            recurrence_of=linked_to,
        )

    rows = {r["key"]: r for r in (await appraisals(client, supervisor)).json()["groups"]}

    assert rows["IT"]["recurrence_rate"] == figure(0.5, 1, 2, "recurrence_rate")
    assert rows["OPS"]["recurrence_rate"]["numerator"] == 0


async def test_a_recurrence_outside_the_window_does_not_count(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.4: the original closed more than 90 days (the policy's window) before."""
    original = await place(
        client,
        desk,
        session_maker,
        day=-200,
        status="closed",
        category="business_issue",
        lead_department="IT",
        closed_at=hours(-199, 0),
    )
    await place(client, desk, session_maker, category="business_issue", recurrence_of=original)

    report = (await appraisals(client, supervisor)).json()

    assert report["totals"]["recurrence_rate"]["numerator"] == 0


async def test_rectifications_and_spot_checks_per_department(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.2, R5.3: orders issued and overdue (unanswered after their due time), and the
    share of judged spot-check answers that passed."""
    event_id = await place(client, desk, session_maker, status="closed", lead_department="IT")
    async with session_maker() as session:
        check = SpotCheck(
            status="completed",
            period_from=START,
            period_to=START,
            population_filter={},
            seed=1,
            min_per_stratum=1,
            risk_weights={},
            population_size=1,
            sample_size=1,
            strata=[],
            created_by=supervisor.id,
            completed_at=hours(15, 0),
        )
        session.add(check)
        await session.flush()
        item = SpotCheckItem(
            spot_check_id=check.id,
            event_id=event_id,
            position=0,
            stratum="IT",
            department="IT",
            weight=1.0,
            risk=[],
        )
        session.add(item)
        await session.flush()
        for question, answer in (
            ("intake_timely", "pass"),
            ("process_followed", "fail"),
            ("result_effective", "not_applicable"),
        ):
            session.add(
                SpotCheckAnswer(
                    item_id=item.id,
                    question=question,
                    prefilled=answer,
                    findings=[],
                    facts={},
                    answer=answer,
                )
            )
        for status, due in (("issued", hours(16, 0)), ("responded", hours(16, 0))):
            session.add(
                Rectification(
                    spot_check_id=check.id,
                    item_id=item.id,
                    event_id=event_id,
                    department="IT",
                    questions=["process_followed"],
                    demand="Follow the process",
                    due_at=due,
                    status=status,
                    issued_by=supervisor.id,
                    created_at=hours(15, 0),
                )
            )
        await session.commit()

    rows = {r["key"]: r for r in (await appraisals(client, supervisor)).json()["groups"]}

    it = rows["IT"]
    assert it["spot_check_pass_rate"] == figure(0.5, 1, 2, "spot_check_pass_rate")
    assert it["rectifications"] == {
        "issued": 2,
        "overdue": 1,
        "overdue_rate": figure(0.5, 1, 2, "rectification_overdue_rate"),
    }


async def test_department_heads_see_their_department_others_are_refused(
    client: httpx.AsyncClient,
    desk: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.1, R5.4: a head appraises their own department; a handler may not appraise."""
    head = await make_actor(Role.DEPT_HEAD, department="IT")
    handler = await make_actor(Role.HANDLER, department="IT")
    await place(client, desk, session_maker, status="assigned", lead_department="IT")
    await place(client, desk, session_maker, status="assigned", lead_department="OPS")

    own = (await appraisals(client, head)).json()
    refused = await appraisals(client, handler)

    assert own["department_scope"] == "IT"
    assert [r["key"] for r in own["groups"]] == ["IT"]
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"from": "2001-02-01", "to": "2001-01-01"}, "before"),
        ({"from": "2001-01-01", "to": "2004-01-01"}, "at most"),
        ({"from": "9999-12-02", "to": "9999-12-31"}, "within the years"),
        ({"from": "1000-01-01", "to": "1000-02-01", "interval": "month"}, "within the years"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/appraisals", "/v1/trends"])
async def test_bad_periods_are_refused(
    client: httpx.AsyncClient, supervisor: Actor, params: dict[str, str], problem: str, path: str
) -> None:
    """A period the reports cannot cover is a 422, never a 500 (the far future overflowed)."""
    if path == "/v1/appraisals":
        params = {k: v for k, v in params.items() if k != "interval"}
    response = await client.get(path, params=params, headers=supervisor.headers)

    assert response.status_code == 422
    assert problem in response.text


async def test_csv_has_one_row_per_group_and_the_totals(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 14 item 6: `format=csv`, UTF-8 with a byte order mark, read back by `csv`."""
    handler = await make_actor(Role.HANDLER, department="IT", name="王芳")
    await place(
        client,
        desk,
        session_maker,
        status="assigned",
        lead_department="IT",
        assignee_id=handler.id,
        assigned_at=hours(10, -1),
    )

    response = await appraisals(client, supervisor, group_by="employee", format="csv")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["key"], r["name"]) for r in rows] == [(str(handler.id), "王芳"), ("total", "")]
    assert rows[0]["on_time_rate.respond.value"] == "1.0"
    assert rows[0]["on_time_rate.definition"] == "on_time_rate@v1"


async def test_a_match_found_by_the_service_counts_as_a_link_does(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.4: `recurrence_match_id` (the similar original found at classification) counts
    like `recurrence_of`; an event both linked and matched counts once."""
    original = await place(
        client,
        desk,
        session_maker,
        day=1,
        status="closed",
        category="customer_complaint",
        lead_department="CS",
        closed_at=hours(2, 0),
    )
    await place(
        client,
        desk,
        session_maker,
        day=3,
        category="customer_complaint",
        status="classified",
        recurrence_match_id=original,
    )
    await place(
        client,
        desk,
        session_maker,
        day=4,
        category="customer_complaint",
        status="classified",
        recurrence_of=original,
        recurrence_match_id=original,
    )

    rows = {r["key"]: r for r in (await appraisals(client, supervisor)).json()["groups"]}

    assert rows["CS"]["recurrence_rate"] == figure(2.0, 2, 1, "recurrence_rate")
