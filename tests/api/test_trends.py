"""`GET /v1/trends` (R7.2; issue 14 item 5): per bucket reported, closed, open at the end,
on-time rate and mean resolution hours; the top root causes; the backlog's direction."""

import csv
import io
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import Review
from app.rules.vocabulary import Role
from tests.api.test_appraisals import hours, place
from tests.conftest import Actor, MakeActor


@pytest.fixture
async def supervisor(make_actor: MakeActor) -> Actor:
    return await make_actor(Role.SUPERVISOR, department="SUP")


async def trends(client: httpx.AsyncClient, who: Actor, **params: str) -> httpx.Response:
    query = {"from": "2001-01-01", "to": "2001-01-15", "interval": "week", **params}
    return await client.get("/v1/trends", params=query, headers=who.headers)


def buckets(report: dict[str, Any], key: str | None) -> list[tuple[Any, ...]]:
    return [
        (b["start"], b["reported"], b["closed"], b["cancelled"], b["open_at_end"])
        for b in report["buckets"]
        if b["key"] == key
    ]


async def test_weekly_buckets_count_reported_closed_and_the_backlog(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Reported in the bucket of its report, closed in that of its closing; the backlog
    carries over from before the period (2001-01-01 is a Monday)."""
    # Open since before the period: the opening backlog.
    await place(client, desk, session_maker, day=-3, status="in_progress", category="emergency")
    # Reported in week 1, closed in week 2, resolved in 24 h.
    await place(
        client,
        desk,
        session_maker,
        day=2,
        status="closed",
        category="emergency",
        resolved_at=hours(3, 0),
        closed_at=hours(9, 0),
    )
    # Reported in week 2 and cancelled in it.
    await place(
        client,
        desk,
        session_maker,
        day=8,
        status="cancelled",
        category="emergency",
        cancelled_at=hours(8, 1),
    )
    # Reported in week 2, still open.
    await place(client, desk, session_maker, day=9, status="classified", category="emergency")

    response = await trends(client, supervisor)

    assert response.status_code == 200, response.text
    report = response.json()
    assert buckets(report, "emergency") == [
        ("2001-01-01", 1, 0, 0, 2),
        ("2001-01-08", 2, 1, 1, 2),
    ]
    first = next(b for b in report["buckets"] if b["key"] == "emergency")
    assert first["mean_resolution_hours"]["value"] == 24.0
    assert report["backlog"] == {"opening": 1, "closing": 2, "direction": "growing"}


async def test_events_still_reported_count_from_their_report_only(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """The events still `reported` (which the rollup leaves out) are read from the event
    table: one reported before the period is in the opening backlog, one in it in its bucket,
    one reported after it nowhere (the reads are bounded by the report time)."""
    for day in (-3, 2, 20):
        await place(client, desk, session_maker, day=day, category="emergency")

    report = (await trends(client, supervisor)).json()

    assert buckets(report, "emergency") == [("2001-01-01", 1, 0, 0, 2), ("2001-01-08", 0, 0, 0, 2)]
    assert report["backlog"] == {"opening": 1, "closing": 2, "direction": "growing"}


async def test_on_time_rate_per_bucket_counts_stages_due_in_it(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.4 in trends: a stage counts in the bucket of its due day, late when unfinished."""
    await place(
        client,
        desk,
        session_maker,
        day=1,
        status="assigned",
        severity="major",
        assigned_at=hours(0, 23),  # before respond_by: on time
        resolve_by=hours(9, 0),  # unfinished, due in week 2: late
    )

    report = (await trends(client, supervisor, by="severity")).json()

    rates = {b["start"]: b["on_time_rate"] for b in report["buckets"] if b["key"] == "major"}
    assert (rates["2001-01-01"]["numerator"], rates["2001-01-01"]["denominator"]) == (1, 1)
    assert (rates["2001-01-08"]["numerator"], rates["2001-01-08"]["denominator"]) == (0, 1)


async def test_top_root_causes_and_by_root_cause(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R3.5.1, R7.2: the review's root-cause code, most frequent first; the rollup follows a
    review written or changed after the event (its own trigger)."""
    # Still `reported`: no review, so no root cause.
    await place(client, desk, session_maker, day=4)
    codes = ("supplier", "supplier", "training")
    for day, code in enumerate(codes):
        event_id = await place(client, desk, session_maker, day=day, status="reviewed")
        async with session_maker() as session:
            session.add(
                Review(
                    event_id=event_id,
                    causes="c",
                    handling="h",
                    result="r",
                    lessons="l",
                    root_cause_code=code,
                    author_id=desk.id,
                )
            )
            await session.commit()
    async with session_maker() as session:
        await session.execute(
            sa.update(Review)
            .where(Review.event_id == event_id)
            .values(root_cause_code="system_defect")
        )
        await session.commit()

    report = (await trends(client, supervisor, by="root_cause", interval="month")).json()

    assert report["top_root_causes"] == [
        {"code": "supplier", "events": 2},
        {"code": "system_defect", "events": 1},
    ]
    assert {b["key"]: b["reported"] for b in report["buckets"]} == {
        None: 1,
        "supplier": 2,
        "system_defect": 1,
    }
    # By another grouping the root causes are read on their own: the same top.
    by_category = (await trends(client, supervisor, by="category", interval="month")).json()
    assert by_category["top_root_causes"] == report["top_root_causes"]


async def test_daily_csv(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 14 item 6: one CSV row per bucket and key."""
    await place(client, desk, session_maker, day=1, status="classified", category="emergency")

    response = await trends(
        client, supervisor, interval="day", to="2001-01-04", format="csv", by="category"
    )

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["start"], r["reported"], r["open_at_end"]) for r in rows] == [
        ("2001-01-01", "0", "0"),
        ("2001-01-02", "1", "1"),
        ("2001-01-03", "0", "1"),
    ]


async def test_reporters_may_not_read_trends(client: httpx.AsyncClient, reporter: Actor) -> None:
    response = await trends(client, reporter)

    assert response.status_code == 403
