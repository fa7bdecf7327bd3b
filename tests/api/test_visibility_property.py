"""One visibility rule (issue 11, item 2): the pure rule `rules.permissions.may_see` is the
source, and the ONE SQL builder (`app/events/repository/visibility.py`) answers the same for
every principal and event row, on every path that reads or locks an event: get by id (through
which the timeline, checklist, notes and actions read too), a link's `sees_event`, the list,
and the row lock every change takes (`lock_visible`). The view decided with it (staff when
involved, rules.views) follows the rule as well. Callers are people or service accounts, and
events may name a directory user as their reporter (issue 16 item 3: a person named so sees
the event, a service account does not)."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.auth import Principal
from app.core.db import driver_connection
from app.directory.models import User
from app.events import repository
from app.events.models import Event, ImprovementAction, PlanStep
from app.events.repository import EventFilter
from app.events.views import view_of
from app.rules.permissions import may_see
from app.rules.views import event_view
from app.rules.vocabulary import Role, Status

USERS: Final = 4
DEPARTMENTS: Final = ("IT", "OPS", "CS")
NOW: Final = datetime(2026, 6, 1, 12, tzinfo=UTC)
PROPERTY: Final = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Caller:
    roles: frozenset[Role]
    department: str | None
    user: int  # index into the example's users
    service_account: bool


@dataclass(frozen=True)
class Row:
    """An event's visibility facts, users as indexes into the example's users."""

    created_by: int
    reporter_user: int | None  # `reporter.user_id`
    lead: str | None
    cooperating: frozenset[str]
    step_owners: frozenset[int]
    action_departments: frozenset[str]
    id: uuid.UUID = field(default_factory=uuid.uuid4)


users_index = st.integers(0, USERS - 1)
callers = st.lists(
    st.builds(
        Caller,
        roles=st.frozensets(st.sampled_from(list(Role)), max_size=3),
        department=st.sampled_from((None, *DEPARTMENTS)),
        user=users_index,
        service_account=st.booleans(),
    ),
    min_size=1,
    max_size=3,
)
rows = st.lists(
    st.builds(
        Row,
        created_by=users_index,
        reporter_user=st.none() | users_index,
        lead=st.sampled_from((None, *DEPARTMENTS)),
        cooperating=st.frozensets(st.sampled_from(DEPARTMENTS)),
        step_owners=st.frozensets(users_index, max_size=2),
        action_departments=st.frozensets(st.sampled_from(DEPARTMENTS), max_size=2),
    ),
    min_size=1,
    max_size=4,
)


async def _insert(
    session: AsyncSession, users: list[uuid.UUID], drawn: list[Row], tag: str
) -> None:
    """The users, the events (marked with the external system `tag` for the list), their plan
    steps and their improvement actions."""
    for user in users:
        await session.execute(sa.insert(User).values(id=user, name="generated", roles=["reporter"]))
    later = NOW + timedelta(days=1)
    for row in drawn:
        await session.execute(
            sa.insert(Event).values(
                id=row.id,
                ref=f"T-{row.id.hex[:24]}",
                status=Status.IN_PROGRESS,
                title="Visibility",
                description="A generated event",
                channel="web",
                reported_at=NOW,
                reporter_name="Generated",
                created_by=users[row.created_by],
                reporter_user_id=None if row.reporter_user is None else users[row.reporter_user],
                external_system=tag,
                external_id=str(row.id),
                involved_departments=[],
                involved_people=[],
                intake_department="CS",
                lead_department=row.lead,
                cooperating_departments=sorted(row.cooperating),
                plan_discussed_with=[],
                respond_by=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        for position, owner in enumerate(sorted(row.step_owners)):
            await session.execute(
                sa.insert(PlanStep).values(
                    event_id=row.id,
                    position=position,
                    title="Step",
                    owner_id=users[owner],
                    due_at=later,
                )
            )
        for department in sorted(row.action_departments):
            await session.execute(
                sa.insert(ImprovementAction).values(
                    event_id=row.id, description="Action", department=department, due_at=later
                )
            )


def _rule(principal: Principal, users: list[uuid.UUID], row: Row, *, as_reporter: bool) -> bool:
    """`may_see` on the row's facts (`as_reporter=False`: seen other than as its reporter)."""
    named = row.reporter_user is not None and users[row.reporter_user] == principal.user_id
    return may_see(
        principal.roles,
        department=principal.department,
        is_reporter=as_reporter and users[row.created_by] == principal.user_id,
        is_named_reporter=as_reporter and named,
        person=not principal.service_account,
        lead=row.lead,
        cooperating=row.cooperating,
        owns_step=any(users[owner] == principal.user_id for owner in row.step_owners),
        action_departments=row.action_departments,
    )


def _principal(caller: Caller, users: list[uuid.UUID]) -> Principal:
    return Principal(
        user_id=users[caller.user],
        api_key_id=uuid.uuid4(),
        name="generated",
        roles=caller.roles,
        department_id=None,
        department=caller.department,
        service_account=caller.service_account,
    )


async def _check_one(
    session: AsyncSession, principal: Principal, users: list[uuid.UUID], row: Row
) -> None:
    """Get, `sees_event` and the row lock answer as the rule does; so does the view."""
    expected = _rule(principal, users, row, as_reporter=True)
    case = (sorted(principal.roles), principal.department, principal.user_id, row)
    got = await repository.visible_row(session, str(row.id), principal)
    assert (got is not None) is expected, ("get", case)
    if got is not None:
        involved = _rule(principal, users, row, as_reporter=False)
        assert view_of(got, principal) is event_view(principal.roles, involved=involved), case
    assert await repository.sees_event_in(session, row.id, principal) is expected, ("sees", case)
    locked = await repository.lock_visible(session, str(row.id), principal)
    assert (locked is not None) is expected, ("lock", case)


# Issue 16 item 3, always tried: a person and a service account, each named as the reporter
# of an event someone else took in.
NAMED_REPORTER_ROW = Row(
    created_by=1,
    reporter_user=0,
    lead=None,
    cooperating=frozenset(),
    step_owners=frozenset(),
    action_departments=frozenset(),
)


@given(drawn_callers=callers, drawn_rows=rows)
@example(
    drawn_callers=[
        Caller(frozenset({Role.REPORTER}), None, 0, service_account=False),
        Caller(frozenset({Role.INTEGRATION}), None, 0, service_account=True),
        Caller(frozenset({Role.HANDLER}), "IT", 0, service_account=False),
    ],
    drawn_rows=[NAMED_REPORTER_ROW],
)
@PROPERTY
async def test_every_sql_form_of_visibility_equals_the_rule(
    session_maker: async_sessionmaker[AsyncSession],
    drawn_callers: list[Caller],
    drawn_rows: list[Row],
) -> None:
    users = [uuid.uuid4() for _ in range(USERS)]
    tag = f"prop-{uuid.uuid4().hex[:12]}"
    async with session_maker() as session:
        await _insert(session, users, drawn_rows, tag)
        for caller in drawn_callers:
            principal = _principal(caller, users)
            for row in drawn_rows:
                await _check_one(session, principal, users, row)
            page = await repository.list_visible(
                await driver_connection(session),
                principal,
                EventFilter(external_system=tag),
                cursor=None,
                limit=50,
                now=NOW,
            )
            wanted = {r.id for r in drawn_rows if _rule(principal, users, r, as_reporter=True)}
            assert {r["id"] for r in page} == wanted, ("list", caller)
        await session.rollback()
