"""Supervision (R5.1-R5.3): spot-check sampling, the pre-filled answers, rectification orders.

Pure: standard library only, no clock (`now` is passed in), no I/O. Issue 14, items 1 and 2.

* **Sampling** (R5.2): the population is stratified by the responsible department and the
  severity; every stratum gets at least `min_per_stratum` events (or all it has); the rest of
  the sample is shared among the strata in proportion to their total risk weight (largest
  remainder), and inside a stratum events are drawn by weighted sampling without replacement
  (Efraimidis-Spirakis) whose random numbers are SHA-256 of `seed:event_id`. So the same seed
  over the same population always gives the same sample, whatever order the population is in.
* **Pre-filled answers** (R5.2): each of the three questions comes with what the service knows
  and the facts behind it; the checker confirms it or overturns it with a note.
* **Rectification orders** (R5.3): a failed answer becomes a demand on the department
  responsible for it, with a deadline; `issued -> responded -> verified -> closed`, a rejected
  response goes back to `issued`.

The defaults below are the supervision part of the default policy (R5): the rectification
deadline, the risk weights, the sample rate and the minimum per stratum. They are passed into
the functions as arguments, so that the policy document can carry and version them.
"""

import hashlib
import math
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from app.rules.vocabulary import (
    Answer,
    OrderAction,
    OrderStatus,
    Question,
    RiskFactor,
    Role,
    Status,
)

# ---- the defaults of the policy (R5) -------------------------------------------------------

#: R5.3: a rectification order is due this long after it is issued.
RECTIFICATION_DEADLINE: Final = timedelta(days=14)
#: R5.2: the extra weight each risk factor adds to an event's weight of 1 (a breached deadline
#: and a reopened, unsatisfied or major event are each three times as likely to be drawn).
DEFAULT_RISK_WEIGHTS: Final[Mapping[RiskFactor, float]] = MappingProxyType(
    dict.fromkeys(RiskFactor, 2.0)
)
#: R5.2: the share of the population sampled when neither a size nor a rate is given.
DEFAULT_SAMPLE_RATE: Final = 0.05
#: R5.2: every stratum (department x severity) gets at least this many events, or all it has.
DEFAULT_MIN_PER_STRATUM: Final = 1
#: A satisfaction score at or below this makes an event risky (issue 14 item 1).
LOW_SATISFACTION_MAX: Final = 2
#: The bounds of one check: the most events it samples and the largest population it freezes.
MAX_SAMPLE_SIZE: Final = 500
MAX_POPULATION: Final = 200_000
#: The population of a check when no status is named: the closed events (issue 14 item 1).
DEFAULT_STATUSES: Final = (Status.CLOSED,)
UNCLASSIFIED: Final = "unclassified"


# ---- who may do what (R5.1, R5.3) ----------------------------------------------------------


def may_supervise(roles: Collection[Role]) -> bool:
    """R5.1: supervisors and admins run spot checks and issue, verify and close orders."""
    return Role.SUPERVISOR in roles or Role.ADMIN in roles


#: The roles through which a user belongs to their department's staff (R4).
DEPARTMENT_STAFF: Final = frozenset({Role.HANDLER, Role.DEPT_HEAD, Role.INTAKE_AGENT})


def may_see_order(roles: Collection[Role], department: str | None, order_department: str) -> bool:
    """R5.3: supervisors and admins see every order, a department's staff their own."""
    # Nobody else sees them: 404, as for an order that does not exist (no existence leak).
    if may_supervise(roles):
        return True
    return department == order_department and not DEPARTMENT_STAFF.isdisjoint(roles)


def may_respond(roles: Collection[Role], department: str | None, order_department: str) -> bool:
    """R5.3: the head of the order's department (or an admin) answers it."""
    if Role.ADMIN in roles:
        return True
    return Role.DEPT_HEAD in roles and department == order_department


# ---- the rectification state machine (R5.3) ------------------------------------------------

ORDER_TRANSITIONS: Final[Mapping[tuple[OrderStatus, OrderAction], OrderStatus]] = MappingProxyType(
    {
        (OrderStatus.ISSUED, OrderAction.RESPOND): OrderStatus.RESPONDED,
        (OrderStatus.RESPONDED, OrderAction.ACCEPT): OrderStatus.VERIFIED,
        (OrderStatus.RESPONDED, OrderAction.REJECT): OrderStatus.ISSUED,
        (OrderStatus.VERIFIED, OrderAction.CLOSE): OrderStatus.CLOSED,
    }
)


class OrderTransitionNotAllowed(Exception):
    """The action is not allowed from the order's current status (R5.3)."""

    def __init__(
        self, current: OrderStatus, action: OrderAction, allowed: tuple[OrderAction, ...]
    ) -> None:
        self.current = current
        self.action = action
        self.allowed = allowed
        super().__init__(f"cannot {action.value} an order that is {current.value}")


def order_actions_from(status: OrderStatus) -> tuple[OrderAction, ...]:
    """R5.3: the actions allowed on a rectification order in `status`, in OrderAction order."""
    return tuple(action for action in OrderAction if (status, action) in ORDER_TRANSITIONS)


def next_order_status(current: OrderStatus, action: OrderAction) -> OrderStatus:
    """R5.3: the status `action` leads to; OrderTransitionNotAllowed with what is allowed."""
    try:
        return ORDER_TRANSITIONS[(current, action)]
    except KeyError:
        raise OrderTransitionNotAllowed(current, action, order_actions_from(current)) from None


def order_due(issued_at: datetime, deadline: timedelta = RECTIFICATION_DEADLINE) -> datetime:
    """R5.3: when an order issued at `issued_at` is due (policy default 14 days)."""
    return issued_at + deadline


def order_overdue(status: OrderStatus, due_at: datetime, now: datetime) -> bool:
    """R5.3: overdue when still unanswered (`issued`) after its due time."""
    # A response waiting for verification is the supervisors' turn, not the department's.
    return status is OrderStatus.ISSUED and now > due_at


# ---- sampling (R5.2) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskFacts:
    """What the sampler knows of an event to weigh it (R5.2)."""

    severity: str | None
    breached: bool
    reopened: bool
    satisfaction_score: int | None


def risk_factors(facts: RiskFacts) -> tuple[RiskFactor, ...]:
    """R5.2: the risk factors of an event, in RiskFactor order."""
    present = {
        RiskFactor.BREACHED_DEADLINE: facts.breached,
        RiskFactor.REOPENED: facts.reopened,
        RiskFactor.LOW_SATISFACTION: facts.satisfaction_score is not None
        and facts.satisfaction_score <= LOW_SATISFACTION_MAX,
        RiskFactor.MAJOR: facts.severity == "major",
    }
    return tuple(factor for factor in RiskFactor if present[factor])


def risk_weight(
    factors: Iterable[RiskFactor], weights: Mapping[RiskFactor, float] = DEFAULT_RISK_WEIGHTS
) -> float:
    """R5.2: an event's sampling weight, 1 plus the extra weight of each risk factor."""
    return 1.0 + sum(weights.get(factor, 0.0) for factor in factors)


def stratum_of(department: str, severity: str | None) -> str:
    """R5.2: the stratum key of an event, `department/severity` (e.g. `IT/major`)."""
    return f"{department}/{severity or UNCLASSIFIED}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One event of a frozen population (R5.2)."""

    event_id: uuid.UUID
    department: str
    severity: str | None
    weight: float
    risk: tuple[RiskFactor, ...] = ()

    @property
    def stratum(self) -> str:
        """R5.2: the member's stratum, `department/severity`."""
        return stratum_of(self.department, self.severity)


@dataclass(frozen=True, slots=True, kw_only=True)
class StratumDraw:
    """How one stratum was sampled (R5.2)."""

    stratum: str
    department: str
    severity: str | None
    population: int
    weight_total: float
    minimum: int
    sampled: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Draw:
    """A sample and how it was drawn (R5.2)."""

    members: tuple[Member, ...]
    strata: tuple[StratumDraw, ...]
    requested: int
    size: int


def sample_size(
    population: int,
    *,
    size: int | None,
    rate: float | None,
    default_rate: float = DEFAULT_SAMPLE_RATE,
) -> int:
    """R5.2: `size`, else `rate` (default rate) of the population rounded up, at most all."""
    if size is None:
        share = default_rate if rate is None else rate
        size = math.ceil(population * share - 1e-9)
    return max(0, min(size, population))


def draw_key(seed: int, event_id: uuid.UUID, weight: float) -> float:
    """R5.2: an event's key in the seeded weighted draw (the largest keys are drawn)."""
    # Efraimidis-Spirakis: log(u) / weight, u in (0, 1) from SHA-256 of `seed:event_id`, so the
    # key of an event depends on the seed and the event only, not on the population's order.
    digest = hashlib.sha256(f"{seed}:{event_id}".encode()).digest()
    u = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
    return math.log(u) / weight


def allocate(
    sizes: Mapping[str, int], weights: Mapping[str, float], minimums: Mapping[str, int], total: int
) -> dict[str, int]:
    """R5.2: events per stratum: its minimum, the rest in proportion to the strata's weights."""
    # Largest remainder, ties by stratum key, none beyond its size; repeated while a stratum
    # that is full leaves seats over.
    allocated = dict(minimums)
    remaining = total - sum(allocated.values())
    while remaining > 0:
        open_strata = sorted(s for s in sizes if allocated[s] < sizes[s])
        if not open_strata:
            break
        weight_total = sum(weights[s] for s in open_strata)
        quotas = {s: remaining * weights[s] / weight_total for s in open_strata}
        given = 0
        for stratum in open_strata:
            add = min(int(quotas[stratum]), sizes[stratum] - allocated[stratum])
            allocated[stratum] += add
            given += add
        left = remaining - given
        by_remainder = sorted(open_strata, key=lambda s: (-(quotas[s] - int(quotas[s])), s))
        for stratum in by_remainder:
            if left == 0:
                break
            if allocated[stratum] < sizes[stratum]:
                allocated[stratum] += 1
                left -= 1
        remaining = left
    return allocated


def draw(population: Sequence[Member], *, size: int, min_per_stratum: int, seed: int) -> Draw:
    """R5.2: a stratified, risk-weighted, seeded sample of `population` (see the module)."""
    # max(size, the strata's minimums) events, at most the whole population.
    strata: dict[str, list[Member]] = {}
    for member in population:
        strata.setdefault(member.stratum, []).append(member)
    sizes = {s: len(members) for s, members in strata.items()}
    weights = {s: sum(m.weight for m in members) for s, members in strata.items()}
    minimums = {s: min(min_per_stratum, n) for s, n in sizes.items()}
    total = min(len(population), max(size, sum(minimums.values())))
    allocated = allocate(sizes, weights, minimums, total)
    chosen: list[Member] = []
    described: list[StratumDraw] = []
    for stratum in sorted(strata):
        members = strata[stratum]
        ranked = sorted(
            members, key=lambda m: (-draw_key(seed, m.event_id, m.weight), str(m.event_id))
        )
        chosen.extend(ranked[: allocated[stratum]])
        first = members[0]
        described.append(
            StratumDraw(
                stratum=stratum,
                department=first.department,
                severity=first.severity,
                population=sizes[stratum],
                weight_total=round(weights[stratum], 6),
                minimum=minimums[stratum],
                sampled=allocated[stratum],
            )
        )
    return Draw(members=tuple(chosen), strata=tuple(described), requested=size, size=len(chosen))


# ---- the pre-filled answers (R5.2) ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Clocks:
    """An event's deadlines and when each stage finished (product.md section 3; R1.3.1)."""

    status: Status
    respond_by: datetime
    classified_at: datetime | None = None
    assigned_at: datetime | None = None
    cancelled_at: datetime | None = None
    resolve_by: datetime | None = None
    resolved_at: datetime | None = None
    feedback_by: datetime | None = None
    feedback_at: datetime | None = None
    review_by: datetime | None = None
    reviewed_at: datetime | None = None
    steps_finished_late: int = 0
    open_step_due: datetime | None = None  # the earliest due time of a step still open


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFacts:
    """What the service knows of a sampled event, read from its rows (R5.2)."""

    clocks: Clocks
    severity_overridden: bool = False
    routing_overridden: bool = False
    reopened: int = 0
    feedback_returned: int = 0
    recurrences: int = 0
    satisfaction_score: int | None = None
    satisfaction_unreachable: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Prefill:
    """What the service answers to one question, why (finding codes) and from what facts."""

    answer: Answer
    findings: tuple[str, ...]
    facts: Mapping[str, object]


def _found(checks: Mapping[str, bool]) -> list[str]:
    """The finding codes whose check holds, in the order given."""
    return [code for code, holds in checks.items() if holds]


def _judged(findings: Sequence[str], shown: Mapping[str, object]) -> Prefill:
    """A pre-filled answer from its findings: fail with any, else pass (R5.2)."""
    answer = Answer.FAIL if findings else Answer.PASS
    return Prefill(answer=answer, findings=tuple(findings), facts=shown)


def _late(due: datetime | None, done: datetime | None, now: datetime, *, open_: bool) -> bool:
    """A stage is late when it finished after its due time, or is still unfinished (and the
    event still open) after it (product.md section 3)."""
    if due is None:
        return False
    if done is not None:
        return done > due
    return open_ and now > due


def _is_open(clocks: Clocks) -> bool:
    return clocks.status not in (Status.CANCELLED, Status.CLOSED)


def _respond_late(clocks: Clocks, now: datetime) -> bool:
    responded = clocks.assigned_at if clocks.assigned_at is not None else clocks.cancelled_at
    if clocks.assigned_at is not None and clocks.classified_at is not None:
        responded = max(clocks.assigned_at, clocks.classified_at)
    return _late(clocks.respond_by, responded, now, open_=_is_open(clocks))


def _stage_findings(clocks: Clocks, now: datetime) -> list[str]:
    open_ = _is_open(clocks)
    findings = []
    for name, due, done in (
        ("resolve", clocks.resolve_by, clocks.resolved_at),
        ("feedback", clocks.feedback_by, clocks.feedback_at),
        ("review", clocks.review_by, clocks.reviewed_at),
    ):
        if _late(due, done, now, open_=open_):
            findings.append(f"{name}.breached")
    if clocks.steps_finished_late or _late(clocks.open_step_due, None, now, open_=open_):
        findings.append("steps.late")
    return findings


def breached(clocks: Clocks, now: datetime) -> bool:
    """R5.2, R1.3.1: a deadline was missed (the `breached_deadline` risk factor)."""
    # Respond, resolve, feedback, review or a plan step's due time.
    return _respond_late(clocks, now) or bool(_stage_findings(clocks, now))


def prefill_intake_timely(facts: EventFacts, now: datetime) -> Prefill:
    """R5.2 intake timely: classified and assigned within the respond deadline (R3.2)."""
    # A cancellation counts as the response; nothing done and not yet due: not applicable.
    clocks = facts.clocks
    shown = {
        "respond_by": clocks.respond_by,
        "classified_at": clocks.classified_at,
        "assigned_at": clocks.assigned_at,
        "cancelled_at": clocks.cancelled_at,
    }
    answered = clocks.assigned_at is not None or clocks.cancelled_at is not None
    if not answered and now <= clocks.respond_by:
        return Prefill(answer=Answer.NOT_APPLICABLE, findings=(), facts=shown)
    return _judged(_found({"respond.breached": _respond_late(clocks, now)}), shown)


def prefill_process_followed(facts: EventFacts, now: datetime) -> Prefill:
    """R5.2 process followed: no gate overridden (R3.2.2, R3.2.3), no stage breached."""
    # Stages: resolve, feedback, review and the plan steps (R3.3-R3.5); the respond stage is
    # judged by `intake_timely`. Never assigned: not applicable.
    clocks = facts.clocks
    shown: dict[str, object] = {
        "severity_overridden": facts.severity_overridden,
        "routing_overridden": facts.routing_overridden,
        "resolve_by": clocks.resolve_by,
        "resolved_at": clocks.resolved_at,
        "feedback_by": clocks.feedback_by,
        "feedback_at": clocks.feedback_at,
        "review_by": clocks.review_by,
        "reviewed_at": clocks.reviewed_at,
        "steps_finished_late": clocks.steps_finished_late,
        "open_step_due": clocks.open_step_due,
    }
    if clocks.assigned_at is None:
        return Prefill(answer=Answer.NOT_APPLICABLE, findings=(), facts=shown)
    overridden = {
        "severity.overridden": facts.severity_overridden,
        "routing.overridden": facts.routing_overridden,
    }
    return _judged([*_found(overridden), *_stage_findings(clocks, now)], shown)


_RESOLVED: Final = frozenset(
    {Status.RESOLVED, Status.FEEDBACK_GIVEN, Status.REVIEWED, Status.CLOSED}
)


def prefill_result_effective(facts: EventFacts) -> Prefill:
    """R5.2 result effective: not reopened, no recurrence (R1.1), satisfaction >= 3 (R6.2)."""
    # An unreachable reporter is no finding; not resolved (or cancelled): not applicable.
    shown = {
        "reopened": facts.reopened,
        "feedback_returned": facts.feedback_returned,
        "recurrences": facts.recurrences,
        "satisfaction_score": facts.satisfaction_score,
        "satisfaction_unreachable": facts.satisfaction_unreachable,
    }
    if facts.clocks.status not in _RESOLVED:
        return Prefill(answer=Answer.NOT_APPLICABLE, findings=(), facts=shown)
    score = facts.satisfaction_score
    ineffective = {
        "reopened": bool(facts.reopened),
        "recurred": bool(facts.recurrences),
        "satisfaction.low": score is not None and score <= LOW_SATISFACTION_MAX,
    }
    return _judged(_found(ineffective), shown)


def prefill(facts: EventFacts, now: datetime) -> dict[Question, Prefill]:
    """R5.2: the three pre-filled answers of a sampled event, in Question order."""
    return {
        Question.INTAKE_TIMELY: prefill_intake_timely(facts, now),
        Question.PROCESS_FOLLOWED: prefill_process_followed(facts, now),
        Question.RESULT_EFFECTIVE: prefill_result_effective(facts),
    }


def overturn_needs_note(prefilled: Answer, answer: Answer, note: str | None) -> bool:
    """R5.2: an answer other than the pre-filled one must say why (a note)."""
    return answer is not prefilled and not (note and note.strip())


# ---- findings become rectification orders (R5.3) -------------------------------------------


def responsible_department(
    question: Question, *, intake_department: str, lead_department: str | None
) -> str:
    """R5.3: the intake department for a late response (R4.1), else the lead one (R4.2)."""
    if question is Question.INTAKE_TIMELY or lead_department is None:
        return intake_department
    return lead_department


QUESTION_TEXT: Final[Mapping[Question, str]] = MappingProxyType(
    {
        Question.INTAKE_TIMELY: "intake was not timely",
        Question.PROCESS_FOLLOWED: "the process was not followed",
        Question.RESULT_EFFECTIVE: "the result was not effective",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgedAnswer:
    """A checker's answer to one question, with its note (R5.2)."""

    answer: Answer
    note: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDraft:
    """A rectification order to issue (R5.3)."""

    department: str
    questions: tuple[Question, ...]
    demand: str


def order_drafts(
    answers: Mapping[Question, JudgedAnswer],
    *,
    event_ref: str,
    intake_department: str,
    lead_department: str | None,
) -> tuple[OrderDraft, ...]:
    """R5.3: one order per department responsible for a failed question of the item."""
    # The demand names the event, what failed and the checker's notes.
    failed: dict[str, list[Question]] = {}
    for question in Question:
        judged = answers.get(question)
        if judged is not None and judged.answer is Answer.FAIL:
            department = responsible_department(
                question, intake_department=intake_department, lead_department=lead_department
            )
            failed.setdefault(department, []).append(question)
    drafts = []
    for department, questions in sorted(failed.items()):
        parts = []
        for question in questions:
            note = answers[question].note
            parts.append(QUESTION_TEXT[question] + (f" ({note})" if note else ""))
        demand = (
            f"Spot check of {event_ref}: " + "; ".join(parts) + ". "
            "Find the cause, take measures against it and report them."
        )
        drafts.append(
            OrderDraft(department=department, questions=tuple(questions), demand=demand[:4000])
        )
    return tuple(drafts)
