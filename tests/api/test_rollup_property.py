"""The reporting rollup is correct to the event (issue 14 items 3 and 5; R5.4, R7.2): over
generated events, inserted in any status and then changed (moved to another department,
assignee, category, status, stage times, satisfaction), with those still `reported` folded into
the rollup by the runner's statement before the changes, after them or never (migration
7b4e1c9d2f58), the appraisal figures equal a direct computation in Python from the events'
final facts, and every grouping of the rollup equals the same sums computed from the event
table alone."""

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import Event
from app.kpis import repository as kpi_statements
from app.reporting import repository
from app.rules.kpis import KpiGroup
from app.rules.vocabulary import Role
from tests.conftest import Actor, MakeActor

START: Final = datetime(2003, 3, 1, tzinfo=UTC)  # a window of its own
PERIOD: Final = {"from": "2003-03-01", "to": "2003-03-15"}
DEPARTMENTS: Final = (None, "IT", "OPS")
STATUSES: Final = (
    "reported",
    "classified",
    "assigned",
    "in_progress",
    "resolved",
    "feedback_given",
    "reviewed",
    "closed",
    "cancelled",
)
STAGES: Final = {
    "respond": ("respond_by", "assigned_at"),
    "resolve": ("resolve_by", "resolved_at"),
    "feedback": ("feedback_by", "feedback_at"),
    "review": ("review_by", "reviewed_at"),
}
PROPERTY: Final = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Facts:
    """An event's reporting facts; times in hours after START (None: not set)."""

    day: int  # created on START + day (may fall outside the period)
    at: int  # at this hour of the day
    status: str
    lead: str | None
    assignee: int | None  # index into the example's two handlers
    category: str | None
    due: tuple[int | None, ...]  # per stage: due hour
    done: tuple[int | None, ...]  # per stage: finished hour
    score: int | None


hour = st.none() | st.integers(0, 24 * 20)
facts = st.builds(
    Facts,
    day=st.integers(-1, 14),
    at=st.integers(0, 23),
    status=st.sampled_from(STATUSES),
    lead=st.sampled_from(DEPARTMENTS),
    assignee=st.none() | st.integers(0, 1),
    category=st.sampled_from((None, "business_issue", "emergency")),
    due=st.tuples(hour, hour, hour, hour),
    done=st.tuples(hour, hour, hour, hour),
    score=st.none() | st.integers(1, 5),
)
# Each event: how it is inserted, and what it becomes (None: left as inserted).
events = st.lists(st.tuples(facts, st.none() | facts), min_size=1, max_size=8)
# When the events still `reported` are folded into the rollup: before the changes, after them
# or never.
FOLDS: Final = ("between", "after", None)
# Far after every generated report: every event still `reported` is folded.
FOLD_BEFORE: Final = datetime(2004, 1, 1, tzinfo=UTC)


def _at(hours: int | None) -> datetime | None:
    return None if hours is None else START + timedelta(hours=hours)


def _columns(f: Facts, handlers: list[uuid.UUID]) -> dict[str, Any]:
    created = START + timedelta(days=f.day, hours=f.at)
    columns: dict[str, Any] = {
        "status": f.status,
        "created_at": created,
        "reported_at": created,
        "lead_department": f.lead,
        "assignee_id": None if f.assignee is None else handlers[f.assignee],
        "category": f.category,
        "satisfaction_score": f.score,
        "closed_at": created if f.status == "closed" else None,
        "cancelled_at": created if f.status == "cancelled" else None,
    }
    for (due, done), due_at, done_at in zip(STAGES.values(), f.due, f.done, strict=True):
        # A deadline never falls before the report: every one runs from it (the readers find
        # the events still `reported` by their report time).
        at = _at(due_at)
        columns[due] = None if at is None else max(at, created)
        columns[done] = _at(done_at)
    columns["respond_by"] = columns["respond_by"] or created  # never NULL
    return columns


def _expected(
    final: list[Facts], handlers: list[uuid.UUID], group: str
) -> dict[str | None, dict[str, float]]:
    """The figures' numerators and denominators, computed from the facts alone (R5.4)."""
    start, end = START.date(), date(2003, 3, 15)
    found: dict[str | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for f in final:
        columns = _columns(f, handlers)
        if group == "department":
            key = f.lead
        else:
            key = None if f.assignee is None else str(handlers[f.assignee])
        row = found[key]
        if start <= columns["created_at"].date() < end:
            row["events"] += 1
            row["closed"] += f.status == "closed"
            row["responses"] += f.score is not None
            row["score_sum"] += f.score or 0
        for stage, (due_column, done_column) in STAGES.items():
            due, done = columns[due_column], columns[done_column]
            if due is None or not start <= due.date() < end:
                continue
            if done is not None:
                row[f"{stage}_counted"] += 1
                row[f"{stage}_on_time"] += done <= due
            elif f.status != "cancelled":  # unfinished and overdue (the period is long past)
                row[f"{stage}_counted"] += 1
    return found


def _got(row: dict[str, Any]) -> dict[str, float]:
    got: dict[str, float] = {
        "events": row["events"],
        "closed": row["satisfaction"]["response_rate"]["denominator"],
        "responses": row["satisfaction"]["mean"]["denominator"],
        "score_sum": row["satisfaction"]["mean"]["numerator"],
    }
    for stage, figure in row["on_time_by_stage"].items():
        got[f"{stage}_counted"] = figure["denominator"]
        got[f"{stage}_on_time"] = figure["numerator"]
    return got


async def _insert(
    session: AsyncSession,
    drawn: list[tuple[Facts, Facts | None]],
    handlers: list[uuid.UUID],
    fold: str | None = None,
) -> list[Facts]:
    """Insert each event as first drawn, then change those drawn to change; with `fold`, the
    events still `reported` are folded in "between" the two or "after" them."""
    changes = []
    for first, then in drawn:
        event_id = uuid.uuid4()
        await session.execute(
            sa.insert(Event).values(
                id=event_id,
                ref=f"P-{event_id.hex[:24]}",
                title="Rollup",
                description="A generated event",
                channel="web",
                reporter_name="Generated",
                created_by=handlers[0],
                involved_departments=[],
                involved_people=[],
                intake_department="CS",
                cooperating_departments=[],
                plan_discussed_with=[],
                updated_at=START,
                **_columns(first, handlers),
            )
        )
        changes.append((event_id, then))
    if fold == "between":
        await repository.fold(session, reported_before=FOLD_BEFORE, batch=10_000)
    for event_id, then in changes:
        if then is not None:
            await session.execute(
                sa.update(Event).where(Event.id == event_id).values(**_columns(then, handlers))
            )
    if fold == "after":
        await repository.fold(session, reported_before=FOLD_BEFORE, batch=10_000)
    return [then or first for first, then in drawn]


@pytest.fixture
async def handlers(make_actor: MakeActor) -> list[Actor]:
    return [await make_actor(Role.HANDLER, department="IT") for _ in range(2)]


@pytest.fixture
async def supervisor(make_actor: MakeActor) -> Actor:
    return await make_actor(Role.SUPERVISOR, department="SUP")


# An event in each partial day of the KPI period, and one in a whole day between them.
EDGES: Final = [
    (Facts(d, h, "closed", "IT", 0, "emergency", (None,) * 4, (None,) * 4, 4), None)
    for d, h in ((0, 2), (0, 20), (5, 9), (13, 11), (13, 13))
]


@given(drawn=events, fold=st.sampled_from(FOLDS))
@example(drawn=EDGES, fold=None)
@PROPERTY
async def test_appraisal_figures_equal_a_direct_computation(
    app: FastAPI,
    client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    handlers: list[Actor],
    supervisor: Actor,
    drawn: list[tuple[Facts, Facts | None]],
    fold: str | None,
) -> None:
    ids = [h.id for h in handlers]
    async with session_maker() as session:
        savepoint = await session.begin_nested()
        final = await _insert(session, drawn, ids, fold)
        for group, param in (("department", "department"), ("employee", "employee")):
            response = await client.get(
                "/v1/appraisals", params={**PERIOD, "group_by": param}, headers=supervisor.headers
            )
            assert response.status_code == 200, response.text
            got = {r["key"]: _got(r) for r in response.json()["groups"]}
            for key, measures in _expected(final, ids, group).items():
                for name, value in measures.items():
                    assert got.get(key, {}).get(name, 0) == value, (group, key, name, final)
        await _rollup_equals_direct(app)
        await _kpis_equal_the_index_statement(app, client, supervisor)
        await savepoint.rollback()


# Partial days at both ends (the index statement) around whole days (the rollup).
KPI_FROM: Final = datetime(2003, 3, 1, 13, 30, tzinfo=timezone(timedelta(hours=8)))
KPI_TO: Final = datetime(2003, 3, 14, 12, tzinfo=UTC)
KPI_SHOWN: Final = ("events", "resolved", "closed", "cancelled", "resolved_on_time", "recurrences")


async def _kpis_equal_the_index_statement(
    app: FastAPI, client: httpx.AsyncClient, supervisor: Actor
) -> None:
    """GET /v1/kpis (rollup and partial days) equals the one index statement over the period."""
    for group in KpiGroup:
        response = await client.get(
            "/v1/kpis",
            params={"from": KPI_FROM.isoformat(), "to": KPI_TO.isoformat(), "group_by": group},
            headers=supervisor.headers,
        )
        assert response.status_code == 200, response.text
        got = {
            r["key"]: [r[m] for m in KPI_SHOWN] + [r["satisfaction"]]
            for r in response.json()["groups"]
        }
        async with app.state.db.report_connection() as connection:
            rows = await kpi_statements.counts(connection, group, KPI_FROM, KPI_TO, None)
        expected = {
            r["key"]: [r[m] for m in KPI_SHOWN]
            + [
                {
                    "responses": r["responses"],
                    "mean_score": None
                    if not r["responses"]
                    else round(r["score_sum"] / r["responses"], 2),
                    "unreachable": r["unreachable"],
                }
            ]
            for r in rows
        }
        assert got == expected, group


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal sums; seconds added up in another order may differ in their last bits."""
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=1e-9) if isinstance(a[k], float) else a[k] == b[k]
        for k in a
    )


Shape = tuple[str | None, date, date]  # (bucket unit, start, end)
SHAPES: Final[tuple[Shape, ...]] = (
    ("day", START.date(), date(2003, 3, 15)),
    (None, date(2003, 2, 1), date(2003, 5, 1)),  # whole months: the month rows
    (None, date(2003, 2, 20), date(2003, 4, 10)),  # days, a month, days
    ("month", date(2003, 2, 1), date(2003, 5, 1)),
    ("week", date(2003, 2, 20), date(2003, 4, 10)),  # days, whole weeks, days
)


async def _rollup_equals_direct(app: FastAPI) -> None:
    async with app.state.db.report_connection() as connection:
        await rollup_equals_direct(connection, SHAPES)


async def rollup_equals_direct(connection: Any, shapes: tuple[Shape, ...]) -> None:
    """Every grouping's sums from the rollup (its day rows, and its week or month rows for
    whole weeks or months; with the events it leaves out) equal those computed from the
    events alone, over each of `shapes`."""
    today = datetime.now(UTC).date()
    for dim in ("department", "assignee", "category", "severity", "root_cause"):
        for unit, start, end in shapes:
            sums = {}
            for rollup in (True, False):
                window = repository.Window(start, end, today)
                rows = await repository.sums(connection, window, dim=dim, unit=unit, rollup=rollup)
                sums[rollup] = {
                    (r["key"], r["bucket"]): {k: v for k, v in r.items() if v}
                    for r in rows
                    if any(isinstance(v, float) and v for v in r.values())
                }
            assert sums[True].keys() == sums[False].keys(), (dim, unit, start, end)
            for cell, rolled in sums[True].items():
                assert same(rolled, sums[False][cell]), (dim, unit, start, end, cell)


async def test_the_rebuild_equals_what_the_triggers_kept(
    session_maker: async_sessionmaker[AsyncSession],
    handlers: list[Actor],
) -> None:
    """`report_rollup_rebuild()` (the migration's backfill, and the bench's after its bulk
    load) recomputes from the events exactly the rows the triggers and the fold kept, day and
    month: an event still `reported` and folded counts, one not folded does not."""
    drawn = [(facts, None) for facts, _ in EDGES] + [
        (EDGES[0][0], Facts(3, 5, "cancelled", "OPS", 1, None, (30, 60, None, None), (31,) * 4, 2)),
        (Facts(-30, 1, "resolved", None, None, "emergency", (5,) * 4, (4,) * 4, None), None),
        (Facts(4, 6, "reported", "IT", 0, None, (50, None, None, None), (None,) * 4, None), None),
    ]
    table = "SELECT * FROM report_rollup ORDER BY grain, dim, day, department, value"
    async with session_maker() as session:
        await _insert(session, drawn, [h.id for h in handlers], fold="after")
        # Reported after the fold: left out of the rollup, by the triggers and the rebuild.
        await _insert(session, [(EDGES[0][0], drawn[-1][0])], [h.id for h in handlers])
        await session.flush()
        kept = [tuple(r) for r in await session.execute(sa.text(table)) if any(r[5:])]
        await session.execute(sa.text("SELECT report_rollup_rebuild()"))
        rebuilt = [tuple(r) for r in await session.execute(sa.text(table))]
        await session.rollback()

    assert kept == rebuilt
    assert {row[0] for row in rebuilt} == {"day", "week", "month"}


async def test_deleting_a_reviewed_event_takes_back_exactly_what_it_added(
    session_maker: async_sessionmaker[AsyncSession],
    handlers: list[Actor],
) -> None:
    """The delete trigger reads the root cause before the cascade takes the review: deleting a
    reviewed event leaves the rollup as it was before the event (no negative row for 'no root
    cause', no row left for its root cause)."""
    table = sa.text("SELECT * FROM report_rollup")

    async def nonzero(session: AsyncSession) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in await session.execute(table) if any(r[5:]))

    [(closed, _)] = EDGES[:1]
    async with session_maker() as session:
        before = await nonzero(session)
        await _insert(session, [(closed, None)], [h.id for h in handlers])
        event_id = await session.scalar(sa.text("SELECT id FROM event WHERE title = 'Rollup'"))
        await session.execute(
            sa.text(
                "INSERT INTO review (event_id, causes, handling, result, lessons,"
                " root_cause_code, author_id, created_at, updated_at) VALUES (:id, 'c', 'h', 'r',"
                " 'l', 'process', :author, now(), now())"
            ),
            {"id": event_id, "author": handlers[0].id},
        )
        with_review = await nonzero(session)
        await session.execute(sa.text("DELETE FROM event WHERE id = :id"), {"id": event_id})
        after = await nonzero(session)
        await session.rollback()
    assert any(row[1] == "root_cause" and row[4] == "process" for row in with_review)
    assert after == before
