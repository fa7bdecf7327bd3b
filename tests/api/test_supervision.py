"""Spot checks (R5.2; issue 14 item 1) over real events walked through the API: the seeded,
stratified sample drawn again from the frozen population, the pre-filled answers against the
facts, an overturn needs a note, completing needs every answer judged and issues the orders."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import Event
from app.rules.supervision import Member, draw
from app.rules.vocabulary import RiskFactor, Role, Status
from app.supervision.models import SpotCheckMember
from tests.api import flow
from tests.api.flow import (
    BUSINESS_ISSUE,
    COORDINATION,
    RESOLUTION,
    Cast,
    call,
    make_cast,
    missing,
    not_allowed,
    refused,
    url,
    walk,
)
from tests.conftest import Actor, MakeActor, intake_body

JSON = dict[str, Any]
QUESTIONS = ("intake_timely", "process_followed", "result_effective")


def period(**extra: Any) -> JSON:
    now = datetime.now(UTC)
    return {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(),
        **extra,
    }


async def spot_check(client: httpx.AsyncClient, who: Actor, **body: Any) -> JSON:
    return await call(client, "POST", "/v1/spot-checks", who, json=period(**body), expect=201)


def answers(item: JSON) -> dict[str, str]:
    return {q: item[q]["prefilled"] for q in QUESTIONS}


# Texts unlike each other: events that read alike are matched as recurrences (R5.4).
ON_TIME = ("Printer queue stuck", "The shared printer keeps every job waiting since Monday.")
REOPENED = ("Payroll export misses overtime", "Overtime hours are absent from the export file.")
UNSATISFIED = ("Badge reader rejects cards", "Entrance badge reader at gate two refuses staff.")
LATE = ("Supplier invoice in wrong currency", "Invoice 4411 arrived in dollars, not euros.")


async def _reopened(client: httpx.AsyncClient, cast: Cast) -> str:
    """Closed after one reopen (R3.4: the reporter was not satisfied with the first result)."""
    event = await walk(client, cast, BUSINESS_ISSUE, Status.FEEDBACK_GIVEN, text=REOPENED)
    event_id: str = event["id"]
    await call(client, "POST", url(event_id, "/reopen"), cast.desk, json={"reason": "Again"})
    await call(client, "POST", url(event_id, "/resolution"), cast.handler, json=RESOLUTION)
    await flow.give_feedback(client, cast, event_id)
    await flow.satisfaction(client, cast.desk, event_id, 4)
    await flow.review(client, cast.handler, event_id, meeting=False)
    await flow.close(client, cast.desk, event_id)
    return event_id


async def _unsatisfied(client: httpx.AsyncClient, cast: Cast) -> str:
    """Closed with a satisfaction score of 1."""
    event = await walk(
        client, cast, BUSINESS_ISSUE, Status.FEEDBACK_GIVEN, satisfied=False, text=UNSATISFIED
    )
    await flow.satisfaction(client, cast.desk, event["id"], 1)
    await flow.review(client, cast.handler, event["id"], meeting=False)
    await flow.close(client, cast.desk, event["id"])
    return str(event["id"])


async def _late_intake(
    client: httpx.AsyncClient, cast: Cast, session_maker: async_sessionmaker[AsyncSession]
) -> str:
    """Closed, but classified and assigned after its respond deadline (the deadline is moved
    before the classification in the database: the API cannot make time pass)."""
    event_id: str = (await walk(client, cast, BUSINESS_ISSUE, Status.CLOSED, text=LATE))["id"]
    async with session_maker() as session:
        await session.execute(
            sa.update(Event)
            .where(Event.id == uuid.UUID(event_id))
            .values(respond_by=Event.reported_at - timedelta(minutes=1))
        )
        await session.commit()
    return event_id


async def test_same_seed_over_the_same_population_gives_the_same_sample(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 14 "Done when": the same seed over the same frozen population gives the same
    sample; the response says how it was drawn, and the frozen population draws it again.
    Three strata (IT/general, OPS/important, the desk's unclassified), one event at least
    from each."""
    it, ops = await make_cast(make_actor, "IT"), await make_cast(make_actor, "OPS")
    for _ in range(4):
        await walk(client, it, BUSINESS_ISSUE, Status.ASSIGNED)
    for _ in range(3):
        await walk(client, ops, COORDINATION, Status.ASSIGNED)
    for _ in range(5):
        await call(client, "POST", "/v1/events", it.reporter, json=intake_body(), expect=201)
    body = {"statuses": ["reported", "assigned"], "sample_size": 4, "seed": 42}

    first = await spot_check(client, it.supervisor, **body, min_per_stratum=1)
    again = await spot_check(client, it.supervisor, **body, min_per_stratum=1)

    assert (first["seed"], first["population_size"], first["status"]) == (42, 12, "open")
    span = datetime.fromisoformat(first["to"]) - datetime.fromisoformat(first["from"])
    assert span == timedelta(days=2)
    sample = [i["event_id"] for i in first["items"]]
    assert sample == [i["event_id"] for i in again["items"]]
    assert len(sample) == len(set(sample)) == 4
    strata = {s["stratum"]: s for s in first["draw"]["strata"]}
    assert {k: (s["population"], s["minimum"]) for k, s in strata.items()} == {
        "CS/unclassified": (5, 1),
        "IT/general": (4, 1),
        "OPS/important": (3, 1),
    }
    assert sum(s["sampled"] for s in strata.values()) == 4
    assert all(s["sampled"] >= 1 for s in strata.values())
    assert first["draw"]["seed"] == 42
    assert "Efraimidis-Spirakis" in first["draw"]["method"]
    assert first["draw"]["risk_weights"] == {factor.value: 2.0 for factor in RiskFactor}

    async with session_maker() as session:
        frozen = (
            await session.scalars(
                sa.select(SpotCheckMember).where(
                    SpotCheckMember.spot_check_id == uuid.UUID(first["id"])
                )
            )
        ).all()
    assert len(frozen) == 12
    population = [
        Member(
            event_id=m.event_id,
            department=m.department,
            severity=m.severity,
            weight=m.weight,
            risk=tuple(RiskFactor(r) for r in m.risk),
        )
        for m in frozen
    ]
    redrawn = draw(population, size=4, min_per_stratum=1, seed=42)
    assert [str(m.event_id) for m in redrawn.members] == sample

    fetched = await call(client, "GET", f"/v1/spot-checks/{first['id']}", it.supervisor)
    assert [i["event_id"] for i in fetched["items"]] == sample
    listed = await call(client, "GET", "/v1/spot-checks?limit=1", it.supervisor)
    assert [c["id"] for c in listed["items"]] == [again["id"]]
    assert listed["next_cursor"] is not None


async def test_prefilled_answers_match_the_facts_and_risky_events_weigh_more(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 14 item 1: intake timely, process followed and result effective pre-filled from
    what the service knows, with the facts behind them; a reopened, an unsatisfied (score 1)
    and a late event carry their risk factor (weight 1 + 2)."""
    cast = await make_cast(make_actor, "IT")
    on_time = (await walk(client, cast, BUSINESS_ISSUE, Status.CLOSED, text=ON_TIME))["id"]
    reopened = await _reopened(client, cast)
    unsatisfied = await _unsatisfied(client, cast)
    late = await _late_intake(client, cast, session_maker)
    # The same problem again (R1.1): the same text, classified in the same category while
    # `late` is closed within the window, is matched to it as a recurrence (R5.4).
    again = await walk(client, cast, BUSINESS_ISSUE, Status.CLASSIFIED, text=LATE)
    assert again["recurrence_match_id"] == late

    check = await spot_check(
        client, cast.supervisor, sample_size=5, min_per_stratum=0, seed=7, statuses=["closed"]
    )

    assert check["population_size"] == 4
    items = {i["event_id"]: i for i in check["items"]}
    assert set(items) == {on_time, reopened, unsatisfied, late}
    passed = dict.fromkeys(QUESTIONS, "pass")
    assert answers(items[on_time]) == passed
    assert items[on_time]["result_effective"]["facts"]["recurrences"] == 0
    assert answers(items[reopened]) == {**passed, "result_effective": "fail"}
    assert answers(items[unsatisfied]) == {**passed, "result_effective": "fail"}
    assert answers(items[late]) == {**passed, "intake_timely": "fail", "result_effective": "fail"}
    assert items[late]["result_effective"]["findings"] == ["recurred"]
    assert items[late]["result_effective"]["facts"]["recurrences"] == 1

    assert items[reopened]["result_effective"]["findings"] == ["reopened"]
    assert items[reopened]["result_effective"]["facts"]["reopened"] == 1
    assert items[unsatisfied]["result_effective"]["findings"] == ["satisfaction.low"]
    assert items[unsatisfied]["result_effective"]["facts"]["satisfaction_score"] == 1
    assert items[on_time]["result_effective"]["facts"]["satisfaction_score"] == 5
    assert items[late]["intake_timely"]["findings"] == ["respond.breached"]
    facts = items[late]["intake_timely"]["facts"]
    assert datetime.fromisoformat(facts["assigned_at"]) > datetime.fromisoformat(
        facts["respond_by"]
    )
    assert items[on_time]["process_followed"]["facts"]["severity_overridden"] is False

    assert (items[on_time]["risk"], items[on_time]["weight"]) == ([], 1.0)
    assert (items[reopened]["risk"], items[reopened]["weight"]) == (["reopened"], 3.0)
    assert items[unsatisfied]["risk"] == ["low_satisfaction"]
    assert items[late]["risk"] == ["breached_deadline"]
    # Nothing is judged yet: the checker confirms or overturns.
    assert all(i[q]["answer"] is None for i in items.values() for q in QUESTIONS)
    assert all(i["judged"] is False for i in items.values())


async def test_judging_completing_and_the_orders_it_issues(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 14 items 1-2: an overturn needs a note (422 without); completing needs every
    answer judged (409 `missing`); then each failed item becomes an order on the department
    responsible for it (the intake desk for a late intake: R4.1; the lead otherwise: R4.2),
    due in the default 14 days; a completed check takes no more judgements."""
    cast = await make_cast(make_actor, "IT")
    on_time = (await walk(client, cast, BUSINESS_ISSUE, Status.CLOSED))["id"]
    unsatisfied = await _unsatisfied(client, cast)
    late = await _late_intake(client, cast, session_maker)
    check = await spot_check(client, cast.supervisor, sample_size=3, min_per_stratum=0)
    items = {i["event_id"]: i for i in check["items"]}
    base = f"/v1/spot-checks/{check['id']}"

    def item_url(event_id: str) -> str:
        return f"{base}/items/{items[event_id]['id']}"

    problem = await refused(
        client,
        "PATCH",
        item_url(on_time),
        cast.supervisor,
        json={"process_followed": {"answer": "fail"}},
        status=422,
    )
    assert [e["field"] for e in problem["errors"]] == ["body.process_followed.note"]
    overturned = await call(
        client,
        "PATCH",
        item_url(on_time),
        cast.supervisor,
        json={"process_followed": {"answer": "fail", "note": "The plan skipped the root cause"}},
    )
    assert overturned["process_followed"]["answer"] == "fail"
    assert overturned["process_followed"]["note"] == "The plan skipped the root cause"
    assert overturned["judged"] is False
    await refused(client, "PATCH", item_url(on_time), cast.supervisor, json={}, status=422)
    # Only supervisors judge.
    await refused(
        client,
        "PATCH",
        item_url(on_time),
        cast.head,
        json={"intake_timely": {"answer": "pass"}},
        status=403,
    )

    codes = await missing(client, "POST", f"{base}/complete", cast.supervisor)
    unjudged = {f"item.{i['id']}.{q}" for i in items.values() for q in QUESTIONS}
    assert set(codes) == unjudged - {f"item.{items[on_time]['id']}.process_followed"}

    for event_id, item in items.items():
        confirm = {q: {"answer": item[q]["prefilled"]} for q in QUESTIONS}
        if event_id == on_time:
            del confirm["process_followed"]
        judged = await call(client, "PATCH", item_url(event_id), cast.supervisor, json=confirm)
        assert judged["judged"] is True

    completed = await call(client, "POST", f"{base}/complete", cast.supervisor)
    assert completed["status"] == "completed"
    assert completed["completed_at"] is not None
    assert len(completed["rectification_ids"]) == 3

    listed = await call(
        client, "GET", f"/v1/rectifications?spot_check_id={check['id']}", cast.supervisor
    )
    orders = {(o["event_id"], o["department"]): o for o in listed["items"]}
    assert set(orders) == {(on_time, "IT"), (unsatisfied, "IT"), (late, "CS")}
    assert orders[(late, "CS")]["questions"] == ["intake_timely"]
    assert orders[(on_time, "IT")]["questions"] == ["process_followed"]
    assert "The plan skipped the root cause" in orders[(on_time, "IT")]["demand"]
    assert orders[(unsatisfied, "IT")]["questions"] == ["result_effective"]
    for order in orders.values():
        assert order["status"] == "issued"
        assert order["spot_check_id"] == check["id"]
        issued = datetime.fromisoformat(order["created_at"])
        assert datetime.fromisoformat(order["due_at"]) - issued == timedelta(days=14)

    assert await not_allowed(
        client, "PATCH", item_url(late), cast.supervisor, json={"intake_timely": {"answer": "pass"}}
    ) == []  # fmt: skip
    assert await not_allowed(client, "POST", f"{base}/complete", cast.supervisor) == []


async def test_spot_checks_are_the_supervisors_and_refuse_what_cannot_be_drawn(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """R5.1: only supervisors and admins run and read spot checks (403 otherwise); a size and
    a rate together, or nothing to sample, are 422."""
    cast = await make_cast(make_actor, "IT")
    admin = await make_actor(Role.ADMIN)
    await walk(client, cast, BUSINESS_ISSUE, Status.ASSIGNED)
    for who in (cast.head, cast.desk, cast.handler, cast.reporter):
        await refused(client, "POST", "/v1/spot-checks", who, json=period(), status=403)
        await refused(client, "GET", "/v1/spot-checks", who, status=403)
    await refused(
        client,
        "POST",
        "/v1/spot-checks",
        cast.supervisor,
        json=period(sample_size=2, sample_rate=0.5),
        status=422,
    )
    empty = await refused(client, "POST", "/v1/spot-checks", admin, json=period(), status=422)
    assert "nothing to sample" in empty["detail"]
    check = await spot_check(client, admin, statuses=["assigned"], sample_rate=1)
    assert check["sample_size"] == 1
    await refused(client, "GET", f"/v1/spot-checks/{uuid.uuid4()}", admin, status=404)
