"""Who receives a message about an event (issue 13 item 2 and issue 16 item 3, R3.4.1): the
visibility rule of reading, here for endpoint owners; a person named as the event's reporter
receives it in the reporter view, a service account so named does not."""

import uuid
from datetime import UTC, datetime

import pytest

from app.rules.views import EventView
from app.rules.vocabulary import Role
from app.webhooks.audience import EventFacts, Receiver, view_for

OWNER = uuid.uuid4()


def _receiver(*, person: bool, roles: frozenset[Role] = frozenset({Role.INTEGRATION})) -> Receiver:
    return Receiver(
        endpoint_id=uuid.uuid4(),
        owner_id=OWNER,
        roles=roles,
        department=None,
        event_types=None,
        departments=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        person=person,
    )


def _facts(*, created_by: uuid.UUID, reporter_user: uuid.UUID | None) -> EventFacts:
    return EventFacts(
        id=uuid.uuid4(),
        version=1,
        created_by=created_by,
        lead="LOG",
        cooperating=(),
        involved=(),
        step_owners=frozenset(),
        action_departments=frozenset(),
        reporter_user=reporter_user,
    )


@pytest.mark.parametrize(
    ("person", "reporter_user", "view"),
    [
        (True, OWNER, EventView.REPORTER),
        (False, OWNER, None),
        (True, uuid.uuid4(), None),
        (True, None, None),
    ],
)
def test_a_person_named_as_reporter_receives_the_reporter_view(
    person: bool, reporter_user: uuid.UUID | None, view: EventView | None
) -> None:
    facts = _facts(created_by=uuid.uuid4(), reporter_user=reporter_user)
    assert view_for(_receiver(person=person), "event.classified", facts) is view


def test_who_took_it_in_receives_it_and_an_admin_sees_everything() -> None:
    took_in = _facts(created_by=OWNER, reporter_user=None)
    assert view_for(_receiver(person=False), "event.reported", took_in) is EventView.REPORTER
    admin = _receiver(person=True, roles=frozenset({Role.ADMIN}))
    other = _facts(created_by=uuid.uuid4(), reporter_user=None)
    assert view_for(admin, "event.reported", other) is EventView.STAFF
