"""Stage clocks and the escalation ladder as pure rules (R1.1, R1.3.1, R3.3.2, R4.1; issue 12)."""

import copy
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest

from app.policy.document import DEFAULT_POLICY_DOCUMENT, PolicyInvalid, parse_policy
from app.rules.clocks import (
    Audience,
    ClockFacts,
    Stage,
    audiences,
    clock_change,
    due_levels,
    next_fire_at,
    rungs,
    sla_view,
    stage_of,
)
from app.rules.policy import default_policy
from app.rules.vocabulary import Severity, Status

LADDER: Final = default_policy().escalation
T0: Final = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("status", "stage"),
    [
        (Status.REPORTED, Stage.RESPOND),
        (Status.CLASSIFIED, Stage.RESPOND),
        (Status.ASSIGNED, Stage.RESOLVE),
        (Status.IN_PROGRESS, Stage.RESOLVE),
        (Status.RESOLVED, Stage.FEEDBACK),
        (Status.FEEDBACK_GIVEN, Stage.REVIEW),
        (Status.REVIEWED, None),
        (Status.CLOSED, None),
        (Status.CANCELLED, None),
    ],
)
def test_each_status_runs_the_clock_of_its_stage(status: Status, stage: Stage | None) -> None:
    assert stage_of(status) == stage


def test_the_default_ladder_warns_at_half_and_four_fifths_then_breaches_then_escalates() -> None:
    ladder = rungs(LADDER, started_at=T0, due_at=_at(10), urgent=False, severity=Severity.GENERAL)
    assert [(r.level.id, r.at) for r in ladder] == [
        ("warn_50", _at(5)),
        ("warn_80", _at(8)),
        ("breach", _at(10)),
        ("escalate_intake", _at(14)),
        ("escalate_supervision", _at(34)),
    ]


@pytest.mark.parametrize(
    ("urgent", "severity"), [(True, Severity.GENERAL), (False, Severity.MAJOR)]
)
def test_urgent_and_major_events_escalate_sooner(urgent: bool, severity: Severity) -> None:
    ladder = rungs(LADDER, started_at=T0, due_at=_at(10), urgent=urgent, severity=severity)
    assert {r.level.id: r.at for r in ladder}["escalate_intake"] == _at(11)
    assert {r.level.id: r.at for r in ladder}["escalate_supervision"] == _at(16)


def test_each_level_fires_once_and_in_order() -> None:
    ladder = rungs(LADDER, started_at=T0, due_at=_at(10), urgent=False, severity=None)
    fired: set[str] = set()
    order: list[str] = []
    for hours in (1, 5, 5.5, 9, 12, 40, 41):
        for rung in due_levels(ladder, fired=fired, now=_at(hours)):
            fired.add(rung.level.id)
            order.append(rung.level.id)
    assert order == ["warn_50", "warn_80", "breach", "escalate_intake", "escalate_supervision"]
    assert next_fire_at(ladder, fired=fired) is None


def test_levels_missed_while_nothing_ran_fire_once_each() -> None:
    ladder = rungs(LADDER, started_at=T0, due_at=_at(10), urgent=False, severity=None)
    late = due_levels(ladder, fired=(), now=_at(20))
    assert [r.level.id for r in late] == ["warn_50", "warn_80", "breach", "escalate_intake"]
    assert due_levels(ladder, fired=[r.level.id for r in late], now=_at(20)) == ()


def test_a_moved_due_time_moves_the_levels_not_yet_fired() -> None:
    before = rungs(LADDER, started_at=T0, due_at=_at(120), urgent=False, severity=None)
    fired = {r.level.id for r in due_levels(before, fired=(), now=_at(61))}
    assert fired == {"warn_50"}
    # Reclassified as important: 72 hours instead of 120.
    after = rungs(LADDER, started_at=T0, due_at=_at(72), urgent=False, severity=Severity.IMPORTANT)
    again = due_levels(after, fired=fired, now=_at(61))
    assert [r.level.id for r in again] == ["warn_80"]
    assert next_fire_at(after, fired=fired | {"warn_80"}) == _at(72)


def test_who_acts_follows_the_stage() -> None:
    respond = ClockFacts(
        stage=Stage.RESPOND,
        assignee_id=None,
        step_owner_ids=(),
        lead_department=None,
        intake_department="CS",
    )
    desk = Audience(roles=("intake_agent",), department="CS")
    assert audiences(LADDER.warnings[1].notify, respond) == (desk,)
    assert audiences(LADDER.breach.notify, respond) == (
        Audience(roles=("dept_head",), department="CS"),
    )
    resolve = ClockFacts(
        stage=Stage.RESOLVE,
        assignee_id="u1",
        step_owner_ids=("u2", "u3"),
        lead_department="IT",
        intake_department="CS",
    )
    assert audiences(LADDER.warnings[1].notify, resolve) == (
        Audience(user_ids=("u1",)),
        Audience(user_ids=("u2", "u3")),
    )
    assert audiences(LADDER.breach.notify, resolve) == (
        Audience(roles=("dept_head",), department="IT"),
    )
    assert audiences(LADDER.escalations[1].notify, resolve) == (Audience(roles=("supervisor",)),)


def test_sla_view_counts_down_and_reports_the_breach() -> None:
    running = sla_view(Stage.RESOLVE, due_at=_at(10), breached_at=None, now=_at(4))
    assert running is not None
    assert (running.remaining_seconds, running.breached, running.breached_at) == (
        6 * 3600,
        False,
        None,
    )
    late = sla_view(Stage.RESOLVE, due_at=_at(10), breached_at=None, now=_at(11))
    assert late is not None
    assert (late.remaining_seconds, late.breached, late.breached_at) == (-3600, True, _at(10))
    assert sla_view(None, due_at=None, breached_at=None, now=T0) is None


def _document(**escalation: Any) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(dict(DEFAULT_POLICY_DOCUMENT))
    doc["escalation"].update(escalation)
    return doc


def test_the_ladder_is_policy_data_and_older_documents_get_the_default() -> None:
    assert parse_policy(DEFAULT_POLICY_DOCUMENT).escalation == LADDER
    older = copy.deepcopy(dict(DEFAULT_POLICY_DOCUMENT))
    del older["escalation"]
    assert parse_policy(older).escalation == LADDER
    shorter = parse_policy(
        _document(warnings=[{"id": "early", "at_fraction": 0.25, "notify": ["lead_head"]}])
    )
    assert [level.id for level in shorter.escalation.levels] == [
        "early",
        "breach",
        "escalate_intake",
        "escalate_supervision",
    ]


def test_every_problem_of_the_ladder_is_listed() -> None:
    doc = _document(
        warnings=[{"id": "warn_50", "at_fraction": 1.5, "notify": []}],
        breach={"id": "breach", "notify": ["boss"]},
        escalations=[{"id": "warn_50", "after_breach_hours": 0, "notify": ["supervision"]}],
        fast_factor=2,
    )
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(doc)
    assert [p.path for p in caught.value.problems] == [
        "escalation.warnings[0].at_fraction",
        "escalation.warnings[0].notify",
        "escalation.breach.notify[0]",
        "escalation.escalations[0].id",
        "escalation.escalations[0].after_breach_hours",
        "escalation.fast_factor",
    ]


@pytest.mark.parametrize(
    ("running", "status", "expected"),
    [
        # classified: still responding, the clock runs on
        (Stage.RESPOND, Status.CLASSIFIED, (False, Stage.RESPOND, 1, False)),
        # assigned: respond is done, resolve starts
        (Stage.RESPOND, Status.ASSIGNED, (True, Stage.RESOLVE, 1, True)),
        (Stage.RESOLVE, Status.IN_PROGRESS, (False, Stage.RESOLVE, 1, False)),
        (Stage.RESOLVE, Status.RESOLVED, (True, Stage.FEEDBACK, 1, True)),
        (Stage.FEEDBACK, Status.FEEDBACK_GIVEN, (True, Stage.REVIEW, 1, True)),
        # reviewed, closed, cancelled: nothing is timed any more
        (Stage.REVIEW, Status.REVIEWED, (True, None, 1, False)),
        (Stage.RESPOND, Status.CANCELLED, (True, None, 1, False)),
        # back to work (reopen, or feedback returned): a new cycle of the resolve stage
        (Stage.FEEDBACK, Status.IN_PROGRESS, (True, Stage.RESOLVE, 2, True)),
        (Stage.REVIEW, Status.IN_PROGRESS, (True, Stage.RESOLVE, 2, True)),
        (None, Status.IN_PROGRESS, (False, Stage.RESOLVE, 2, True)),
    ],
)
def test_a_change_finishes_and_starts_clocks(
    running: Stage | None, status: Status, expected: tuple[bool, Stage | None, int, bool]
) -> None:
    change = clock_change(running, 1, status=status)
    assert (change.finish, change.stage, change.cycle, change.restart) == expected
