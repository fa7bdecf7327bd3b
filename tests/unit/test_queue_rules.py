"""The duties of a work queue (R1.3.1, R3.3.2, R4.1), as `rules.queue` declares them."""

import pytest

from app.rules.queue import ASSIGNEE_WAITS_FOR, DESK_WAITS_FOR, Duties, duties_of
from app.rules.vocabulary import Role, Status


@pytest.mark.parametrize(
    ("roles", "department", "duties"),
    [
        ({Role.HANDLER}, "LOG", Duties(True, False, False)),
        ({Role.DEPT_HEAD}, "LOG", Duties(True, True, False)),
        ({Role.DEPT_HEAD}, None, Duties(False, False, False)),
        ({Role.INTAKE_AGENT}, None, Duties(False, False, True)),
        ({Role.REPORTER}, "LOG", Duties(False, False, False)),
    ],
)
def test_duties_follow_roles_and_need_a_department(
    roles: set[Role], department: str | None, duties: Duties
) -> None:
    assert duties_of(frozenset(roles), department) == duties


def test_the_assignee_and_the_desk_wait_in_disjoint_statuses_of_the_open_loop() -> None:
    assert not set(ASSIGNEE_WAITS_FOR) & set(DESK_WAITS_FOR)
    assert Status.CLOSED not in ASSIGNEE_WAITS_FOR
    assert Status.CLOSED not in DESK_WAITS_FOR
