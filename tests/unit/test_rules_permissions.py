"""Who may see and do what beside the matrix (issue 11 item 4; R3.3.2, R3.5.2; product.md
section 1): the extensions live in `rules.permissions` with the matrix, and visibility is one
rule (`sight_grounds`, `may_see`) that the SQL builder translates."""

import pytest

from app.rules.permissions import (
    ACTION_DEPARTMENT_LEADS,
    INVOLVING,
    STEP_OWNER_MAY,
    EventAction,
    Sight,
    may,
    may_see,
    sight_grounds,
)
from app.rules.vocabulary import Role

R = Role


def test_a_step_owner_updates_their_own_step_and_nothing_else() -> None:
    assert {EventAction.UPDATE_STEP} == STEP_OWNER_MAY
    reporter, handler = {R.REPORTER}, {R.HANDLER}
    assert not may(EventAction.UPDATE_STEP, reporter, department=None, lead="IT")
    assert may(EventAction.UPDATE_STEP, reporter, department=None, lead="IT", owns_step=True)
    assert not may(EventAction.RESOLVE, handler, department=None, lead="IT", owns_step=True)


@pytest.mark.parametrize("action", sorted(ACTION_DEPARTMENT_LEADS))
def test_an_action_s_department_counts_as_lead_for_it(action: EventAction) -> None:
    head = {R.DEPT_HEAD}
    assert not may(action, head, department="OPS", lead="IT")
    assert may(action, head, department="OPS", lead="IT", action_department="OPS")
    assert not may(action, head, department="OPS", lead="IT", action_department="HR")
    assert not may(action, {R.REPORTER}, department="OPS", lead="IT", action_department="OPS")


def test_an_action_s_department_does_not_lead_the_event() -> None:
    assert {EventAction.COMPLETE_ACTION, EventAction.VERIFY_ACTION} == ACTION_DEPARTMENT_LEADS
    assert not may(
        EventAction.REVIEW, {R.DEPT_HEAD}, department="OPS", lead="IT", action_department="OPS"
    )


@pytest.mark.parametrize(
    ("roles", "has_department", "grounds"),
    [
        ({R.ADMIN}, False, (Sight.EVERY_EVENT,)),
        ({R.SUPERVISOR, R.HANDLER}, True, (Sight.EVERY_EVENT,)),
        ({R.INTAKE_AGENT}, True, (Sight.EVERY_EVENT,)),
        ({R.REPORTER}, True, (Sight.REPORTED,)),
        ({R.INTEGRATION}, False, (Sight.REPORTED,)),
        (set(), False, (Sight.REPORTED,)),
        ({R.HANDLER}, False, (Sight.REPORTED, Sight.OWNS_STEP)),
        (
            {R.DEPT_HEAD},
            True,
            (Sight.REPORTED, Sight.LEADS, Sight.COOPERATES, Sight.OWNS_STEP, Sight.OWNS_ACTION),
        ),
    ],
)
def test_the_grounds_of_each_kind_of_caller(
    roles: set[Role], has_department: bool, grounds: tuple[Sight, ...]
) -> None:
    assert sight_grounds(roles, has_department=has_department) == grounds


@pytest.mark.parametrize(
    ("roles", "has_department", "grounds"),
    [
        ({R.ADMIN}, False, (Sight.EVERY_EVENT,)),
        ({R.REPORTER}, True, (Sight.REPORTED, Sight.NAMED_REPORTER)),
        ({R.HANDLER}, False, (Sight.REPORTED, Sight.NAMED_REPORTER, Sight.OWNS_STEP)),
    ],
)
def test_a_person_also_sees_what_names_them_as_its_reporter(
    roles: set[Role], has_department: bool, grounds: tuple[Sight, ...]
) -> None:
    """Issue 16 item 3 (R3.4.1): a person named as the reporter sees the event."""
    assert sight_grounds(roles, has_department=has_department, person=True) == grounds


def test_only_the_department_and_step_grounds_involve() -> None:
    assert set(Sight) - INVOLVING == {Sight.EVERY_EVENT, Sight.REPORTED, Sight.NAMED_REPORTER}


@pytest.mark.parametrize(
    ("roles", "department", "facts", "seen"),
    [
        ({R.REPORTER}, "IT", {"lead": "IT"}, False),  # a reporter sees only what they reported
        ({R.REPORTER}, None, {"is_reporter": True}, True),
        ({R.HANDLER}, "IT", {"lead": "IT"}, True),
        ({R.HANDLER}, "IT", {"cooperating": ("OPS", "IT")}, True),
        ({R.HANDLER}, "IT", {"action_departments": ("IT",)}, True),
        ({R.HANDLER}, None, {"owns_step": True}, True),
        ({R.HANDLER}, None, {"lead": None}, False),  # no department leads "nothing"
        ({R.DEPT_HEAD}, "OPS", {"lead": "IT", "action_departments": ("HR",)}, False),
        ({R.SUPERVISOR}, None, {}, True),
        # Issue 16 item 3: named as the reporter (`reporter.user_id`): seen by a person only.
        ({R.REPORTER}, None, {"is_named_reporter": True, "person": True}, True),
        ({R.INTEGRATION}, None, {"is_named_reporter": True, "person": False}, False),
    ],
)
def test_may_see(
    roles: set[Role], department: str | None, facts: dict[str, object], seen: bool
) -> None:
    given = {"is_reporter": False, "lead": None, "cooperating": ()} | facts
    assert may_see(roles, department=department, **given) is seen  # type: ignore[arg-type]
