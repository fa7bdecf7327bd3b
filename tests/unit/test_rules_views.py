"""The staff and reporter views of an event (app/rules/views.py; issue 10, item 7)."""

import pytest

from app.events.schemas import EventDetail, EventRead, EventReporterDetail, EventReporterRead
from app.rules.lifecycle import GATE_DESCRIPTIONS
from app.rules.views import (
    REPORTER_CHECKLIST_CODES,
    REPORTER_EVENT_FIELDS,
    EventView,
    event_view,
    note_visibilities,
    shows_checklist_item,
    shows_improvement_actions,
    shows_timeline_details,
    view_by_roles,
)
from app.rules.vocabulary import Role

R = Role
STAFF, REPORTER = EventView.STAFF, EventView.REPORTER


@pytest.mark.parametrize(
    ("roles", "involved", "view"),
    [
        ({R.ADMIN}, False, STAFF),
        ({R.SUPERVISOR}, False, STAFF),
        ({R.INTAKE_AGENT}, False, STAFF),
        ({R.REPORTER, R.INTAKE_AGENT}, False, STAFF),
        ({R.REPORTER}, False, REPORTER),
        ({R.INTEGRATION}, False, REPORTER),
        ({R.REPORTER}, True, REPORTER),  # roles that see only their own events: never staff
        ({R.HANDLER}, True, STAFF),
        ({R.DEPT_HEAD}, True, STAFF),
        ({R.REPORTER, R.HANDLER}, True, STAFF),
        ({R.HANDLER}, False, REPORTER),  # an uninvolved department's handler who reported it
        ({R.DEPT_HEAD, R.REPORTER}, False, REPORTER),
        (set(), False, REPORTER),
    ],
)
def test_the_view_follows_why_the_caller_sees_the_event(
    roles: set[Role], involved: bool, view: EventView
) -> None:
    assert event_view(roles, involved=involved) is view


def test_roles_alone_decide_except_for_handlers_and_heads() -> None:
    assert view_by_roles({R.ADMIN}) is STAFF
    assert view_by_roles({R.INTEGRATION}) is REPORTER
    assert view_by_roles({R.HANDLER}) is None
    assert view_by_roles({R.DEPT_HEAD, R.REPORTER}) is None


def test_the_reporter_schemas_show_exactly_the_rule_s_fields() -> None:
    assert set(EventReporterRead.model_fields) == REPORTER_EVENT_FIELDS | {"view"}
    assert set(EventReporterDetail.model_fields) == REPORTER_EVENT_FIELDS | {
        "view",
        "feedback",
        "satisfaction",
    }
    assert set(EventRead.model_fields) > REPORTER_EVENT_FIELDS
    hidden = set(EventDetail.model_fields) - REPORTER_EVENT_FIELDS
    assert {"steps", "grading", "routing", "assignee_id", "lead_department"} <= hidden


def test_the_reporter_view_keeps_what_concerns_the_reporter() -> None:
    assert note_visibilities(STAFF) is None
    assert note_visibilities(REPORTER) == frozenset({"reporter"})
    assert set(GATE_DESCRIPTIONS) >= REPORTER_CHECKLIST_CODES
    assert shows_checklist_item(REPORTER, "satisfaction")
    assert not shows_checklist_item(REPORTER, "plan.steps")
    assert shows_checklist_item(STAFF, "plan.steps")
    assert (shows_improvement_actions(STAFF), shows_improvement_actions(REPORTER)) == (True, False)
    assert (shows_timeline_details(STAFF), shows_timeline_details(REPORTER)) == (True, False)
