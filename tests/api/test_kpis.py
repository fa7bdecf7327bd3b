"""`GET /v1/kpis`: the appraisal indicators of R5.4 over a period (product.md section 4)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import Event
from app.rules.vocabulary import Role, Status
from tests.api import flow
from tests.api.flow import BUSINESS_ISSUE, url
from tests.conftest import Actor, MakeActor, intake_body

# A window nobody else writes into: the events of each test are moved there.
START = datetime(2001, 1, 1, tzinfo=UTC)
PERIOD = {"from": "2001-01-01T00:00:00Z", "to": "2002-01-01T00:00:00Z"}


async def _event(
    client: httpx.AsyncClient,
    who: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    *,
    day: int = 10,
    **columns: Any,
) -> uuid.UUID:
    """An event taken in through the API, then placed in the test window with `columns`."""
    response = await client.post("/v1/events", json=intake_body(), headers=who.headers)
    assert response.status_code == 201, response.text
    event_id = uuid.UUID(response.json()["id"])
    created = START + timedelta(days=day)
    async with session_maker() as session:
        await session.execute(
            sa.update(Event)
            .where(Event.id == event_id)
            .values(created_at=created, reported_at=created, **columns)
        )
        await session.commit()
    return event_id


def _resolved(hours: float, *, late: bool = False, day: int = 10) -> dict[str, Any]:
    created = START + timedelta(days=day)
    resolved = created + timedelta(hours=hours)
    return {
        "status": "resolved",
        "resolved_at": resolved,
        "resolve_by": resolved - timedelta(hours=1) if late else resolved + timedelta(hours=1),
    }


async def _kpis(client: httpx.AsyncClient, who: Actor, **params: str) -> httpx.Response:
    return await client.get("/v1/kpis", params={**PERIOD, **params}, headers=who.headers)


@pytest.fixture
async def supervisor(make_actor: MakeActor) -> Actor:
    return await make_actor(Role.SUPERVISOR, department="SUP")


async def test_per_department_counts_rates_and_means(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.4: on-time rate over the resolved, recurrence rate over all, satisfaction means."""
    first = await _event(
        client, desk, session_maker, lead_department="IT", satisfaction_score=4, **_resolved(10)
    )
    await _event(
        client,
        desk,
        session_maker,
        lead_department="IT",
        satisfaction_unreachable=True,
        **_resolved(30, late=True),
    )
    await _event(
        client, desk, session_maker, lead_department="IT", status="closed", recurrence_of=first
    )
    await _event(client, desk, session_maker, lead_department="OPS", status="cancelled")
    await _event(client, desk, session_maker, day=400, lead_department="IT")  # outside

    response = await _kpis(client, supervisor)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["from"] == "2001-01-01T00:00:00Z"
    assert report["group_by"] == "department"
    assert report["department_scope"] is None
    rows = {r["key"]: r for r in report["groups"]}
    assert set(rows) == {"IT", "OPS"}
    it = rows["IT"]
    assert (it["events"], it["open"], it["resolved"], it["closed"]) == (3, 2, 2, 1)
    assert it["resolved_on_time"] == 1
    assert it["on_time_rate"] == 0.5
    assert it["mean_resolution_hours"] == 20.0
    assert it["recurrences"] == 1
    assert it["recurrence_rate"] == round(1 / 3, 4)
    assert it["satisfaction"] == {"responses": 1, "mean_score": 4.0, "unreachable": 1}
    ops = rows["OPS"]
    assert (ops["events"], ops["cancelled"], ops["open"]) == (1, 1, 0)
    assert ops["on_time_rate"] is None  # nothing resolved: nothing to measure
    assert report["totals"]["events"] == 4
    assert report["totals"]["on_time_rate"] == 0.5


async def test_grouping_by_assignee_and_category(
    client: httpx.AsyncClient,
    desk: Actor,
    supervisor: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    handler = await make_actor(Role.HANDLER, department="IT")
    await _event(
        client,
        desk,
        session_maker,
        lead_department="IT",
        assignee_id=handler.id,
        category="business_issue",
    )
    await _event(client, desk, session_maker, category="customer_complaint")

    by_assignee = (await _kpis(client, supervisor, group_by="assignee")).json()
    by_category = (await _kpis(client, supervisor, group_by="category")).json()

    assert {r["key"]: r["events"] for r in by_assignee["groups"]} == {str(handler.id): 1, None: 1}
    assert by_assignee["groups"][-1]["key"] is None  # "none yet" sorts last
    assert {r["key"]: r["events"] for r in by_category["groups"]} == {
        "business_issue": 1,
        "customer_complaint": 1,
    }


async def test_department_head_sees_only_events_their_department_leads(
    client: httpx.AsyncClient,
    desk: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R5.4: indicators are part of each department's own review."""
    head = await make_actor(Role.DEPT_HEAD, department="IT")
    await _event(client, desk, session_maker, lead_department="IT")
    await _event(client, desk, session_maker, lead_department="OPS")

    report = (await _kpis(client, head)).json()

    assert report["department_scope"] == "IT"
    assert [(r["key"], r["events"]) for r in report["groups"]] == [("IT", 1)]
    assert report["totals"]["events"] == 1


@pytest.mark.parametrize("role", [Role.REPORTER, Role.HANDLER, Role.INTAKE_AGENT, Role.INTEGRATION])
async def test_other_roles_are_refused(
    client: httpx.AsyncClient, make_actor: MakeActor, role: Role
) -> None:
    who = await make_actor(role, department="IT")
    response = await _kpis(client, who)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"from": "2002-01-01T00:00:00Z", "to": "2001-01-01T00:00:00Z"}, "before"),
        ({"from": "2001-01-01T00:00:00Z", "to": "2004-01-01T00:00:00Z"}, "at most"),
        ({"from": "2001-01-01T00:00:00", "to": "2002-01-01T00:00:00Z"}, "zone"),
        ({"from": "2001-01-01T00:00:00Z", "to": "2002-01-01T00:00:00Z", "group_by": "x"}, ""),
        ({"to": "2002-01-01T00:00:00Z"}, ""),
    ],
)
async def test_bad_periods_are_422(
    client: httpx.AsyncClient, supervisor: Actor, params: dict[str, str], fragment: str
) -> None:
    response = await client.get("/v1/kpis", params=params, headers=supervisor.headers)
    assert response.status_code == 422, response.text
    assert fragment in response.text


async def test_without_a_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/kpis", params=PERIOD)
    assert response.status_code == 401


async def test_an_empty_period_has_no_groups_and_zero_totals(
    client: httpx.AsyncClient, supervisor: Actor
) -> None:
    report = (await _kpis(client, supervisor)).json()
    assert report["groups"] == []
    assert report["totals"]["events"] == 0
    assert report["totals"]["on_time_rate"] is None


async def test_satisfaction_recorded_in_the_loop_counts_and_a_reopen_clears_it(
    client: httpx.AsyncClient, make_actor: MakeActor, supervisor: Actor
) -> None:
    """R5.4, R6.2: the score the desk records is what the indicator averages; a reopened
    loop needs a new score, so the old one no longer counts."""
    cast = await flow.make_cast(make_actor, BUSINESS_ISSUE.lead)
    event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.REVIEWED)  # scored 5 on the way
    start = datetime.fromisoformat(event["created_at"]) - timedelta(seconds=1)
    period = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()}

    async def it_satisfaction() -> dict[str, Any]:
        response = await client.get("/v1/kpis", params=period, headers=supervisor.headers)
        assert response.status_code == 200, response.text
        rows = {r["key"]: r for r in response.json()["groups"]}
        return dict(rows[BUSINESS_ISSUE.lead]["satisfaction"])

    recorded = await it_satisfaction()
    reopened = await client.post(
        url(event["id"], "/reopen"),
        json={"reason": "The reporter called again"},
        headers=cast.head.headers,
    )
    assert reopened.status_code == 200, reopened.text

    assert recorded["responses"] == 1
    assert recorded["mean_score"] is not None
    assert (await it_satisfaction())["responses"] == 0
