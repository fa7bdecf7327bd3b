"""Supervision rules (R5.1-R5.3; issue 14 items 1 and 2): the seeded, stratified, risk-weighted
sampler (property tests over generated populations), the pre-filled answers, the rectification
state machine, who sees and answers orders, and which department a finding goes to."""

import dataclasses
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.rules.supervision import (
    DEFAULT_RISK_WEIGHTS,
    DEFAULT_SAMPLE_RATE,
    RECTIFICATION_DEADLINE,
    Clocks,
    Draw,
    EventFacts,
    JudgedAnswer,
    Member,
    OrderTransitionNotAllowed,
    RiskFacts,
    breached,
    draw,
    draw_key,
    may_respond,
    may_see_order,
    may_supervise,
    next_order_status,
    order_actions_from,
    order_drafts,
    order_due,
    order_overdue,
    overturn_needs_note,
    prefill,
    responsible_department,
    risk_factors,
    risk_weight,
    sample_size,
)
from app.rules.vocabulary import (
    Answer,
    OrderAction,
    OrderStatus,
    Question,
    RiskFactor,
    Role,
    Status,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
H = timedelta(hours=1)

# ---- the sampler (R5.2) --------------------------------------------------------------------

DEPARTMENTS = ("CS", "IT", "OPS", "LOG")
SEVERITIES = ("general", "important", "major", None)


@st.composite
def populations(draw_: st.DrawFn) -> list[Member]:
    """1 to 120 events over up to 16 strata, some of them risky (weight > 1)."""
    count = draw_(st.integers(min_value=1, max_value=120))
    ids = draw_(st.lists(st.uuids(), min_size=count, max_size=count, unique=True))
    members = []
    for event_id in ids:
        factors = tuple(
            factor for factor in RiskFactor if draw_(st.integers(min_value=0, max_value=4)) == 0
        )
        members.append(
            Member(
                event_id=event_id,
                department=draw_(st.sampled_from(DEPARTMENTS)),
                severity=draw_(st.sampled_from(SEVERITIES)),
                weight=risk_weight(factors),
                risk=factors,
            )
        )
    return members


sizes = st.integers(min_value=0, max_value=150)
minimums = st.integers(min_value=0, max_value=5)
seeds = st.integers(min_value=0, max_value=2**63 - 1)


def _ids(result: Draw) -> list[uuid.UUID]:
    return [m.event_id for m in result.members]


@settings(max_examples=150, deadline=None)
@given(populations(), sizes, minimums, seeds, st.randoms(use_true_random=False))
def test_same_seed_over_the_same_population_gives_the_same_sample_in_any_order(
    population: list[Member], size: int, minimum: int, seed: int, rnd: random.Random
) -> None:
    """Issue 14 "Done when": the same seed over the same frozen population, the same sample,
    whatever order the population was read in."""
    first = draw(population, size=size, min_per_stratum=minimum, seed=seed)
    shuffled = list(population)
    rnd.shuffle(shuffled)
    again = draw(shuffled, size=size, min_per_stratum=minimum, seed=seed)
    assert _ids(again) == _ids(first)
    assert again.strata == first.strata


@settings(max_examples=150, deadline=None)
@given(populations(), sizes, minimums, seeds)
def test_every_stratum_gets_its_minimum_and_the_sample_its_size(
    population: list[Member], size: int, minimum: int, seed: int
) -> None:
    """R5.2: each stratum gives at least `min_per_stratum` events (or all it has); the sample
    has the requested size, grown to the minimums, never beyond the population; no event
    twice, none from outside the population."""
    result = draw(population, size=size, min_per_stratum=minimum, seed=seed)
    strata = Counter(m.stratum for m in population)
    drawn = Counter(m.stratum for m in result.members)
    for stratum, count in strata.items():
        assert drawn[stratum] >= min(minimum, count)
        assert drawn[stratum] <= count
    floor = sum(min(minimum, count) for count in strata.values())
    assert result.size == len(result.members) == min(len(population), max(size, floor))
    ids = _ids(result)
    assert len(set(ids)) == len(ids)
    assert set(ids) <= {m.event_id for m in population}
    assert {s.stratum: s.sampled for s in result.strata} == {s: drawn[s] for s in strata}
    assert sum(s.population for s in result.strata) == len(population)


@settings(max_examples=150, deadline=None)
@given(populations(), sizes, minimums, seeds)
def test_a_stratum_of_more_risk_gets_no_fewer_events_than_one_of_its_size_with_less(
    population: list[Member], size: int, minimum: int, seed: int
) -> None:
    """R5.2 risk weights across strata: the sample is shared in proportion to the strata's
    total weight, so of two strata of one size the riskier never gets fewer events."""
    result = draw(population, size=size, min_per_stratum=minimum, seed=seed)
    strata = result.strata
    for a in strata:
        for b in strata:
            if a.population == b.population and a.weight_total > b.weight_total:
                assert a.sampled >= b.sampled, (a, b)


@settings(max_examples=150, deadline=None)
@given(populations(), st.integers(min_value=1, max_value=60), seeds, st.data())
def test_more_weight_never_drops_a_drawn_event_from_its_stratum(
    population: list[Member], size: int, seed: int, data: st.DataObject
) -> None:
    """R5.2 risk weights within a stratum: an event drawn stays drawn when it weighs more
    (one stratum, so the allocation does not move)."""
    single = [
        Member(event_id=m.event_id, department="IT", severity="general", weight=m.weight)
        for m in population
    ]
    result = draw(single, size=size, min_per_stratum=0, seed=seed)
    if not result.members:
        return
    chosen = data.draw(st.sampled_from(result.members))
    heavier = [
        Member(
            event_id=m.event_id,
            department=m.department,
            severity=m.severity,
            weight=m.weight + (3.0 if m.event_id == chosen.event_id else 0.0),
        )
        for m in single
    ]
    assert chosen.event_id in _ids(draw(heavier, size=size, min_per_stratum=0, seed=seed))


def test_risky_events_are_drawn_more_often_over_many_seeds() -> None:
    """R5.2: weight 3 (one risk factor at the default weights) against weight 1, one stratum,
    40 events, 10 drawn, 400 seeds: the risky half is drawn about twice as often."""
    plain = [Member(event_id=uuid.UUID(int=i), department="IT", severity="general", weight=1.0)
             for i in range(20)]  # fmt: skip
    risky = [
        Member(
            event_id=uuid.UUID(int=100 + i),
            department="IT",
            severity="general",
            weight=risk_weight((RiskFactor.REOPENED,)),
            risk=(RiskFactor.REOPENED,),
        )
        for i in range(20)
    ]
    risky_ids = {m.event_id for m in risky}
    hits = Counter[bool]()
    for seed in range(400):
        for member in draw(plain + risky, size=10, min_per_stratum=0, seed=seed).members:
            hits[member.event_id in risky_ids] += 1
    assert hits[True] + hits[False] == 4000
    assert hits[True] > 2 * hits[False]


def test_another_seed_gives_another_sample() -> None:
    population = [
        Member(event_id=uuid.UUID(int=i), department="IT", severity="general", weight=1.0)
        for i in range(100)
    ]
    first = _ids(draw(population, size=10, min_per_stratum=0, seed=1))
    assert first == _ids(draw(population, size=10, min_per_stratum=0, seed=1))
    assert first != _ids(draw(population, size=10, min_per_stratum=0, seed=2))


def test_draw_key_is_seeded_and_grows_with_the_weight() -> None:
    event = uuid.UUID(int=7)
    assert draw_key(1, event, 1.0) == draw_key(1, event, 1.0)
    assert draw_key(1, event, 1.0) != draw_key(2, event, 1.0)
    assert draw_key(1, event, 3.0) > draw_key(1, event, 1.0)


@pytest.mark.parametrize(
    ("population", "size", "rate", "expected"),
    [
        (100, 7, None, 7),
        (5, 7, None, 5),  # never more than the population
        (100, None, 0.1, 10),
        (101, None, 0.1, 11),  # a rate rounds up
        (100, None, None, round(100 * DEFAULT_SAMPLE_RATE)),
        (1, None, None, 1),
        (0, None, 0.5, 0),
    ],
)
def test_sample_size(population: int, size: int | None, rate: float | None, expected: int) -> None:
    assert sample_size(population, size=size, rate=rate) == expected


@pytest.mark.parametrize(
    ("facts", "factors"),
    [
        (RiskFacts(severity="general", breached=False, reopened=False, satisfaction_score=5), ()),
        (
            RiskFacts(severity="major", breached=True, reopened=True, satisfaction_score=2),
            tuple(RiskFactor),
        ),
        (
            RiskFacts(severity="important", breached=False, reopened=False, satisfaction_score=3),
            (),
        ),
        (
            RiskFacts(severity=None, breached=False, reopened=False, satisfaction_score=1),
            (RiskFactor.LOW_SATISFACTION,),
        ),
    ],
)
def test_risk_factors(facts: RiskFacts, factors: tuple[RiskFactor, ...]) -> None:
    """Issue 14 item 1: a breached deadline, reopened, satisfaction at most 2, major."""
    assert risk_factors(facts) == factors


def test_risk_weight_adds_the_weight_of_each_factor() -> None:
    assert risk_weight(()) == 1.0
    assert risk_weight((RiskFactor.MAJOR, RiskFactor.REOPENED)) == (
        1.0 + DEFAULT_RISK_WEIGHTS[RiskFactor.MAJOR] + DEFAULT_RISK_WEIGHTS[RiskFactor.REOPENED]
    )
    assert risk_weight((RiskFactor.MAJOR,), {RiskFactor.MAJOR: 9.0}) == 10.0


# ---- the pre-filled answers (R5.2) ---------------------------------------------------------

REPORTED = NOW - 30 * 24 * H


def closed_on_time(**changes: object) -> Clocks:
    """A general event handled within every deadline and closed."""
    values: dict[str, object] = {
        "status": Status.CLOSED,
        "respond_by": REPORTED + 8 * H,
        "classified_at": REPORTED + 1 * H,
        "assigned_at": REPORTED + 2 * H,
        "resolve_by": REPORTED + 120 * H,
        "resolved_at": REPORTED + 50 * H,
        "feedback_by": REPORTED + 74 * H,
        "feedback_at": REPORTED + 60 * H,
        "review_by": REPORTED + 60 * H + 7 * 24 * H,
        "reviewed_at": REPORTED + 70 * H,
    }
    values.update(changes)
    return Clocks(**values)  # type: ignore[arg-type]


def answers(facts: EventFacts, now: datetime = NOW) -> dict[Question, Answer]:
    return {q: p.answer for q, p in prefill(facts, now).items()}


PASS3 = dict.fromkeys(Question, Answer.PASS)


@pytest.mark.parametrize(
    ("facts", "expected", "findings"),
    [
        (EventFacts(clocks=closed_on_time(), satisfaction_score=4), PASS3, ()),
        (
            EventFacts(clocks=closed_on_time(assigned_at=REPORTED + 9 * H)),
            {**PASS3, Question.INTAKE_TIMELY: Answer.FAIL},
            ("respond.breached",),
        ),
        (
            EventFacts(clocks=closed_on_time(), severity_overridden=True),
            {**PASS3, Question.PROCESS_FOLLOWED: Answer.FAIL},
            ("severity.overridden",),
        ),
        (
            EventFacts(clocks=closed_on_time(), routing_overridden=True),
            {**PASS3, Question.PROCESS_FOLLOWED: Answer.FAIL},
            ("routing.overridden",),
        ),
        (
            EventFacts(clocks=closed_on_time(resolved_at=REPORTED + 121 * H)),
            {**PASS3, Question.PROCESS_FOLLOWED: Answer.FAIL},
            ("resolve.breached",),
        ),
        (
            EventFacts(clocks=closed_on_time(reviewed_at=REPORTED + 60 * H + 8 * 24 * H)),
            {**PASS3, Question.PROCESS_FOLLOWED: Answer.FAIL},
            ("review.breached",),
        ),
        (
            EventFacts(clocks=closed_on_time(steps_finished_late=1)),
            {**PASS3, Question.PROCESS_FOLLOWED: Answer.FAIL},
            ("steps.late",),
        ),
        (
            EventFacts(clocks=closed_on_time(), reopened=1),
            {**PASS3, Question.RESULT_EFFECTIVE: Answer.FAIL},
            ("reopened",),
        ),
        (
            EventFacts(clocks=closed_on_time(), recurrences=2),
            {**PASS3, Question.RESULT_EFFECTIVE: Answer.FAIL},
            ("recurred",),
        ),
        (
            EventFacts(clocks=closed_on_time(), satisfaction_score=1),
            {**PASS3, Question.RESULT_EFFECTIVE: Answer.FAIL},
            ("satisfaction.low",),
        ),
        (  # an unreachable reporter is no finding; a returned feedback is shown, not judged
            EventFacts(clocks=closed_on_time(), satisfaction_unreachable=True, feedback_returned=1),
            PASS3,
            (),
        ),
    ],
)
def test_prefilled_answers_follow_the_facts(
    facts: EventFacts, expected: dict[Question, Answer], findings: tuple[str, ...]
) -> None:
    """Issue 14 item 1: intake timely (classified and assigned within the respond deadline),
    process followed (no gate overridden, no stage breached), result effective (not reopened,
    no recurrence, satisfaction at least 3)."""
    filled = prefill(facts, NOW)
    assert {q: p.answer for q, p in filled.items()} == expected
    assert tuple(f for p in filled.values() for f in p.findings) == findings


def test_facts_behind_each_answer_are_shown() -> None:
    clocks = closed_on_time()
    filled = prefill(EventFacts(clocks=clocks, satisfaction_score=4), NOW)
    assert filled[Question.INTAKE_TIMELY].facts["respond_by"] == clocks.respond_by
    assert filled[Question.PROCESS_FOLLOWED].facts["resolved_at"] == clocks.resolved_at
    assert filled[Question.RESULT_EFFECTIVE].facts["satisfaction_score"] == 4


def test_an_open_event_is_judged_by_what_is_due_now() -> None:
    """R5.2 over open events: nothing due yet is not applicable; an unassigned event past its
    respond deadline and an unresolved one past its resolve deadline fail."""
    fresh = Clocks(status=Status.REPORTED, respond_by=NOW + H)
    assert answers(EventFacts(clocks=fresh)) == dict.fromkeys(Question, Answer.NOT_APPLICABLE)
    assert answers(EventFacts(clocks=fresh), NOW + 2 * H)[Question.INTAKE_TIMELY] is Answer.FAIL
    working = closed_on_time(
        status=Status.IN_PROGRESS,
        resolved_at=None,
        feedback_by=None,
        feedback_at=None,
        review_by=None,
        reviewed_at=None,
    )
    before = answers(EventFacts(clocks=working), REPORTED + 100 * H)
    assert before[Question.PROCESS_FOLLOWED] is Answer.PASS
    assert before[Question.RESULT_EFFECTIVE] is Answer.NOT_APPLICABLE
    after = answers(EventFacts(clocks=working), REPORTED + 121 * H)
    assert after[Question.PROCESS_FOLLOWED] is Answer.FAIL
    overdue_step = closed_on_time(status=Status.IN_PROGRESS, open_step_due=NOW - H)
    assert breached(overdue_step, NOW) is True


def test_a_cancellation_is_the_response() -> None:
    cancelled = Clocks(status=Status.CANCELLED, respond_by=REPORTED + 8 * H)
    on_time = EventFacts(clocks=dataclasses.replace(cancelled, cancelled_at=REPORTED + H))
    late = EventFacts(clocks=dataclasses.replace(cancelled, cancelled_at=REPORTED + 9 * H))
    assert answers(on_time) == {
        Question.INTAKE_TIMELY: Answer.PASS,
        Question.PROCESS_FOLLOWED: Answer.NOT_APPLICABLE,
        Question.RESULT_EFFECTIVE: Answer.NOT_APPLICABLE,
    }
    assert answers(late)[Question.INTAKE_TIMELY] is Answer.FAIL


@pytest.mark.parametrize(
    ("prefilled", "answer", "note", "needs"),
    [
        (Answer.PASS, Answer.PASS, None, False),
        (Answer.PASS, Answer.FAIL, None, True),
        (Answer.PASS, Answer.FAIL, "  ", True),
        (Answer.PASS, Answer.FAIL, "The customer called twice", False),
        (Answer.FAIL, Answer.NOT_APPLICABLE, None, True),
    ],
)
def test_an_overturn_needs_a_note(
    prefilled: Answer, answer: Answer, note: str | None, needs: bool
) -> None:
    """Issue 14 item 1: the checker confirms, or overturns with a reason."""
    assert overturn_needs_note(prefilled, answer, note) is needs


# ---- rectification orders (R5.3) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [
        (OrderStatus.ISSUED, OrderAction.RESPOND, OrderStatus.RESPONDED),
        (OrderStatus.RESPONDED, OrderAction.ACCEPT, OrderStatus.VERIFIED),
        (OrderStatus.RESPONDED, OrderAction.REJECT, OrderStatus.ISSUED),
        (OrderStatus.VERIFIED, OrderAction.CLOSE, OrderStatus.CLOSED),
    ],
)
def test_order_transitions(status: OrderStatus, action: OrderAction, target: OrderStatus) -> None:
    assert next_order_status(status, action) is target


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (OrderStatus.ISSUED, (OrderAction.RESPOND,)),
        (OrderStatus.RESPONDED, (OrderAction.ACCEPT, OrderAction.REJECT)),
        (OrderStatus.VERIFIED, (OrderAction.CLOSE,)),
        (OrderStatus.CLOSED, ()),
    ],
)
def test_illegal_order_transitions_say_what_is_allowed(
    status: OrderStatus, allowed: tuple[OrderAction, ...]
) -> None:
    assert order_actions_from(status) == allowed
    for action in set(OrderAction) - set(allowed):
        with pytest.raises(OrderTransitionNotAllowed) as raised:
            next_order_status(status, action)
        assert raised.value.allowed == allowed


def test_order_due_and_overdue() -> None:
    """R5.3: due 14 days after issue (policy default); overdue while unanswered past it."""
    assert timedelta(days=14) == RECTIFICATION_DEADLINE
    due = order_due(NOW)
    assert due == NOW + timedelta(days=14)
    assert order_overdue(OrderStatus.ISSUED, due, due + H) is True
    assert order_overdue(OrderStatus.ISSUED, due, due) is False
    assert order_overdue(OrderStatus.RESPONDED, due, due + H) is False


@pytest.mark.parametrize(
    ("roles", "department", "order_department", "sees", "responds"),
    [
        ({Role.SUPERVISOR}, "SUP", "IT", True, False),
        ({Role.ADMIN}, None, "IT", True, True),
        ({Role.DEPT_HEAD}, "IT", "IT", True, True),
        ({Role.DEPT_HEAD}, "OPS", "IT", False, False),
        ({Role.HANDLER}, "IT", "IT", True, False),
        ({Role.INTAKE_AGENT}, "CS", "CS", True, False),
        ({Role.INTAKE_AGENT}, "CS", "IT", False, False),
        ({Role.REPORTER}, "IT", "IT", False, False),
        ({Role.INTEGRATION}, None, "IT", False, False),
    ],
)
def test_a_department_sees_its_own_orders_and_its_head_answers_them(
    roles: set[Role], department: str | None, order_department: str, sees: bool, responds: bool
) -> None:
    """R5.3: a department sees its own orders (404 for others); supervisors and admins see
    all; the head of the order's department responds."""
    assert may_see_order(roles, department, order_department) is sees
    assert may_respond(roles, department, order_department) is responds


def test_only_supervision_supervises() -> None:
    assert may_supervise({Role.SUPERVISOR})
    assert may_supervise({Role.ADMIN})
    assert not may_supervise({Role.DEPT_HEAD, Role.HANDLER, Role.INTAKE_AGENT})


def test_a_late_intake_goes_to_the_intake_department_the_rest_to_the_lead() -> None:
    """R5.3 with R4.1 (the intake desk assesses and routes) and R4.2 (the responsible
    department handles): one order per department of the item's failed questions."""
    assert (
        responsible_department(Question.INTAKE_TIMELY, intake_department="CS", lead_department="IT")
        == "CS"
    )
    assert (
        responsible_department(
            Question.RESULT_EFFECTIVE, intake_department="CS", lead_department="IT"
        )
        == "IT"
    )
    assert (
        responsible_department(
            Question.PROCESS_FOLLOWED, intake_department="CS", lead_department=None
        )
        == "CS"
    )
    judged = {
        Question.INTAKE_TIMELY: JudgedAnswer(answer=Answer.FAIL, note="Assigned a day late"),
        Question.PROCESS_FOLLOWED: JudgedAnswer(answer=Answer.FAIL, note=None),
        Question.RESULT_EFFECTIVE: JudgedAnswer(answer=Answer.FAIL, note="Customer unhappy"),
    }
    drafts = order_drafts(
        judged, event_ref="EV-2026-000001", intake_department="CS", lead_department="IT"
    )
    assert [(d.department, d.questions) for d in drafts] == [
        ("CS", (Question.INTAKE_TIMELY,)),
        ("IT", (Question.PROCESS_FOLLOWED, Question.RESULT_EFFECTIVE)),
    ]
    assert "EV-2026-000001" in drafts[1].demand
    assert "Customer unhappy" in drafts[1].demand
    passed = dict.fromkeys(Question, JudgedAnswer(answer=Answer.PASS, note=None))
    assert order_drafts(passed, event_ref="x", intake_department="CS", lead_department="IT") == ()
