"""The events left `reported` are folded into the reporting rollup by the runner (issue 14
item 5, R7.2; migration 7b4e1c9d2f58): the job folds those reported an hour ago or more and no
newer one; folding changes no figure of any report (trends, appraisals, KPIs); a folded event
classified afterwards moves in the rollup like any other; two runners folding at once fold each
event once; and the rollup still equals the sums computed from the events alone."""

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import httpx
import pytest
import sqlalchemy as sa
from asyncpg import Pool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.events.models import Event
from app.jobs import FOLD_REPORTED_EVENTS, service_jobs
from app.reporting import repository
from app.reporting.service import FOLD_AFTER
from app.rules.vocabulary import Role
from app.runner.runner import Runner
from tests.api.flow import classified
from tests.api.test_rollup_property import rollup_equals_direct
from tests.conftest import Actor, CommittedKey, MakeActor, intake_body

START: Final = datetime(2005, 3, 7, tzinfo=UTC)  # a Monday; a window of its own
FIRST, END = date(2005, 3, 1), date(2005, 4, 1)


@pytest.fixture
async def supervisor(make_actor: MakeActor) -> Actor:
    return await make_actor(Role.SUPERVISOR, department="SUP")


async def _taken_in(client: httpx.AsyncClient, who: Actor) -> uuid.UUID:
    response = await client.post("/v1/events", json=intake_body(), headers=who.headers)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def _placed(
    client: httpx.AsyncClient,
    who: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    day: int,
    **columns: Any,
) -> uuid.UUID:
    """An event taken in through the API and moved back to START + day."""
    event_id = await _taken_in(client, who)
    at = START + timedelta(days=day)
    async with session_maker() as session:
        await session.execute(
            sa.update(Event)
            .where(Event.id == event_id)
            .values(created_at=at, reported_at=at, respond_by=at + timedelta(hours=4), **columns)
        )
        await session.commit()
    return event_id


async def _reports(client: httpx.AsyncClient, who: Actor) -> list[Any]:
    """Every report over the window, as the client reads it."""
    period = {"from": FIRST.isoformat(), "to": END.isoformat()}
    found = []
    for path, params in (
        ("/v1/trends", {"interval": "week", "by": "category"}),
        ("/v1/trends", {"interval": "day", "by": "department"}),
        ("/v1/trends", {"interval": "month", "by": "severity"}),
        ("/v1/appraisals", {"group_by": "department"}),
        ("/v1/kpis", {"group_by": "category"}),
    ):
        if path == "/v1/kpis":  # times, not days
            period = {k: f"{v}T00:00:00Z" for k, v in period.items()}
        response = await client.get(path, params={**period, **params}, headers=who.headers)
        assert response.status_code == 200, response.text
        found.append(response.json())
    return found


async def _rollup_equals_direct(connection: Any) -> None:
    """The rollup (with the events it leaves out) equals the events alone over the window."""
    await rollup_equals_direct(connection, (("day", FIRST, END),))


async def _in_rollup(connection: Any) -> float:
    """The window's events as the rollup alone counts them (without those it leaves out)."""
    window = repository.Window(FIRST, END, utcnow().date())
    rows = await repository.sums(
        connection, window, dim="department", reported=False, measures=("events",)
    )
    return sum(r["events"] or 0 for r in rows)


async def _folded(session_maker: async_sessionmaker[AsyncSession], *ids: uuid.UUID) -> list[bool]:
    async with session_maker() as session:
        found = dict((await session.execute(sa.select(Event.id, Event.rollup_folded))).all())
    return [found[i] for i in ids]


async def test_the_job_folds_what_waited_an_hour_and_no_report_changes(
    app: Any,
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """The runner's job folds the events still `reported` an hour after their report (two of
    2005 here), not the one reported now nor any past `reported`; every report reads the same
    before and after; a folded event classified afterwards leaves its folded cells and counts
    with its category, and the rollup equals the direct sums at every step."""
    assert FOLD_REPORTED_EVENTS in service_jobs()
    waiting = [await _placed(client, desk, session_maker, day) for day in (1, 9)]
    classified_before = await _placed(
        client, desk, session_maker, 2, status="classified", category="business_issue"
    )
    just_now = await _taken_in(client, desk)
    before = await _reports(client, supervisor)
    async with app.state.db.report_connection() as connection:
        assert await _in_rollup(connection) == 1  # the classified event alone
        await _rollup_equals_direct(connection)

    runner = Runner(session_maker, [FOLD_REPORTED_EVENTS], poll_seconds=1.0)
    assert await runner.run(FOLD_REPORTED_EVENTS) >= 2
    assert await _folded(session_maker, *waiting, classified_before, just_now) == [
        True,
        True,
        False,
        False,
    ]
    assert await _reports(client, supervisor) == before
    async with app.state.db.report_connection() as connection:
        assert await _in_rollup(connection) == 3
        await _rollup_equals_direct(connection)

    # An hour on, the event reported now is folded too.
    later = Runner(session_maker, [FOLD_REPORTED_EVENTS], clock=lambda: utcnow() + FOLD_AFTER)
    assert await later.run(FOLD_REPORTED_EVENTS) >= 1
    assert await _folded(session_maker, just_now) == [True]

    await classified(
        client,
        desk,
        str(waiting[0]),
        category="emergency",
        subcategory="safety_accident",
        impact={},
    )
    after = await _reports(client, supervisor)
    weekly = {(b["key"], b["start"]): b["reported"] for b in after[0]["buckets"] if b["reported"]}
    assert weekly == {
        (None, "2005-03-14"): 1,  # day 9, still reported and folded
        ("business_issue", "2005-03-07"): 1,
        ("emergency", "2005-03-07"): 1,  # day 1, folded then classified: counted once
    }
    async with app.state.db.report_connection() as connection:
        assert await _in_rollup(connection) == 3
        await _rollup_equals_direct(connection)


async def _insert_reported(engine: AsyncEngine, creator: uuid.UUID, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    async with engine.begin() as conn:
        for n, event_id in enumerate(ids):
            at = START + timedelta(days=n % 3, hours=n)
            await conn.execute(
                sa.insert(Event).values(
                    id=event_id,
                    ref=f"F-{event_id.hex[:24]}",
                    status="reported",
                    title="Fold",
                    description="Left reported",
                    channel="web",
                    reporter_name="Generated",
                    created_by=creator,
                    involved_departments=[],
                    involved_people=[],
                    intake_department="CS",
                    cooperating_departments=[],
                    plan_discussed_with=[],
                    created_at=at,
                    updated_at=at,
                    reported_at=at,
                    respond_by=at + timedelta(hours=4),
                )
            )
    return ids


async def test_two_runners_folding_at_once_fold_each_event_once(
    engine: AsyncEngine, pool: Pool, committed_key: CommittedKey
) -> None:
    """Committed events, two transactions at once. A fold skips the events another holds (SKIP
    LOCKED: it returns at once with the others); a second fold waits for the rollup rows a first
    one holds, then folds what the first left; each event is folded once, and the rollup equals
    the direct sums, also after the folded events are deleted (their cells go with them)."""
    before = START + timedelta(days=30)
    fold = "SELECT report_rollup_fold($1, $2)"
    async with pool.acquire() as first, pool.acquire() as second:
        await first.fetchval(fold, before, 100_000)  # any other test's left before ours
        ids = await _insert_reported(engine, committed_key.user_id, 9)
        async with first.transaction():
            held = await first.fetch(
                "SELECT id FROM event WHERE id = ANY($1) ORDER BY created_at LIMIT 3 FOR UPDATE",
                ids,
            )
            # The three held are skipped, not waited for.
            assert await asyncio.wait_for(second.fetchval(fold, before, 4), timeout=5) == 4
        async with first.transaction():
            # Three of the five left (the held ones among them); the same weeks and months.
            assert await first.fetchval(fold, before, 3) == 3
            other = asyncio.create_task(second.fetchval(fold, before, 100))
            done, _ = await asyncio.wait({other}, timeout=0.5)
            assert not done  # waiting for the rollup rows the first transaction holds
        assert await asyncio.wait_for(other, timeout=10) == 2
        folded = await first.fetchval(
            "SELECT count(*) FROM event WHERE rollup_folded AND id = ANY($1)", ids
        )
        assert (folded, len(held)) == (9, 3)
        async with first.transaction(readonly=True):
            assert await _in_rollup(first) == 9
            await _rollup_equals_direct(first)
        await first.execute("DELETE FROM event WHERE id = ANY($1)", ids)
        async with first.transaction(readonly=True):
            await _rollup_equals_direct(first)
