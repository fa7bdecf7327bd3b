"""R3.3.2: a plan step changes once, from open, and a dropped step carries its reason. The rule
is pure (`app/rules/lifecycle.step_update_refusal`); the API maps it to 409 and 422."""

import pytest

from app.rules.lifecycle import step_update_refusal
from app.rules.vocabulary import StepStatus

OPEN, DONE, DROPPED = StepStatus.OPEN, StepStatus.DONE, StepStatus.DROPPED


@pytest.mark.parametrize("note", [None, "", "   "])
def test_dropping_an_open_step_needs_a_reason(note: str | None) -> None:
    assert step_update_refusal(OPEN, DROPPED, note) == "Dropping a step needs a reason"


def test_an_open_step_is_done_or_dropped_with_a_reason() -> None:
    assert step_update_refusal(OPEN, DONE, None) is None
    assert step_update_refusal(OPEN, DROPPED, "Not needed after step one") is None


@pytest.mark.parametrize("current", [DONE, DROPPED])
@pytest.mark.parametrize("new", [DONE, DROPPED])
def test_a_finished_step_does_not_change_again(current: StepStatus, new: StepStatus) -> None:
    assert step_update_refusal(current, new, "a reason") == f"The step is already {current.value}"
