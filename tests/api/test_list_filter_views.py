"""The list's filters follow the caller's view (review of issue 10, items 1 and 6;
app/rules/views.py `LIST_FILTER_FIELDS`; R6.1).

A filter matches on fields of the event, so it would answer questions about fields the
caller's view does not show ("is my report's severity major?", "which department leads it?").
A caller who sees every event in the reporter view (reporters, integrations) gets 422 naming
such a filter; for a handler or head, whose view differs per event, such a filter holds only
on the events they see in the staff view. `involved` is read once per row.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.auth import Principal
from app.core.db import driver_connection
from app.directory.models import User
from app.events import repository
from app.events.models import Event, ImprovementAction
from app.events.repository import EventFilter
from app.events.views import view_of
from app.rules.views import LIST_FILTER_FIELDS, LIST_SORT_FIELDS, EventView, event_view
from app.rules.vocabulary import Role, Severity
from tests.api import flow
from tests.api.flow import BUSINESS_ISSUE, COORDINATION, call
from tests.api.test_visibility_property import (
    DEPARTMENTS,
    NOW,
    PROPERTY,
    USERS,
    Caller,
    Row,
    _insert,
    _principal,
    _rule,
    callers,
    rows,
)
from tests.conftest import Actor, MakeActor

# Each filter (or sort) that reads a field the reporter view does not show, with a value.
HIDDEN: dict[str, str] = {
    "severity": "major",
    "department": "IT",
    "assignee_id": str(uuid.uuid4()),
    "overdue": "true",
    "due_before": "2030-01-01T00:00:00Z",
    "breached": "false",
    "sort": "due_at",
}
SHOWN: dict[str, str] = {
    "status": "reported",
    "category": "business_issue",
    "urgent": "false",
    "created_from": "2020-01-01T00:00:00Z",
    "created_to": "2100-01-01T00:00:00Z",
    "q": "invoice",
    "external_system": "crm",
    "updated_since": "2020-01-01T00:00:00Z",
}


async def _ids(client: httpx.AsyncClient, actor: Actor, **params: Any) -> set[str]:
    page = await call(client, "GET", "/v1/events?" + _query(params), actor)
    return {item["id"] for item in page["items"]}


def _query(params: dict[str, Any]) -> str:
    return str(httpx.QueryParams(params))


async def test_a_reporter_view_caller_may_not_filter_on_hidden_fields(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """Item 1: reporters and integrations get 422 naming each filter on a hidden field; the
    filters on what they see still work."""
    for role in (Role.REPORTER, Role.INTEGRATION):
        caller = await make_actor(role)
        await flow.report(client, caller)
        for name, value in HIDDEN.items():
            problem = await flow.refused(
                client, "GET", f"/v1/events?{name}={value}", caller, status=422
            )
            assert problem["type"].endswith("/validation-error"), problem
            assert [e["field"] for e in problem["errors"]] == [f"query.{name}"], problem
            assert name in problem["detail"]
        both = await flow.refused(
            client, "GET", "/v1/events?severity=major&department=IT", caller, status=422
        )
        assert [e["field"] for e in both["errors"]] == ["query.department", "query.severity"]
        for name, value in SHOWN.items():
            await call(client, "GET", f"/v1/events?{_query({name: value})}", caller)
        await call(client, "GET", "/v1/events?sort=updated_at", caller)


async def test_a_handler_s_hidden_filters_hold_only_where_they_are_involved(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """Item 1: an IT handler who reported an event led by OPS sees it in the reporter view; a
    filter on its lead department, severity, assignee or clock never matches it (it would
    tell them what their view hides), while it matches IT's own events as before."""
    cast = await flow.make_cast(make_actor, "IT")
    ops = await flow.make_cast(make_actor, "OPS")
    own = await flow.intake(client, cast.handler, COORDINATION)  # led by OPS, important
    await flow.classify(client, cast.desk, own["id"], COORDINATION)
    await flow.assign(client, cast.desk, own["id"], assignee=ops.handler)
    led = await flow.intake(client, cast.reporter, BUSINESS_ISSUE)  # led by IT, general
    await flow.classify(client, cast.desk, led["id"], BUSINESS_ISSUE)
    await flow.assign(client, cast.desk, led["id"], assignee=cast.handler)

    unfiltered = await call(client, "GET", "/v1/events", cast.handler)
    views = {item["id"]: item["view"] for item in unfiltered["items"]}
    assert views == {own["id"]: "reporter", led["id"]: "staff"}

    assert await _ids(client, cast.handler, department="OPS") == set()
    assert await _ids(client, cast.handler, department="IT") == {led["id"]}
    assert await _ids(client, cast.handler, severity="important") == set()
    assert await _ids(client, cast.handler, severity=["important", "general"]) == {led["id"]}
    assert await _ids(client, cast.handler, assignee_id=str(ops.handler.id)) == set()
    assert await _ids(client, cast.handler, assignee_id=str(cast.handler.id)) == {led["id"]}
    for flag in ("true", "false"):
        assert own["id"] not in await _ids(client, cast.handler, overdue=flag)
        assert own["id"] not in await _ids(client, cast.handler, breached=flag)
    assert await _ids(client, cast.handler, overdue="false") == {led["id"]}
    assert await _ids(client, cast.handler, due_before="2100-01-01T00:00:00Z") == {led["id"]}
    assert await _ids(client, cast.handler, sort="due_at") == {led["id"]}
    # Filters on what the reporter view shows still find their own report.
    assert await _ids(client, cast.handler, category="internal_coordination") == {own["id"]}
    # Staff of OPS, who lead it, filter on it as before.
    assert own["id"] in await _ids(client, ops.head, department="OPS", severity="important")


def test_every_list_parameter_is_classified_by_view(app: FastAPI) -> None:
    """Item 1: each query parameter of `GET /v1/events` is a paging parameter, the sort, the
    `format` (JSON or CSV) or a filter that `rules.views.LIST_FILTER_FIELDS` classifies, so a
    new filter cannot skip the view check."""
    operation = app.openapi()["paths"]["/v1/events"]["get"]
    names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert names == set(LIST_FILTER_FIELDS) | {"limit", "cursor", "sort", "format"}
    [sort] = [p for p in operation["parameters"] if p["name"] == "sort"]
    schema = sort["schema"]
    enums = [option["enum"] for option in schema.get("anyOf", [schema]) if "enum" in option]
    assert [set(values) for values in enums] == [set(LIST_SORT_FIELDS)]


# ---- item 6: `involved` once per row -------------------------------------------------------


def _loops(plan: Any, relation: str) -> int:
    """How many times the plan scanned `relation` (EXPLAIN ANALYZE's actual loops)."""
    if isinstance(plan, list):
        return sum(_loops(node, relation) for node in plan)
    if not isinstance(plan, dict):
        return 0
    own = plan.get("Actual Loops", 0) if plan.get("Relation Name") == relation else 0
    children = [plan["Plan"]] if "Plan" in plan else plan.get("Plans", [])
    return int(own) + sum(_loops(child, relation) for child in children)


async def _action_scans(session: AsyncSession, sql: str, args: list[Any]) -> int:
    connection = await driver_connection(session)
    plan = await connection.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args)
    if isinstance(plan, str):
        plan = json.loads(plan)
    return _loops(plan, "improvement_action")


async def test_involved_is_read_once_per_row(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Item 6: a handler's get and list read whether they are involved (its EXISTS over plan
    steps and improvement actions) once per row, not once per use: the improvement-action
    subquery runs once for the row of a get, and once for a list row seen only through an
    improvement action, also with a filter that needs `involved`."""
    me = Principal(
        user_id=uuid.uuid4(),
        api_key_id=uuid.uuid4(),
        name="handler",
        roles=frozenset({Role.HANDLER}),
        department_id=uuid.uuid4(),
        department="IT",
        service_account=False,
    )
    now = datetime.now(UTC)
    tag = f"once-{uuid.uuid4().hex[:8]}"
    own, through_action = uuid.uuid4(), uuid.uuid4()
    async with session_maker() as session:
        other = uuid.uuid4()
        await session.execute(
            sa.insert(User),
            [
                {"id": other, "name": "someone", "roles": ["reporter"]},
                {"id": me.user_id, "name": "me", "roles": ["handler"]},
            ],
        )
        for event_id, creator, ref in ((own, me.user_id, "A"), (through_action, other, "B")):
            await session.execute(
                sa.insert(Event).values(
                    id=event_id,
                    ref=f"EV-1999-{ref}{uuid.uuid4().hex[:6]}",
                    status="assigned",
                    title="t",
                    description="d",
                    channel="email",
                    reported_at=now,
                    reporter_name="r",
                    created_by=creator,
                    external_system=tag,
                    external_id=ref,
                    involved_departments=[],
                    involved_people=[],
                    intake_department="CS",
                    lead_department="OPS",
                    cooperating_departments=[],
                    plan_discussed_with=[],
                    severity="general",
                    respond_by=now + timedelta(hours=8),
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.execute(
            sa.insert(ImprovementAction).values(
                event_id=through_action, description="a", department="IT", due_at=now
            )
        )
        await session.flush()
        sql, args = repository.get_query(str(own), me)
        assert await _action_scans(session, sql, args) == 1, "get"
        everything = EventFilter(external_system=tag)
        general = EventFilter(external_system=tag, severity=(Severity.GENERAL,))
        for flt in (everything, general):
            sql, args = repository.list_query(me, flt, cursor=None, limit=10, now=now)
            rows = await (await driver_connection(session)).fetch(sql, *args)
            assert {r["id"]: r["involved"] for r in rows} == (
                {own: False, through_action: True} if not flt.severity else {through_action: True}
            )
            assert await _action_scans(session, sql, args) == 2, ("list", flt)
        await session.rollback()


@given(drawn_callers=callers, drawn_rows=rows, department=st.sampled_from(DEPARTMENTS))
@PROPERTY
async def test_a_hidden_field_filter_holds_exactly_where_the_view_shows_the_field(
    session_maker: async_sessionmaker[AsyncSession],
    drawn_callers: list[Caller],
    drawn_rows: list[Row],
    department: str,
) -> None:
    """Items 1 and 6, for every caller shape: `department=` (lead or cooperating, fields of
    the staff view only) returns the visible events the caller sees in the staff view whose
    lead or cooperating department it is; every row's view follows the rule."""
    users = [uuid.uuid4() for _ in range(USERS)]
    tag = f"prop-{uuid.uuid4().hex[:12]}"
    async with session_maker() as session:
        await _insert(session, users, drawn_rows, tag)
        connection = await driver_connection(session)
        for caller in drawn_callers:
            principal = _principal(caller, users)

            def staff_view(row: Row, principal: Principal = principal) -> bool:
                involved = _rule(principal, users, row, as_reporter=False)
                return event_view(principal.roles, involved=involved) is EventView.STAFF

            flt = EventFilter(external_system=tag, department=department)
            page = await repository.list_visible(
                connection, principal, flt, cursor=None, limit=50, now=NOW
            )
            wanted = {
                r.id
                for r in drawn_rows
                if _rule(principal, users, r, as_reporter=True)
                and staff_view(r)
                and (r.lead == department or department in r.cooperating)
            }
            assert {r["id"] for r in page} == wanted, ("department", caller)
            every = await repository.list_visible(
                connection,
                principal,
                EventFilter(external_system=tag),
                cursor=None,
                limit=50,
                now=NOW,
            )
            by_id = {r.id: r for r in drawn_rows}
            for got in every:
                expected = EventView.STAFF if staff_view(by_id[got["id"]]) else EventView.REPORTER
                assert view_of(got, principal) is expected, ("view", caller)
        await session.rollback()
