"""The typed policy: taxonomy, grading rules, department mapping, deadlines and gate options.

The policy is versioned data (product.md section 3). These frozen dataclasses are what the pure
rules read; the JSON document they come from is declared, validated and written back once, in
`app.policy.document` (issue 11 item 6). `default_policy()` builds the shipped default directly,
so the rules and their tests need nothing outside the standard library.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.rules.recurrence import DEFAULT_RECURRENCE, RecurrencePolicy
from app.rules.vocabulary import (
    OUTAGE_RANK,
    SAFETY_RANK,
    SCOPE_RANK,
    Category,
    Outage,
    RootCause,
    Safety,
    Scope,
    Severity,
)

# --------------------------------------------------------------------------------------------
# Facts and operators the grading rules may use (R3.2.2)
# --------------------------------------------------------------------------------------------

FactKind = Literal["ranked", "number", "flag", "category"]

FACT_KINDS: Final[Mapping[str, FactKind]] = MappingProxyType(
    {
        "scope": "ranked",
        "departments_needed": "number",
        "customers_affected": "number",
        "system_outage": "ranked",
        "safety": "ranked",
        "financial_loss": "number",
        "reputation_risk": "flag",
        "key_account": "flag",
        "category": "category",
        "urgent": "flag",
    }
)

OPS_BY_KIND: Final[Mapping[FactKind, tuple[str, ...]]] = MappingProxyType(
    {
        "ranked": ("eq", "gte", "in"),
        "number": ("eq", "gte"),
        "flag": ("is_true", "eq"),
        "category": ("eq", "in"),
    }
)

ALL_OPS: Final[tuple[str, ...]] = ("eq", "gte", "in", "is_true")

# Ranked enum facts compare by rank for "gte" (none < partial < full, ...).
FACT_RANKS: Final[Mapping[str, Mapping[str, int]]] = MappingProxyType(
    {
        "scope": MappingProxyType({str(k): v for k, v in SCOPE_RANK.items()}),
        "system_outage": MappingProxyType({str(k): v for k, v in OUTAGE_RANK.items()}),
        "safety": MappingProxyType({str(k): v for k, v in SAFETY_RANK.items()}),
    }
)

# The values a ranked or category fact may be compared with (R3.2.2).
FACT_VALUES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "scope": tuple(Scope),
        "system_outage": tuple(Outage),
        "safety": tuple(Safety),
        "category": tuple(Category),
    }
)

RuleScalar = str | int | float | bool
RuleValue = RuleScalar | tuple[RuleScalar, ...] | None


# Bounds that keep deadline arithmetic finite and fast (product.md section 3).
MAX_HOURS: Final = 87_600
MAX_NUMBER: Final = 10**15
# The urgent floor when a policy document does not name one (issue 11 item 4).
DEFAULT_URGENT_FLOOR: Final = Severity.IMPORTANT


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Typed policy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GradingRule:
    """One grading rule (R3.2.2): `fact op value`, optionally only for one category."""

    id: str
    fact: str
    op: str
    value: RuleValue = None
    when_category: Category | None = None

    def matches(self, facts: Mapping[str, object]) -> bool:
        """Whether this rule fires for the given fact values (R3.2.2)."""
        if self.when_category is not None and facts.get("category") != self.when_category:
            return False
        if self.fact not in facts:
            return False
        actual = facts[self.fact]
        if self.op == "is_true":
            return actual is True
        if self.op == "eq":
            return actual == self.value
        if self.op == "in":
            return isinstance(self.value, tuple) and actual in self.value
        if self.op == "gte":
            ranks = FACT_RANKS.get(self.fact)
            if ranks is not None:
                have, need = ranks.get(str(actual)), ranks.get(str(self.value))
                return have is not None and need is not None and have >= need
            if _is_number(actual) and _is_number(self.value):
                return bool(actual >= self.value)  # type: ignore[operator]
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class GradingPolicy:
    """Grading rules per level, most severe level first (R3.2.2)."""

    major: tuple[GradingRule, ...]
    important: tuple[GradingRule, ...]
    # R3.1.3 / R3.2.2: a manual grade never takes an urgent event below this level.
    urgent_floor: Severity = DEFAULT_URGENT_FLOOR

    @property
    def levels(self) -> tuple[tuple[Severity, tuple[GradingRule, ...]], ...]:
        """Levels in evaluation order: the first level with a firing rule wins (R3.2.2)."""
        return ((Severity.MAJOR, self.major), (Severity.IMPORTANT, self.important))

    @property
    def rules(self) -> Mapping[Severity, tuple[GradingRule, ...]]:
        """Rules by level (R3.2.2)."""
        return MappingProxyType(dict(self.levels))


@dataclass(frozen=True, slots=True, kw_only=True)
class BusinessRouting:
    """Business problem -> the department concerned (R3.2.3)."""

    by_subcategory: Mapping[str, str]
    first_involved_for: tuple[str, ...] = ()
    fallback: str
    involved_cooperate: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplaintRouting:
    """Customer complaint -> customer service leads, departments concerned assist (R3.2.3)."""

    lead: str
    involved_cooperate: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CoordinationRouting:
    """Internal coordination -> the departments involved solve it together (R3.2.3)."""

    all_involved: bool = True
    min_departments: int = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class EmergencyRouting:
    """Emergency -> the department the emergency plan names (R3.2.3)."""

    by_subcategory: Mapping[str, str]
    fallback: str | None = None
    involved_cooperate: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingPolicy:
    """Department mapping per category (R3.2.3)."""

    business_issue: BusinessRouting
    customer_complaint: ComplaintRouting
    internal_coordination: CoordinationRouting
    emergency: EmergencyRouting


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkingCalendar:
    """Working hours that deadlines may count in instead of clock hours (product.md section 3)."""

    timezone: str
    workdays: frozenset[int] = frozenset(range(5))
    start: time = time(9, 0)
    end: time = time(17, 0)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.workdays or not self.workdays <= frozenset(range(7)):
            raise ValueError("workdays must be a non-empty set of weekdays 0..6")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        self.zone  # noqa: B018 - fails early on an unknown timezone

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's timezone, for counting working time (R1.3.1)."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is a workday and not a holiday (R1.3.1)."""
        return day.weekday() in self.workdays and day not in self.holidays


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadlinePolicy:
    """Response, resolution, feedback and review times (R1.3.1, product.md section 3)."""

    respond_urgent_hours: float
    respond_normal_hours: float
    resolve_hours: Mapping[Severity, float]
    feedback_hours: float
    review_hours: Mapping[Severity, float]
    calendar: WorkingCalendar | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GateOptions:
    """Options of the lifecycle gates (R3.3.1, R3.5, R6.2)."""

    satisfaction_attempts: int = 3
    complex_min_departments: int = 2
    complex_severities: frozenset[Severity] = frozenset({Severity.MAJOR})
    meeting_severities: frozenset[Severity] = frozenset({Severity.MAJOR})
    actions_severities: frozenset[Severity] = frozenset({Severity.IMPORTANT, Severity.MAJOR})
    survey_ttl_hours: float = 168


class Notify(StrEnum):
    """Who a warning or an escalation names as having to act (R1.3.1, R3.3.2, R4.1, R5.1)."""

    ASSIGNEE = "assignee"  # the assignee, or the intake desk while nobody is assigned
    STEP_OWNERS = "step_owners"  # the owners of the plan's open steps
    LEAD_HEAD = "lead_head"  # the head of the lead department (the intake desk's before one)
    INTAKE_DESK = "intake_desk"  # the intake department's agents (R4.1: follows progress)
    SUPERVISION = "supervision"  # the supervision group (R5.1)


class LevelKind(StrEnum):
    """The three kinds of rung on the ladder of a stage clock."""

    WARNING = "warning"  # before the due time, at a fraction of the stage's time
    BREACH = "breach"  # at the due time
    ESCALATION = "escalation"  # hours after the due time


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationLevel:
    """One rung of the ladder (R1.3.1, R3.3.2): when it fires and whom it names."""

    id: str
    kind: LevelKind
    notify: tuple[Notify, ...]
    at_fraction: float | None = None  # WARNING: of the stage's time (0 < f < 1)
    after_breach_hours: float | None = None  # ESCALATION: clock hours after the due time


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationPolicy:
    """Warnings and the escalation ladder of every stage clock (R1.1, R1.3.1, R3.3.2, R4.1).

    Warnings fire at fractions of the stage's time, the breach at the due time, and each later
    level a number of clock hours after it; for urgent events and the `fast_severities` those
    hours are multiplied by `fast_factor` (shorter)."""

    warnings: tuple[EscalationLevel, ...]
    breach: EscalationLevel
    escalations: tuple[EscalationLevel, ...]
    fast_urgent: bool = True
    fast_severities: frozenset[Severity] = frozenset({Severity.MAJOR})
    fast_factor: float = 0.25

    @property
    def levels(self) -> tuple[EscalationLevel, ...]:
        """Every rung, warnings first, in the order they fire for one clock (R1.3.1)."""
        return (*self.warnings, self.breach, *self.escalations)


DEFAULT_ESCALATION: Final = EscalationPolicy(
    warnings=(
        EscalationLevel(
            id="warn_50", kind=LevelKind.WARNING, notify=(Notify.ASSIGNEE,), at_fraction=0.5
        ),
        EscalationLevel(
            id="warn_80",
            kind=LevelKind.WARNING,
            notify=(Notify.ASSIGNEE, Notify.STEP_OWNERS),
            at_fraction=0.8,
        ),
    ),
    breach=EscalationLevel(id="breach", kind=LevelKind.BREACH, notify=(Notify.LEAD_HEAD,)),
    escalations=(
        EscalationLevel(
            id="escalate_intake",
            kind=LevelKind.ESCALATION,
            notify=(Notify.INTAKE_DESK,),
            after_breach_hours=4,
        ),
        EscalationLevel(
            id="escalate_supervision",
            kind=LevelKind.ESCALATION,
            notify=(Notify.SUPERVISION,),
            after_breach_hours=24,
        ),
    ),
)


ThresholdOp = Literal["gte", "lte", "gt", "lt"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """A bound on one appraisal figure (`app/rules/appraisal.py` DEFINITIONS ids) (R5.5)."""

    figure: str
    op: ThresholdOp
    value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AppraisalPolicy:
    """R5.5: `recognised` when every one of its thresholds holds, `needs_improvement` when any
    of its thresholds holds; fewer than `min_events` events in the period: not rated."""

    min_events: int = 5
    recognised: tuple[Threshold, ...] = ()
    needs_improvement: tuple[Threshold, ...] = ()


DEFAULT_APPRAISAL: Final = AppraisalPolicy(
    min_events=5,
    recognised=(
        Threshold(figure="on_time_rate", op="gte", value=0.95),
        Threshold(figure="satisfaction_mean", op="gte", value=4.5),
    ),
    needs_improvement=(
        Threshold(figure="on_time_rate", op="lt", value=0.8),
        Threshold(figure="satisfaction_mean", op="lt", value=3.0),
        Threshold(figure="recurrence_rate", op="gt", value=0.1),
        Threshold(figure="rectification_overdue_rate", op="gt", value=0.0),
        Threshold(figure="spot_check_pass_rate", op="lt", value=0.8),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The whole policy: taxonomy, grading, routing, deadlines and gates (R3, R7.2)."""

    # The DB layer numbers versions; two policies with the same content compare equal.
    version: int = field(default=0, compare=False)
    taxonomy: Mapping[str, tuple[str, ...]]
    root_cause_codes: tuple[str, ...]
    intake_department: str
    grading: GradingPolicy
    routing: RoutingPolicy
    deadlines: DeadlinePolicy
    gates: GateOptions
    # Optional in stored documents (versions written before the clocks had it).
    escalation: EscalationPolicy = DEFAULT_ESCALATION
    # Optional in stored documents (versions written before the appraisals had it; R5.5).
    appraisal: AppraisalPolicy = DEFAULT_APPRAISAL
    # Optional in stored documents (versions written before recurrence was defined; R5.4).
    recurrence: RecurrencePolicy = DEFAULT_RECURRENCE


def department_codes(policy: Policy) -> frozenset[str]:
    """Every department code the policy references (R3.2.3, R4.1)."""
    routing = policy.routing
    codes = {policy.intake_department, routing.customer_complaint.lead}
    codes.update(routing.business_issue.by_subcategory.values())
    codes.add(routing.business_issue.fallback)
    codes.update(routing.emergency.by_subcategory.values())
    if routing.emergency.fallback is not None:
        codes.add(routing.emergency.fallback)
    return frozenset(codes)


# --------------------------------------------------------------------------------------------
# The default policy (product.md sections 3 and 6). app.policy.document.DEFAULT_POLICY_DOCUMENT
# is the same policy as a document; a test keeps the two equal.
# --------------------------------------------------------------------------------------------


def _rule(rule_id: str, fact: str, op: str, value: RuleValue = None) -> GradingRule:
    return GradingRule(id=rule_id, fact=fact, op=op, value=value)


_SEVERITY_HOURS: Final = (Severity.MAJOR, Severity.IMPORTANT, Severity.GENERAL)

_DEFAULT_POLICY: Final = Policy(
    taxonomy=MappingProxyType(
        {
            "business_issue": ("workflow", "data_error", "system_failure", "other"),
            "customer_complaint": ("product_quality", "service_attitude", "delivery_time", "other"),
            "internal_coordination": ("communication", "task_allocation", "other"),
            "emergency": ("natural_disaster", "safety_accident", "public_health", "other"),
        }
    ),
    root_cause_codes=tuple(code.value for code in RootCause),
    intake_department="CS",
    grading=GradingPolicy(
        major=(
            _rule("major.full_outage", "system_outage", "eq", "full"),
            _rule("major.safety_injury", "safety", "eq", "injury"),
            _rule("major.reputation_risk", "reputation_risk", "is_true"),
            _rule("major.financial_loss", "financial_loss", "gte", 100000),
            _rule("major.customers_affected", "customers_affected", "gte", 100),
            _rule("major.company_scope", "scope", "eq", "company"),
            GradingRule(
                id="major.key_account_complaint",
                fact="key_account",
                op="is_true",
                when_category=Category.CUSTOMER_COMPLAINT,
            ),
        ),
        important=(
            _rule("important.departments_needed", "departments_needed", "gte", 2),
            _rule("important.partial_outage", "system_outage", "gte", "partial"),
            _rule("important.customers_affected", "customers_affected", "gte", 10),
            _rule("important.financial_loss", "financial_loss", "gte", 10000),
            _rule("important.minor_safety", "safety", "gte", "minor"),
            _rule("important.emergency", "category", "in", ("emergency",)),
            _rule("important.urgent", "urgent", "is_true"),
        ),
        urgent_floor=Severity.IMPORTANT,
    ),
    routing=RoutingPolicy(
        business_issue=BusinessRouting(
            by_subcategory=MappingProxyType({"system_failure": "IT", "workflow": "OPS"}),
            first_involved_for=("data_error",),
            fallback="OPS",
        ),
        customer_complaint=ComplaintRouting(lead="CS"),
        internal_coordination=CoordinationRouting(all_involved=True, min_departments=2),
        emergency=EmergencyRouting(
            by_subcategory=MappingProxyType(
                {
                    "natural_disaster": "ADM",
                    "safety_accident": "SAF",
                    "public_health": "HR",
                    "other": "ADM",
                }
            ),
        ),
    ),
    deadlines=DeadlinePolicy(
        respond_urgent_hours=0.5,
        respond_normal_hours=8,
        resolve_hours=MappingProxyType(dict(zip(_SEVERITY_HOURS, (24, 72, 120), strict=True))),
        feedback_hours=24,
        review_hours=MappingProxyType(dict(zip(_SEVERITY_HOURS, (72, 168, 168), strict=True))),
    ),
    gates=GateOptions(),
)


def default_policy(version: int = 0) -> Policy:
    """The policy that ships with the service (R3.2, product.md sections 3 and 6)."""
    return replace(_DEFAULT_POLICY, version=version)
