"""Stage clocks, warnings and the escalation ladder on real PostgreSQL with an injected clock
(issue 12; R1.1, R1.3.1, R3.3.2, R4.1).

The runner's job (`clocks.fire_due`) is called directly with the `now` under test, in its own
session as the runner gives it; everything else goes through the API."""

import asyncio
import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events import clocks
from app.events.clock_repository import CLAIM_DUE_SQL
from app.events.models import Event, SlaFiring, StageCycle, TimelineEntry
from app.jobs import FIRE_SLA_LEVELS
from app.outbox.models import OutboxMessage
from app.policy.document import DEFAULT_POLICY_DOCUMENT
from app.rules.vocabulary import Role, Status
from app.runner.job import Piece
from tests.api import flow
from tests.api.conftest import Committed
from tests.api.flow import BUSINESS_ISSUE, Cast, url
from tests.conftest import Actor, MakeActor

LADDER = ["warn_50", "warn_80", "breach", "escalate_intake", "escalate_supervision"]


async def _fire(maker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """One run of the runner's job at `now`, committed as the runner commits a piece."""
    async with maker() as session, session.begin():
        return await clocks.fire_due(session, now=now)


async def _fired(maker: async_sessionmaker[AsyncSession], event_id: str) -> list[tuple[Any, ...]]:
    async with maker() as session:
        rows = await session.execute(
            sa.select(SlaFiring.stage, SlaFiring.cycle, SlaFiring.level)
            .where(SlaFiring.event_id == uuid.UUID(event_id))
            .order_by(SlaFiring.fired_at, SlaFiring.due_at)
        )
        return [tuple(row) for row in rows]


async def _assigned(client: httpx.AsyncClient, cast: Cast) -> dict[str, Any]:
    event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.ASSIGNED)
    assert event["sla"]["stage"] == "resolve"
    return event


async def _started(client: httpx.AsyncClient, cast: Cast, event_id: str) -> datetime:
    """When the running clock started (the last cycle of GET /sla)."""
    cycles = (await flow.call(client, "GET", url(event_id, "/sla"), cast.desk))["cycles"]
    assert cycles[-1]["finished_at"] is None
    return flow.at(cycles[-1]["started_at"])


async def test_each_level_fires_once_and_in_order(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await _assigned(client, cast)
    due = flow.at(event["sla"]["due_at"])
    started = await _started(client, cast, event["id"])
    span = due - started

    assert await _fire(session_maker, started + span * 0.4) == 0  # nothing due yet
    for moment in (0.55, 0.6, 0.85, 1.01, 1.02):
        await _fire(session_maker, started + span * moment)
    await _fire(session_maker, due + timedelta(hours=5))
    await _fire(session_maker, due + timedelta(hours=25))
    await _fire(session_maker, due + timedelta(hours=50))

    fired = await _fired(session_maker, event["id"])
    assert fired == [("resolve", 1, level) for level in LADDER]
    history = await flow.timeline(client, cast.desk, event["id"])
    actions = [e["action"] for e in history["items"]]
    assert actions[-5:] == ["sla_warning", "sla_warning", "sla_breached", "escalated", "escalated"]
    assert history["chain_valid"] is True
    async with session_maker() as session:
        types = list(
            await session.scalars(
                sa.select(OutboxMessage.type)
                .where(OutboxMessage.event_id == uuid.UUID(event["id"]))
                .where(
                    OutboxMessage.type.like("event.sla%")
                    | (OutboxMessage.type == "event.escalated")
                )
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
            )
        )
    assert types == [
        "event.sla_warning",
        "event.sla_warning",
        "event.sla_breached",
        "event.escalated",
        "event.escalated",
    ]
    sla = await flow.call(client, "GET", url(event["id"], "/sla"), cast.desk)
    resolve = sla["cycles"][-1]
    assert [level["level"] for level in resolve["levels_fired"]] == LADDER
    breach = resolve["levels_fired"][2]
    assert breach["notify"] == [
        {"user_ids": [str(cast.head.id)], "roles": ["dept_head"], "department": "IT"}
    ]


async def test_a_level_missed_while_down_fires_once_when_the_runner_is_back(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await _assigned(client, cast)
    late = flow.at(event["sla"]["due_at"]) + timedelta(hours=6)
    for _ in range(3):  # three polls after a long outage
        await _fire(session_maker, late)
    assert [level for _, _, level in await _fired(session_maker, event["id"])] == LADDER[:4]


async def test_the_head_of_the_lead_department_finds_the_escalated_event_in_the_queue(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await _assigned(client, cast)
    before = await flow.call(client, "GET", "/v1/me/queue", cast.head)
    assert event["id"] not in [i["event_id"] for i in before["items"]]
    await _fire(session_maker, flow.at(event["sla"]["due_at"]) + timedelta(minutes=1))

    queue = await flow.call(client, "GET", "/v1/me/queue", cast.head)
    items = [i for i in queue["items"] if i["event_id"] == event["id"]]
    assert [i["waiting_for"] for i in items] == ["escalation"]
    mine = await flow.call(client, "GET", "/v1/me/queue", cast.handler)
    assert [i["waiting_for"] for i in mine["items"] if i["event_id"] == event["id"]] == ["plan"]
    due = [i["due_at"] for i in mine["items"] if i["due_at"] is not None]
    assert due == sorted(due)


async def test_a_severity_change_moves_the_due_time_and_a_fired_level_does_not_fire_again(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await _assigned(client, cast)
    started = await _started(client, cast, event["id"])
    first_due = flow.at(event["sla"]["due_at"])
    await _fire(session_maker, started + (first_due - started) * 0.55)
    assert [level for _, _, level in await _fired(session_maker, event["id"])] == ["warn_50"]

    # A full outage: major, so resolve within 24 hours of the report instead of 120.
    major = await flow.call(
        client,
        "POST",
        url(event["id"], "/classification"),
        cast.desk,
        json=flow.classification(BUSINESS_ISSUE, impact={"system_outage": "full"}),
    )
    assert major["severity"] == "major"
    moved = flow.at(major["sla"]["due_at"])
    assert moved < first_due
    await _fire(session_maker, moved - timedelta(seconds=1))
    await _fire(session_maker, moved + timedelta(seconds=1))
    fired = [level for _, _, level in await _fired(session_maker, event["id"])]
    assert sorted(fired) == ["breach", "warn_50", "warn_80"]  # warn_50 once, not again


async def test_reopen_starts_a_new_cycle(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.RESOLVED)
    assert event["sla"]["stage"] == "feedback"
    reopened = await flow.call(
        client,
        "POST",
        url(event["id"], "/reopen"),
        cast.head,
        json={"reason": "The customer says it still fails"},
    )
    assert reopened["sla"]["stage"] == "resolve"
    cycles = (await flow.call(client, "GET", url(event["id"], "/sla"), cast.desk))["cycles"]
    assert [(c["stage"], c["cycle"]) for c in cycles] == [
        ("respond", 1),
        ("resolve", 1),
        ("feedback", 1),
        ("resolve", 2),
    ]
    assert [c["met"] for c in cycles] == [True, True, None, None]
    assert cycles[-1]["finished_at"] is None
    assert flow.at(cycles[-1]["due_at"]) > flow.at(cycles[1]["due_at"])
    async with session_maker() as session:
        finished = await session.scalar(
            sa.select(sa.func.count()).where(StageCycle.event_id == uuid.UUID(event["id"]))
        )
    assert finished == 3


async def test_a_closed_event_stops_its_clocks(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.CLOSED)
    assert event["sla"] is None
    async with session_maker() as session:
        row = await session.get(Event, uuid.UUID(event["id"]))
        assert row is not None
        assert (row.sla_stage, row.sla_next_at) == (None, None)
    cycles = (await flow.call(client, "GET", url(event["id"], "/sla"), cast.desk))["cycles"]
    assert [c["stage"] for c in cycles] == ["respond", "resolve", "feedback", "review"]
    assert all(c["finished_at"] is not None for c in cycles)


async def test_a_reporter_sees_the_cycles_but_not_whom_they_named(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await _assigned(client, cast)
    await _fire(session_maker, flow.at(event["sla"]["due_at"]) + timedelta(minutes=1))
    staff = await flow.call(client, "GET", url(event["id"], "/sla"), cast.desk)
    assert staff["cycles"][-1]["levels_fired"]
    mine = await flow.call(client, "GET", url(event["id"], "/sla"), cast.reporter)
    assert [c["stage"] for c in mine["cycles"]] == [c["stage"] for c in staff["cycles"]]
    assert all(c["levels_fired"] == [] for c in mine["cycles"])
    stranger = await make_actor(Role.REPORTER, department="SALES")
    await flow.refused(client, "GET", url(event["id"], "/sla"), stranger, status=404)


async def test_two_runners_fire_each_level_exactly_once(committed: Committed) -> None:
    """Two runners on their own connections, really at once, over the same due clocks."""
    cast = await committed.cast("IT")
    async with committed.client() as client:
        events = [await _assigned(client, cast) for _ in range(6)]
    latest = max(flow.at(e["sla"]["due_at"]) for e in events) + timedelta(hours=30)

    async def runner() -> int:
        total = 0
        for _ in range(5):
            total += await _fire(committed.maker, latest)
        return total

    done = await asyncio.gather(runner(), runner())
    assert sum(done) >= len(events)
    async with committed.maker() as session:
        counts = list(
            await session.execute(
                sa.select(SlaFiring.event_id, SlaFiring.level, sa.func.count())
                .where(SlaFiring.event_id.in_([uuid.UUID(e["id"]) for e in events]))
                .group_by(SlaFiring.event_id, SlaFiring.level)
            )
        )
    assert len(counts) == len(events) * len(LADDER)
    assert {count for _, _, count in counts} == {1}
    async with committed.client() as client:
        for event in events:
            history = await flow.timeline(client, cast.desk, event["id"])
            assert history["chain_valid"] is True
            fired = [e for e in history["items"] if e["action"] in clocks.TIMELINE_ACTION.values()]
            assert len(fired) == len(LADDER)


async def test_a_runner_killed_mid_firing_leaves_nothing_and_fires_after_restart(
    committed: Committed,
) -> None:
    cast = await committed.cast("IT")
    async with committed.client() as client:
        event = await _assigned(client, cast)
    late = flow.at(event["sla"]["due_at"]) + timedelta(minutes=1)
    event_id = uuid.UUID(event["id"])

    class Killed(Exception):
        pass

    async def killed_piece() -> None:
        async with committed.maker() as session, session.begin():
            await clocks.fire_due(session, now=late)
            raise Killed  # the process dies before the piece commits

    with pytest.raises(Killed):
        await killed_piece()
    async with committed.maker() as session:
        assert (
            await session.scalar(sa.select(sa.func.count()).where(SlaFiring.event_id == event_id))
            == 0
        )
        assert (
            await session.scalar(
                sa.select(sa.func.count()).where(
                    TimelineEntry.event_id == event_id, TimelineEntry.action == "sla_breached"
                )
            )
            == 0
        )
    await _fire(committed.maker, late)
    await _fire(committed.maker, late)
    assert [level for _, _, level in await _fired(committed.maker, event["id"])] == LADDER[:3]


async def test_the_partial_due_index_can_serve_the_runners_poll(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """The poll's condition implies the partial index's predicate (`sla_next_at IS NOT
    NULL`), so the planner may answer it from `ix_event_sla_next_at` alone. That it does on a
    large data set (no scan of the open events) is measured by bench/clocks.py, not here:
    a test database is too small for the planner to prefer the index on its own."""
    async with session_maker() as session:
        await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            await session.scalars(
                sa.text("EXPLAIN " + CLAIM_DUE_SQL), {"now": datetime.now(UTC), "limit": 100}
            )
        )
    assert "ix_event_sla_next_at" in plan


async def test_a_holiday_is_skipped_by_the_working_calendar(
    client: httpx.AsyncClient, admin: Actor, reporter: Actor
) -> None:
    """Working calendars count working time (R1.3.1): with tomorrow a holiday, a respond time
    longer than a working day ends exactly one day later than without it, and the clock's due
    time is that deadline."""
    holiday = datetime.now(UTC).date() + timedelta(days=1)
    document = copy.deepcopy(dict(DEFAULT_POLICY_DOCUMENT))
    document["deadlines"]["respond_hours"]["normal"] = 12  # more than one working day
    calendar = {
        "timezone": "UTC",
        "workdays": [0, 1, 2, 3, 4, 5, 6],
        "start": "09:00",
        "end": "17:00",
        "holidays": [],
    }
    dues = []
    for holidays in ([], [holiday.isoformat()]):
        document["deadlines"]["calendar"] = {**calendar, "holidays": holidays}
        await flow.call(client, "PUT", "/v1/policy", admin, json={"document": document})
        event = await flow.intake(client, reporter, BUSINESS_ISSUE)
        assert event["sla"]["due_at"] == event["respond_by"]
        dues.append(flow.at(event["respond_by"]))
    without, with_holiday = dues
    assert abs(with_holiday - without - timedelta(days=1)) < timedelta(minutes=1)
    assert with_holiday.date() != holiday


async def test_levels_fired_are_counted_by_level_and_kind_once_committed(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 16 item 5: `cle_escalation_levels_fired_total` by the policy's level id and its
    kind, counted when the runner's piece commits (`Piece.on_commit`), not before."""
    cast = await flow.make_cast(make_actor, "IT")
    event = await _assigned(client, cast)
    late = flow.at(event["sla"]["due_at"]) + timedelta(hours=50)
    kinds = {"warn_50": "warning", "warn_80": "warning", "breach": "breach"}
    kinds |= {"escalate_intake": "escalation", "escalate_supervision": "escalation"}

    def counted() -> dict[str, float]:
        return {
            level: REGISTRY.get_sample_value(
                "cle_escalation_levels_fired_total", {"level": level, "kind": kind}
            )
            or 0.0
            for level, kind in kinds.items()
        }

    before = counted()
    async with session_maker() as session, session.begin():
        piece = Piece(session=session, now=late, holder="test")
        assert await FIRE_SLA_LEVELS.work(piece) >= 1
        assert counted() == before  # not committed yet
        fired = await session.execute(
            sa.select(SlaFiring.level, sa.func.count())
            .where(SlaFiring.fired_at == late)
            .group_by(SlaFiring.level)
        )
        by_level = {row[0]: row[1] for row in fired}
    for committed in piece.on_commit:
        committed()
    assert set(by_level) == set(LADDER)
    assert {level: counted()[level] - before[level] for level in kinds} == by_level
