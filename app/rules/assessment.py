"""Assessment decisions that sit beside grading and routing (R3.1.3, R3.2.2, R3.2.3)."""

from collections.abc import Sequence

from app.rules.policy import Policy
from app.rules.vocabulary import SEVERITY_RANK, Severity, Status


def override_problems(
    graded: Severity,
    override: Severity | None,
    *,
    urgent: bool,
    reason: str | None,
    policy: Policy,
) -> list[str]:
    """R3.2.2, R3.1.3: what stops a manual grade: a reason missing, an urgent event too low."""
    # Never below the policy's `grading.urgent_floor` for an urgent event (issue 11 item 4;
    # `important` by default). Returns the problems (empty when the override may stand).
    problems: list[str] = []
    if override is None or override == graded:
        return problems
    if not reason:
        problems.append("severity_override.reason")
    if urgent and SEVERITY_RANK[override] < SEVERITY_RANK[policy.grading.urgent_floor]:
        problems.append("severity_override.urgent_floor")
    return problems


def cooperating_for(
    lead: str, proposed_cooperating: Sequence[str], given: Sequence[str] | None
) -> tuple[str, ...]:
    """R3.2.3: cooperating departments: those given, else the policy's proposal, never the lead."""
    source = given if given is not None else proposed_cooperating
    return tuple(dict.fromkeys(code for code in source if code != lead))


def status_after_reclassify(target: Status, assignment_missing: Sequence[str]) -> Status:
    """R3.2.3: a re-classified event stays assigned only while its assignment gate holds."""
    # Otherwise it goes back to `classified` to be assigned again.
    if target is Status.ASSIGNED and assignment_missing:
        return Status.CLASSIFIED
    return target
