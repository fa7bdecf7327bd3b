"""The list's `overdue` filter is the rule's table (issue 11 item 4; R1.3.1, product.md
section 3): `rules.deadlines.STAGE_DUE` rendered by the repository answers like
`rules.deadlines.is_overdue` for every status and due date."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.auth import Principal
from app.core.db import driver_connection
from app.events import repository
from app.events.models import Event
from app.events.repository import EventFilter
from app.rules.deadlines import DueDate, is_overdue
from app.rules.vocabulary import Role, Status
from tests.conftest import Actor

NOW: Final = datetime(2026, 3, 2, 12, tzinfo=UTC)


async def test_overdue_filter_answers_as_the_rule(
    session_maker: async_sessionmaker[AsyncSession], admin: Actor
) -> None:
    tag = f"overdue-{uuid.uuid4().hex[:8]}"
    expected: dict[uuid.UUID, bool] = {}
    async with session_maker() as session:
        # Each status with each one due date passed and the others ahead, and none passed.
        for status in Status:
            for passed in (*DueDate, None):
                due = {d: NOW + timedelta(hours=-1 if d is passed else 1) for d in DueDate}
                event_id = uuid.uuid4()
                await session.execute(
                    sa.insert(Event).values(
                        id=event_id,
                        ref=f"T-{event_id.hex[:24]}",
                        status=status,
                        title="Overdue",
                        description="A generated event",
                        channel="web",
                        reported_at=NOW,
                        reporter_name="Generated",
                        created_by=admin.id,
                        external_system=tag,
                        external_id=str(event_id),
                        involved_departments=[],
                        involved_people=[],
                        intake_department="CS",
                        cooperating_departments=[],
                        plan_discussed_with=[],
                        created_at=NOW,
                        updated_at=NOW,
                        **{d.value: moment for d, moment in due.items()},
                    )
                )
                expected[event_id] = is_overdue(status, due, NOW)
        principal = Principal(
            user_id=admin.id,
            api_key_id=uuid.uuid4(),
            name="admin",
            roles=frozenset({Role.ADMIN}),
            department_id=None,
            department=None,
            service_account=False,
        )
        connection = await driver_connection(session)
        for overdue in (True, False):
            rows = await repository.list_visible(
                connection,
                principal,
                EventFilter(external_system=tag, overdue=overdue),
                cursor=None,
                limit=200,
                now=NOW,
            )
            assert {r["id"] for r in rows} == {i for i, late in expected.items() if late is overdue}
        assert sum(expected.values()) == 6  # one due date of each open status
        await session.rollback()
