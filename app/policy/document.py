"""The policy document's shape, declared once (issue 11 item 6; product.md section 3, R7.2).

pydantic models validate a document and list every problem at once as `PolicyProblem`s with
dotted and indexed paths (`grading.major[0].fact`); `parse_policy` maps a valid document onto the
frozen dataclasses of `app.rules.policy`, and `policy_document` writes a policy back through the
same models. Checks that need another part of the document read it while validating: a rule's
value from its fact and op, first_involved_for from by_subcategory, subcategories from the
taxonomy and departments from the known codes (both in the validation context, like the rule ids
seen so far, which must be unique across levels).
"""

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Final, Generic, Self, TypeVar, cast

from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from app.policy.fields import (
    PROBLEM,
    CategoryName,
    Clock,
    Codes,
    Count,
    Department,
    Holidays,
    Hours,
    Loc,
    NonEmptyCodes,
    ParseContext,
    Section,
    Severities,
    SeverityName,
    Weekdays,
    fail,
    is_none,
    items,
    number,
    one_of,
    parse_context,
    problem,
    slug,
    text,
    timezone_name,
)
from app.rules.appraisal import APPRAISAL_FIGURES
from app.rules.policy import (
    ALL_OPS,
    DEFAULT_URGENT_FLOOR,
    FACT_KINDS,
    FACT_VALUES,
    OPS_BY_KIND,
    AppraisalPolicy,
    BusinessRouting,
    ComplaintRouting,
    CoordinationRouting,
    DeadlinePolicy,
    EmergencyRouting,
    EscalationLevel,
    EscalationPolicy,
    GateOptions,
    GradingPolicy,
    GradingRule,
    LevelKind,
    Notify,
    Policy,
    RoutingPolicy,
    RuleValue,
    Threshold,
    WorkingCalendar,
)
from app.rules.recurrence import RecurrencePolicy
from app.rules.vocabulary import Category, RootCause, Severity

# --------------------------------------------------------------------------------------------
# The default document (product.md sections 3 and 6). Plain JSON data: copy it before changing.
# It is `app.rules.policy.default_policy()` as a document; a test keeps the two equal.
# --------------------------------------------------------------------------------------------

DEFAULT_POLICY_DOCUMENT: Final[Mapping[str, Any]] = {
    "taxonomy": {
        "business_issue": ["workflow", "data_error", "system_failure", "other"],
        "customer_complaint": ["product_quality", "service_attitude", "delivery_time", "other"],
        "internal_coordination": ["communication", "task_allocation", "other"],
        "emergency": ["natural_disaster", "safety_accident", "public_health", "other"],
    },
    "root_cause_codes": [code.value for code in RootCause],
    "intake_department": "CS",
    "grading": {
        "major": [
            {"id": "major.full_outage", "fact": "system_outage", "op": "eq", "value": "full"},
            {"id": "major.safety_injury", "fact": "safety", "op": "eq", "value": "injury"},
            {"id": "major.reputation_risk", "fact": "reputation_risk", "op": "is_true"},
            {"id": "major.financial_loss", "fact": "financial_loss", "op": "gte", "value": 100000},
            {
                "id": "major.customers_affected",
                "fact": "customers_affected",
                "op": "gte",
                "value": 100,
            },
            {"id": "major.company_scope", "fact": "scope", "op": "eq", "value": "company"},
            {
                "id": "major.key_account_complaint",
                "fact": "key_account",
                "op": "is_true",
                "when_category": "customer_complaint",
            },
        ],
        "important": [
            {
                "id": "important.departments_needed",
                "fact": "departments_needed",
                "op": "gte",
                "value": 2,
            },
            {
                "id": "important.partial_outage",
                "fact": "system_outage",
                "op": "gte",
                "value": "partial",
            },
            {
                "id": "important.customers_affected",
                "fact": "customers_affected",
                "op": "gte",
                "value": 10,
            },
            {
                "id": "important.financial_loss",
                "fact": "financial_loss",
                "op": "gte",
                "value": 10000,
            },
            {"id": "important.minor_safety", "fact": "safety", "op": "gte", "value": "minor"},
            {"id": "important.emergency", "fact": "category", "op": "in", "value": ["emergency"]},
            {"id": "important.urgent", "fact": "urgent", "op": "is_true"},
        ],
        # Issue 11 item 4: optional in stored documents (older versions lack it).
        "urgent_floor": "important",
    },
    "routing": {
        "business_issue": {
            "by_subcategory": {"system_failure": "IT", "workflow": "OPS"},
            "first_involved_for": ["data_error"],
            "fallback": "OPS",
            "involved_cooperate": True,
        },
        "customer_complaint": {"lead": "CS", "involved_cooperate": True},
        "internal_coordination": {"all_involved": True, "min_departments": 2},
        "emergency": {
            "by_subcategory": {
                "natural_disaster": "ADM",
                "safety_accident": "SAF",
                "public_health": "HR",
                "other": "ADM",
            },
            "fallback": None,
            "involved_cooperate": True,
        },
    },
    "deadlines": {
        "respond_hours": {"urgent": 0.5, "normal": 8},
        "resolve_hours": {"major": 24, "important": 72, "general": 120},
        "feedback_hours": 24,
        "review_hours": {"major": 72, "important": 168, "general": 168},
        "calendar": None,
    },
    "gates": {
        "satisfaction_attempts": 3,
        "complex_min_departments": 2,
        "complex_severities": ["major"],
        "meeting_severities": ["major"],
        "actions_severities": ["important", "major"],
        "survey_ttl_hours": 168,
    },
    "escalation": {
        "warnings": [
            {"id": "warn_50", "at_fraction": 0.5, "notify": ["assignee"]},
            {"id": "warn_80", "at_fraction": 0.8, "notify": ["assignee", "step_owners"]},
        ],
        "breach": {"id": "breach", "notify": ["lead_head"]},
        "escalations": [
            {"id": "escalate_intake", "after_breach_hours": 4, "notify": ["intake_desk"]},
            {"id": "escalate_supervision", "after_breach_hours": 24, "notify": ["supervision"]},
        ],
        "fast_urgent": True,
        "fast_severities": ["major"],
        "fast_factor": 0.25,
    },
    # R5.5: thresholds of the appraisal marks (app/rules/appraisal.py figure ids).
    "appraisal": {
        "min_events": 5,
        "recognised": [
            {"figure": "on_time_rate", "op": "gte", "value": 0.95},
            {"figure": "satisfaction_mean", "op": "gte", "value": 4.5},
        ],
        "needs_improvement": [
            {"figure": "on_time_rate", "op": "lt", "value": 0.8},
            {"figure": "satisfaction_mean", "op": "lt", "value": 3.0},
            {"figure": "recurrence_rate", "op": "gt", "value": 0.1},
            {"figure": "rectification_overdue_rate", "op": "gt", "value": 0.0},
            {"figure": "spot_check_pass_rate", "op": "lt", "value": 0.8},
        ],
    },
    # R1.1, R5.4: what counts as a recurrence (app/rules/recurrence.py).
    "recurrence": {"window_days": 90, "similarity_threshold": 0.6},
}

# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One problem in a policy document: where (`grading.major[0].fact`, "" for the whole
    document) and what."""

    path: str
    message: str


class PolicyInvalid(Exception):
    """A policy document failed validation; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems: list[PolicyProblem] = list(problems)
        super().__init__("; ".join(f"{p.path or '<document>'}: {p.message}" for p in problems))


# Messages for pydantic's own errors, in the words the API has always used.
_MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "missing": "is required",
        "extra_forbidden": "unknown key",
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
        "dict_type": "must be an object",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
        "frozen_set_type": "must be a list",
        "bool_type": "must be true or false",
        "int_type": "must be an integer",
        "string_type": "keys must be strings",  # only dictionary keys are plain `str`
    }
)


def _path(loc: Iterable[str | int]) -> str:
    """`("grading", "major", 0, "fact")` -> `grading.major[0].fact`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":  # pydantic's marker for a dictionary key: the key names the place
            path += f".{part}" if path else part
    return path


def _message(error: ErrorDetails) -> str:
    if error["type"] == "greater_than_equal":
        return f"must be at least {error.get('ctx', {})['ge']}"
    return _MESSAGES.get(error["type"], error["msg"])


def _problems(exc: ValidationError) -> list[PolicyProblem]:
    problems: list[PolicyProblem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == PROBLEM:
            at: tuple[tuple[Loc, str], ...] = error.get("ctx", {})["problems"]
            problems.extend(PolicyProblem(_path(loc + sub), message) for sub, message in at)
        else:
            problems.append(PolicyProblem(_path(loc), _message(error)))
    return problems


def _fields(section: Section) -> dict[str, Any]:
    """A section's fields, for the rules dataclass whose fields they are (mappings read-only)."""
    return {
        name: MappingProxyType(dict(value)) if isinstance(value, dict) else value
        for name, value in section
    }


R = TypeVar("R")


class FieldForField(Section, Generic[R]):
    """A section whose fields are, one for one, those of the rules dataclass `RULES` (an
    `R`), which `to_rules` makes of them."""

    RULES: ClassVar[Callable[..., object]]

    def to_rules(self) -> R:
        return cast(R, self.RULES(**_fields(self)))


# --------------------------------------------------------------------------------------------
# Taxonomy and grading (R2, R3.2.2)
# --------------------------------------------------------------------------------------------


class TaxonomyDocument(Section):
    """Subcategories per category (R2)."""

    business_issue: NonEmptyCodes
    customer_complaint: NonEmptyCodes
    internal_coordination: NonEmptyCodes
    emergency: NonEmptyCodes

    def to_rules(self) -> Mapping[str, tuple[str, ...]]:
        return MappingProxyType({category.value: getattr(self, category) for category in Category})


def _unique(ident: str, seen: set[str], what: str) -> str:
    """An id that must be unique across the document (`seen`: those read so far)."""
    if ident in seen:
        problem(f"duplicate {what} id {ident!r}")
    seen.add(ident)
    return ident


def _rule_id(value: object, info: ValidationInfo) -> str:
    return _unique(text(value), parse_context(info).rule_ids, "rule")


def _fact(value: object) -> str:
    if not isinstance(value, str) or value not in FACT_KINDS:
        problem(f"unknown fact; one of {', '.join(FACT_KINDS)}")
    return value


def _op(value: object, info: ValidationInfo) -> str:
    if not isinstance(value, str) or value not in ALL_OPS:
        problem(f"unknown op; one of {', '.join(ALL_OPS)}")
    fact = info.data.get("fact")
    if fact is not None and value not in OPS_BY_KIND[FACT_KINDS[fact]]:
        problem(f"op {value!r} does not apply to fact {fact!r}")
    return value


_ABSENT: Final = object()  # a rule without a value, told apart from `"value": null`


def _rule_value(value: object, info: ValidationInfo) -> RuleValue:
    """The value a rule compares with, checked against its fact and op (R3.2.2)."""
    fact, op = info.data.get("fact"), info.data.get("op")
    if fact is None or op is None:  # already reported; nothing to check the value against
        return None
    if op == "is_true":
        if value is not _ABSENT and value is not None:
            problem("is_true takes no value")
        return None
    if value is _ABSENT:
        problem("is required")
    kind = FACT_KINDS[fact]
    if kind == "number":
        return number(value, positive=False)
    if kind == "flag":
        if not isinstance(value, bool):
            problem("must be true or false")
        return value
    allowed = FACT_VALUES[fact]
    if op != "in":
        return one_of(allowed)(value)
    return items(value, one_of(allowed), non_empty=True)


class GradingRuleDocument(FieldForField[GradingRule]):
    """One grading rule: `fact op value`, optionally only for one category (R3.2.2)."""

    RULES = GradingRule

    id: Annotated[str, PlainValidator(_rule_id)]
    fact: Annotated[str, PlainValidator(_fact)]
    op: Annotated[str, PlainValidator(_op)]
    value: Annotated[Any, PlainValidator(_rule_value)] = Field(
        default=_ABSENT, validate_default=True, exclude_if=is_none
    )
    when_category: CategoryName | None = Field(default=None, exclude_if=is_none)


class GradingDocument(Section):
    """Grading rules per level, most severe first, and the urgent floor (R3.1.3, R3.2.2)."""

    major: list[GradingRuleDocument]
    important: list[GradingRuleDocument]
    urgent_floor: SeverityName = DEFAULT_URGENT_FLOOR

    def to_rules(self) -> GradingPolicy:
        return GradingPolicy(
            major=tuple(rule.to_rules() for rule in self.major),
            important=tuple(rule.to_rules() for rule in self.important),
            urgent_floor=self.urgent_floor,
        )


# --------------------------------------------------------------------------------------------
# Routing (R3.2.3)
# --------------------------------------------------------------------------------------------


def _subcategories(info: ValidationInfo, category: Category) -> tuple[str, ...] | None:
    taxonomy = parse_context(info).taxonomy
    return None if taxonomy is None else taxonomy[category]


def _mapped_subcategory(category: Category) -> PlainValidator:
    """A key of by_subcategory: a subcategory of `category` in the taxonomy."""

    def check(value: object, info: ValidationInfo) -> str:
        if not isinstance(value, str):
            problem("keys must be strings")
        subcategories = _subcategories(info, category)
        if subcategories is not None and value not in subcategories:
            problem(f"unknown subcategory {value!r}")
        return value

    return PlainValidator(check)


BusinessSubcategory = Annotated[str, _mapped_subcategory(Category.BUSINESS_ISSUE)]
EmergencySubcategory = Annotated[str, _mapped_subcategory(Category.EMERGENCY)]


class BusinessRoutingDocument(FieldForField[BusinessRouting]):
    """Business problem -> the department concerned (R3.2.3)."""

    RULES = BusinessRouting

    by_subcategory: dict[BusinessSubcategory, Department]
    first_involved_for: Codes
    fallback: Department
    involved_cooperate: StrictBool = True

    @field_validator("first_involved_for")
    @classmethod
    def _known_and_not_mapped(cls, first: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        subcategories = _subcategories(info, Category.BUSINESS_ISSUE)
        mapped = info.data.get("by_subcategory", {})
        problems: list[tuple[Loc, str]] = []
        for i, sub in enumerate(first):
            if subcategories is not None and sub not in subcategories:
                problems.append(((i,), f"unknown subcategory {sub!r}"))
            if sub in mapped:
                problems.append(((i,), f"{sub!r} is also in by_subcategory"))
        if problems:
            fail(*problems)
        return first


class ComplaintRoutingDocument(FieldForField[ComplaintRouting]):
    """Customer complaint -> customer service leads (R3.2.3)."""

    RULES = ComplaintRouting

    lead: Department
    involved_cooperate: StrictBool = True


class CoordinationRoutingDocument(FieldForField[CoordinationRouting]):
    """Internal coordination -> the departments involved (R3.2.3)."""

    RULES = CoordinationRouting

    all_involved: StrictBool
    min_departments: Count


class EmergencyRoutingDocument(FieldForField[EmergencyRouting]):
    """Emergency -> the department the emergency plan names (R3.2.3)."""

    RULES = EmergencyRouting

    by_subcategory: dict[EmergencySubcategory, Department]
    fallback: Department | None = None
    involved_cooperate: StrictBool = True

    @model_validator(mode="after")
    def _every_emergency_has_a_department(self, info: ValidationInfo) -> Self:
        subcategories = _subcategories(info, Category.EMERGENCY)
        if self.fallback is None and subcategories is not None:
            unmapped = [sub for sub in subcategories if sub not in self.by_subcategory]
            if unmapped:
                fail(
                    *(
                        (("by_subcategory",), f"no department for emergency subcategory {sub!r}")
                        for sub in unmapped
                    )
                )
        return self


class RoutingDocument(Section):
    """Department mapping per category (R3.2.3)."""

    business_issue: BusinessRoutingDocument
    customer_complaint: ComplaintRoutingDocument
    internal_coordination: CoordinationRoutingDocument
    emergency: EmergencyRoutingDocument

    def to_rules(self) -> RoutingPolicy:
        return RoutingPolicy(**{category: routing.to_rules() for category, routing in self})


# --------------------------------------------------------------------------------------------
# Deadlines and gates (R1.3.1, R3.3.1, R3.5, R6.2)
# --------------------------------------------------------------------------------------------


class RespondHoursDocument(Section):
    urgent: Hours
    normal: Hours


class HoursBySeverityDocument(Section):
    major: Hours
    important: Hours
    general: Hours

    def to_rules(self) -> Mapping[Severity, float]:
        return MappingProxyType({severity: getattr(self, severity) for severity in Severity})


def _after_start(end: time, info: ValidationInfo) -> time:
    start = info.data.get("start")
    if start is not None and end <= start:
        problem("must be after start")
    return end


class CalendarDocument(Section):
    """Working hours that deadlines count in instead of clock hours (R1.3.1)."""

    timezone: Annotated[str, PlainValidator(timezone_name)]
    workdays: Weekdays
    start: Clock
    end: Annotated[Clock, AfterValidator(_after_start)]
    holidays: Holidays = ()

    def to_rules(self) -> WorkingCalendar:
        return WorkingCalendar(
            timezone=self.timezone,
            workdays=frozenset(self.workdays),
            start=self.start,
            end=self.end,
            holidays=frozenset(self.holidays),
        )


class DeadlinesDocument(Section):
    """Response, resolution, feedback and review times (R1.3.1, product.md section 3)."""

    respond_hours: RespondHoursDocument
    resolve_hours: HoursBySeverityDocument
    feedback_hours: Hours
    review_hours: HoursBySeverityDocument
    calendar: CalendarDocument | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_rules(cls, data: Any) -> Any:
        # The one place the dataclass is shaped otherwise than the document.
        if isinstance(data, DeadlinePolicy):
            return {
                "respond_hours": {
                    "urgent": data.respond_urgent_hours,
                    "normal": data.respond_normal_hours,
                },
                "resolve_hours": data.resolve_hours,
                "feedback_hours": data.feedback_hours,
                "review_hours": data.review_hours,
                "calendar": data.calendar,
            }
        return data

    def to_rules(self) -> DeadlinePolicy:
        return DeadlinePolicy(
            respond_urgent_hours=self.respond_hours.urgent,
            respond_normal_hours=self.respond_hours.normal,
            resolve_hours=self.resolve_hours.to_rules(),
            feedback_hours=self.feedback_hours,
            review_hours=self.review_hours.to_rules(),
            calendar=None if self.calendar is None else self.calendar.to_rules(),
        )


class GatesDocument(Section):
    """Options of the lifecycle gates (R3.3.1, R3.5, R6.2)."""

    satisfaction_attempts: Count
    complex_min_departments: Count
    complex_severities: Severities
    meeting_severities: Severities
    actions_severities: Severities
    survey_ttl_hours: Hours

    def to_rules(self) -> GateOptions:
        return GateOptions(
            satisfaction_attempts=self.satisfaction_attempts,
            complex_min_departments=self.complex_min_departments,
            complex_severities=frozenset(self.complex_severities),
            meeting_severities=frozenset(self.meeting_severities),
            actions_severities=frozenset(self.actions_severities),
            survey_ttl_hours=self.survey_ttl_hours,
        )


# --------------------------------------------------------------------------------------------
# Warnings and the escalation ladder (R1.1, R1.3.1, R3.3.2, R4.1, R5.1; issue 12)
# --------------------------------------------------------------------------------------------

_NOTIFY: Final = tuple(target.value for target in Notify)


def _fraction(value: object) -> float:
    fraction = number(value, positive=True)
    if fraction >= 1:
        problem("must be between 0 and 1 (a fraction of the stage's time)")
    return float(fraction)


def _notify(value: object) -> tuple[Notify, ...]:
    return tuple(
        Notify(target)
        for target in items(
            value,
            one_of(_NOTIFY),
            non_empty=True,
            duplicate=lambda target: f"duplicate {target!r}",
        )
    )


Fraction = Annotated[float, PlainValidator(_fraction)]
NotifyList = Annotated[
    tuple[Notify, ...],
    PlainValidator(_notify),
    PlainSerializer(lambda targets: [t.value for t in targets], return_type=list[str]),
]


def _level_id(value: object, info: ValidationInfo) -> str:
    return _unique(slug(value), parse_context(info).level_ids, "level")


LevelId = Annotated[str, PlainValidator(_level_id)]


class _LevelDocument(Section):
    """A level of the ladder: its fields are the level's, its kind is its class's."""

    kind: ClassVar[LevelKind]

    def to_rules(self) -> EscalationLevel:
        return EscalationLevel(kind=self.kind, **_fields(self))


class WarningDocument(_LevelDocument):
    """A warning before the due time, at a fraction of the stage's time."""

    kind = LevelKind.WARNING
    id: LevelId
    at_fraction: Fraction
    notify: NotifyList


class BreachDocument(_LevelDocument):
    """What happens at the due time."""

    kind = LevelKind.BREACH
    id: LevelId
    notify: NotifyList


class EscalationStepDocument(_LevelDocument):
    """A later level, clock hours after the due time."""

    kind = LevelKind.ESCALATION
    id: LevelId
    after_breach_hours: Hours
    notify: NotifyList


class EscalationDocument(Section):
    """Warnings and the ladder of every stage clock; shorter for urgent and fast severities."""

    warnings: list[WarningDocument]
    breach: BreachDocument
    escalations: list[EscalationStepDocument]
    fast_urgent: StrictBool = True
    fast_severities: Severities = (Severity.MAJOR,)
    fast_factor: Annotated[float, PlainValidator(lambda value: float(number(value, positive=True)))]

    @field_validator("fast_factor")
    @classmethod
    def _at_most_one(cls, factor: float) -> float:
        if factor > 1:
            problem("must be at most 1 (a factor that shortens the ladder)")
        return factor

    def to_rules(self) -> EscalationPolicy:
        return EscalationPolicy(
            warnings=tuple(level.to_rules() for level in self.warnings),
            breach=self.breach.to_rules(),
            escalations=tuple(level.to_rules() for level in self.escalations),
            fast_urgent=self.fast_urgent,
            fast_severities=frozenset(self.fast_severities),
            fast_factor=self.fast_factor,
        )


# --------------------------------------------------------------------------------------------
# Appraisal marks (R5.5; issue 14 item 3)
# --------------------------------------------------------------------------------------------


class ThresholdDocument(Section):
    """A bound on one appraisal figure."""

    figure: Annotated[str, PlainValidator(one_of(APPRAISAL_FIGURES))]
    op: Annotated[str, PlainValidator(one_of(("gte", "lte", "gt", "lt")))]
    value: Annotated[float, PlainValidator(lambda value: float(number(value, positive=False)))]

    def to_rules(self) -> Threshold:
        return Threshold(figure=self.figure, op=self.op, value=self.value)  # type: ignore[arg-type]


class AppraisalDocument(Section):
    """Thresholds that mark a department or employee recognised or needing improvement."""

    min_events: Count
    recognised: list[ThresholdDocument]
    needs_improvement: list[ThresholdDocument]

    def to_rules(self) -> AppraisalPolicy:
        return AppraisalPolicy(
            min_events=self.min_events,
            recognised=tuple(t.to_rules() for t in self.recognised),
            needs_improvement=tuple(t.to_rules() for t in self.needs_improvement),
        )


# --------------------------------------------------------------------------------------------
# Recurrence (R1.1, R5.4; issue 14 item 4)
# --------------------------------------------------------------------------------------------


def _share(value: object) -> float:
    share = float(number(value, positive=True))
    if share > 1:
        problem("must be at most 1 (a similarity from 0 to 1)")
    return share


class RecurrenceDocument(FieldForField[RecurrencePolicy]):
    """A recurrence: linked to, or as similar as the threshold to, an original of the same
    category closed within the window (app/rules/recurrence.py)."""

    RULES = RecurrencePolicy

    window_days: Count
    similarity_threshold: Annotated[float, PlainValidator(_share)]


# --------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------


class PolicyDocument(Section):
    """The whole policy document (R3, R7.2). Validate it with `parse_policy`."""

    taxonomy: TaxonomyDocument
    root_cause_codes: NonEmptyCodes
    intake_department: Department
    grading: GradingDocument
    routing: RoutingDocument
    deadlines: DeadlinesDocument
    gates: GatesDocument
    # Optional in stored documents: versions written before the stage clocks lack it.
    escalation: EscalationDocument = Field(
        default_factory=lambda: EscalationDocument.model_validate(
            DEFAULT_POLICY_DOCUMENT["escalation"], context=ParseContext()
        )
    )
    # Optional in stored documents: versions written before the appraisals lack it.
    appraisal: AppraisalDocument = Field(
        default_factory=lambda: AppraisalDocument.model_validate(
            DEFAULT_POLICY_DOCUMENT["appraisal"], context=ParseContext()
        )
    )
    # Optional in stored documents: versions written before recurrence was defined lack it.
    recurrence: RecurrenceDocument = Field(
        default_factory=lambda: RecurrenceDocument.model_validate(
            DEFAULT_POLICY_DOCUMENT["recurrence"], context=ParseContext()
        )
    )

    @field_validator("routing", mode="wrap")
    @classmethod
    def _routing_against_the_taxonomy(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        # Subcategories are checked only against a taxonomy that is itself valid.
        taxonomy = info.data.get("taxonomy")
        parse_context(info).taxonomy = taxonomy.to_rules() if taxonomy is not None else None
        return handler(value)

    def to_rules(self, version: int = 0) -> Policy:
        return Policy(
            version=version,
            taxonomy=self.taxonomy.to_rules(),
            root_cause_codes=self.root_cause_codes,
            intake_department=self.intake_department,
            grading=self.grading.to_rules(),
            routing=self.routing.to_rules(),
            deadlines=self.deadlines.to_rules(),
            gates=self.gates.to_rules(),
            escalation=self.escalation.to_rules(),
            appraisal=self.appraisal.to_rules(),
            recurrence=self.recurrence.to_rules(),
        )


def parse_policy(
    document: object, *, version: int = 0, known_departments: Collection[str] | None = None
) -> Policy:
    """Validate a policy document and build the policy; raise PolicyInvalid listing every
    problem (R7.2). With `known_departments`, every department code must be one of them."""
    known = None if known_departments is None else frozenset(known_departments)
    try:
        model = PolicyDocument.model_validate(
            document, context=ParseContext(known_departments=known)
        )
    except ValidationError as exc:
        raise PolicyInvalid(_problems(exc)) from None
    return model.to_rules(version)


def policy_document(policy: Policy) -> dict[str, Any]:
    """The policy as a fresh JSON-able document, written through the same models; it parses
    back to an equal policy (R7.2)."""
    try:
        model = PolicyDocument.model_validate(policy, from_attributes=True, context=ParseContext())
    except ValidationError as exc:
        raise PolicyInvalid(_problems(exc)) from None
    return model.model_dump(mode="json")
