"""The facts the gates read come from the records (issue 11 item 4): a plan step's owner and
due time are read from the step, not assumed, so `plan.step_owner` and `plan.step_due` can
fail (R3.3.1)."""

import uuid
from datetime import UTC, datetime
from typing import Final

from app.events.models import PlanStep
from app.events.snapshot import step_facts
from app.rules import default_policy
from app.rules.lifecycle import EventSnapshot, gate
from app.rules.vocabulary import Status, StepStatus

POLICY: Final = default_policy()
DUE: Final = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _plan_gate(*steps: PlanStep) -> list[str]:
    snapshot = EventSnapshot(
        status=Status.IN_PROGRESS, urgent=False, steps=tuple(step_facts(s) for s in steps)
    )
    return gate(Status.IN_PROGRESS, snapshot, POLICY)


def test_a_complete_step_meets_the_plan_gate() -> None:
    step = PlanStep(status="open", owner_id=uuid.uuid4(), due_at=DUE, note=None)
    assert step_facts(step).status is StepStatus.OPEN
    assert _plan_gate(step) == []


def test_a_step_without_owner_or_due_time_is_missing_them() -> None:
    owned = PlanStep(status="open", owner_id=uuid.uuid4(), due_at=DUE, note=None)
    no_owner = PlanStep(status="open", owner_id=None, due_at=DUE, note=None)
    no_due = PlanStep(status="open", owner_id=uuid.uuid4(), due_at=None, note=None)
    assert _plan_gate(owned, no_owner) == ["plan.step_owner"]
    assert _plan_gate(no_due) == ["plan.step_due"]


def test_a_dropped_step_reads_its_reason() -> None:
    dropped = PlanStep(status="dropped", owner_id=uuid.uuid4(), due_at=DUE, note="Not needed")
    facts = step_facts(dropped)
    assert (facts.status, facts.drop_reason) == (StepStatus.DROPPED, True)
