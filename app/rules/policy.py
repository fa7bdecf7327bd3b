"""The policy document: taxonomy, grading rules, department mapping, deadlines and gate options.

The document is versioned JSON data (product.md section 3). `Policy.from_document` validates a
document completely and reports every problem at once; `Policy.to_document` gives it back.
"""

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.rules.vocabulary import (
    OUTAGE_RANK,
    SAFETY_RANK,
    SCOPE_RANK,
    SEVERITY_RANK,
    Category,
    Outage,
    RootCause,
    Safety,
    Scope,
    Severity,
)

# --------------------------------------------------------------------------------------------
# The default document (product.md sections 3 and 6). Plain JSON data: copy it before changing.
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
}

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

_FACT_VALUES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
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


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


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


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One problem in a policy document: where and what."""

    path: str
    message: str


class PolicyInvalid(Exception):
    """A policy document failed validation; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems: list[PolicyProblem] = list(problems)
        super().__init__("; ".join(f"{p.path or '<document>'}: {p.message}" for p in problems))


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

    @classmethod
    def from_document(
        cls,
        doc: Mapping[str, Any],
        *,
        version: int = 0,
        known_departments: Collection[str] | None = None,
    ) -> "Policy":
        """Validate a policy document and build the policy; raise PolicyInvalid (R7.2)."""
        return _Parser(known_departments).policy(doc, version)

    def to_document(self) -> dict[str, Any]:
        """The policy as a fresh JSON-able document; round-trips via from_document (R7.2)."""
        return _to_document(self)


def default_policy(version: int = 0) -> Policy:
    """The policy that ships with the service (R3.2, product.md sections 3 and 6)."""
    return Policy.from_document(DEFAULT_POLICY_DOCUMENT, version=version)


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
# Validation: every problem is collected, nothing stops at the first one
# --------------------------------------------------------------------------------------------

_E = TypeVar("_E", Severity, Category)

_TOP_LEVEL: Final[tuple[str, ...]] = (
    "taxonomy",
    "root_cause_codes",
    "intake_department",
    "grading",
    "routing",
    "deadlines",
    "gates",
)
_SEVERITY_KEYS: Final[tuple[str, ...]] = tuple(Severity)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


class _Parser:
    def __init__(self, known_departments: Collection[str] | None) -> None:
        self.problems: list[PolicyProblem] = []
        self.known = None if known_departments is None else frozenset(known_departments)

    def add(self, path: str, message: str) -> None:
        self.problems.append(PolicyProblem(path, message))

    # --- primitives ---------------------------------------------------------------------

    def mapping(
        self,
        value: object,
        path: str,
        required: Collection[str] = (),
        optional: Collection[str] = (),
        *,
        open_keys: bool = False,
    ) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(path, "must be an object")
            return None
        for key in value:
            if not isinstance(key, str):
                self.add(_join(path, key), "keys must be strings")
            elif not open_keys and key not in required and key not in optional:
                self.add(_join(path, key), "unknown key")
        for key in required:
            if key not in value:
                self.add(_join(path, key), "is required")
        return value

    def sequence(self, value: object, path: str) -> Sequence[Any] | None:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            self.add(path, "must be a list")
            return None
        return value

    def number(self, value: object, path: str, *, positive: bool) -> float | None:
        """A threshold (`positive=False`) or a number of hours (`positive=True`)."""
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            self.add(path, f"must be at most {MAX_NUMBER:.0e}")
            return None
        if not _is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
            self.add(path, "must be a number")
            return None
        result: float = value  # type: ignore[assignment]
        if isinstance(value, Decimal):
            result = int(value) if value == value.to_integral_value() else float(value)
        if positive and result <= 0:
            self.add(path, "must be greater than 0")
            return None
        if positive and result > MAX_HOURS:
            self.add(path, f"must be at most {MAX_HOURS} hours (ten years)")
            return None
        if abs(result) > MAX_NUMBER:
            self.add(path, f"must be at most {MAX_NUMBER:.0e}")
            return None
        if result < 0:
            self.add(path, "must not be negative")
            return None
        return result

    def integer(self, value: object, path: str, *, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, "must be an integer")
            return None
        if value < minimum:
            self.add(path, f"must be at least {minimum}")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(path, "must be true or false")
            return None
        return value

    def text(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.add(path, "must be a non-empty string")
            return None
        return value

    def slug(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not _SLUG.match(value):
            self.add(path, "must be a lowercase code (a-z, 0-9, _)")
            return None
        return value

    def slugs(self, value: object, path: str, *, non_empty: bool) -> tuple[str, ...] | None:
        items = self.sequence(value, path)
        if items is None:
            return None
        if non_empty and not items:
            self.add(path, "must not be empty")
        result: list[str] = []
        ok = True
        for i, item in enumerate(items):
            code = self.slug(item, f"{path}[{i}]")
            if code is None:
                ok = False
            elif code in result:
                self.add(f"{path}[{i}]", f"duplicate {code!r}")
                ok = False
            else:
                result.append(code)
        return tuple(result) if ok and (result or not non_empty) else None

    def member(self, value: object, path: str, enum: type[_E]) -> _E | None:
        if isinstance(value, str) and value in tuple(enum):
            return enum(value)
        self.add(path, f"must be one of {', '.join(enum)}")
        return None

    def severities(self, value: object, path: str) -> frozenset[Severity] | None:
        items = self.sequence(value, path)
        if items is None:
            return None
        found = [self.member(item, f"{path}[{i}]", Severity) for i, item in enumerate(items)]
        if any(s is None for s in found):
            return None
        return frozenset(s for s in found if s is not None)

    def department(self, value: object, path: str) -> str | None:
        code = self.text(value, path)
        if code is not None and self.known is not None and code not in self.known:
            self.add(path, f"unknown department {code!r}")
            return None
        return code

    # --- sections -----------------------------------------------------------------------

    def policy(self, doc: Mapping[str, Any], version: int) -> Policy:
        top = self.mapping(doc, "", _TOP_LEVEL)
        if top is None:
            raise PolicyInvalid(self.problems)
        taxonomy = self.taxonomy(top.get("taxonomy"), "taxonomy") if "taxonomy" in top else None
        root_causes = (
            self.slugs(top["root_cause_codes"], "root_cause_codes", non_empty=True)
            if "root_cause_codes" in top
            else None
        )
        intake = (
            self.department(top["intake_department"], "intake_department")
            if "intake_department" in top
            else None
        )
        grading = self.grading(top["grading"], "grading") if "grading" in top else None
        routing = self.routing(top["routing"], "routing", taxonomy) if "routing" in top else None
        deadlines = self.deadlines(top["deadlines"], "deadlines") if "deadlines" in top else None
        gates = self.gates(top["gates"], "gates") if "gates" in top else None
        if (
            self.problems
            or taxonomy is None
            or root_causes is None
            or intake is None
            or grading is None
            or routing is None
            or deadlines is None
            or gates is None
        ):
            raise PolicyInvalid(self.problems)
        return Policy(
            version=version,
            taxonomy=taxonomy,
            root_cause_codes=root_causes,
            intake_department=intake,
            grading=grading,
            routing=routing,
            deadlines=deadlines,
            gates=gates,
        )

    def taxonomy(self, value: object, path: str) -> Mapping[str, tuple[str, ...]] | None:
        raw = self.mapping(value, path, tuple(Category))
        if raw is None:
            return None
        result: dict[str, tuple[str, ...]] = {}
        for category in Category:
            if category in raw:
                subs = self.slugs(raw[category], _join(path, category), non_empty=True)
                if subs is not None:
                    result[category.value] = subs
        if len(result) != len(Category):
            return None
        return MappingProxyType(result)

    def grading(self, value: object, path: str) -> GradingPolicy | None:
        raw = self.mapping(value, path, ("major", "important"))
        if raw is None:
            return None
        seen: set[str] = set()
        levels: dict[str, tuple[GradingRule, ...]] = {}
        for level in ("major", "important"):
            if level not in raw:
                continue
            items = self.sequence(raw[level], _join(path, level))
            if items is None:
                continue
            rules = [self.rule(item, f"{path}.{level}[{i}]", seen) for i, item in enumerate(items)]
            if all(rule is not None for rule in rules):
                levels[level] = tuple(rule for rule in rules if rule is not None)
        if len(levels) != 2:
            return None
        return GradingPolicy(major=levels["major"], important=levels["important"])

    def rule(self, value: object, path: str, seen: set[str]) -> GradingRule | None:
        raw = self.mapping(value, path, ("id", "fact", "op"), ("value", "when_category"))
        if raw is None:
            return None
        before = len(self.problems)
        rule_id = self.text(raw.get("id"), _join(path, "id")) if "id" in raw else None
        if rule_id is not None:
            if rule_id in seen:
                self.add(_join(path, "id"), f"duplicate rule id {rule_id!r}")
            seen.add(rule_id)
        fact = raw.get("fact")
        kind: FactKind | None = None
        if "fact" in raw:
            if isinstance(fact, str) and fact in FACT_KINDS:
                kind = FACT_KINDS[fact]
            else:
                self.add(_join(path, "fact"), f"unknown fact; one of {', '.join(FACT_KINDS)}")
        op = raw.get("op")
        if "op" in raw:
            if not isinstance(op, str) or op not in ALL_OPS:
                self.add(_join(path, "op"), f"unknown op; one of {', '.join(ALL_OPS)}")
                op = None
            elif kind is not None and op not in OPS_BY_KIND[kind]:
                self.add(_join(path, "op"), f"op {op!r} does not apply to fact {fact!r}")
                op = None
        value_path = _join(path, "value")
        rule_value: RuleValue = None
        if kind is not None and isinstance(op, str) and isinstance(fact, str):
            rule_value = self.rule_value(raw, value_path, fact, kind, op)
        when: Category | None = None
        if raw.get("when_category") is not None:
            when = self.member(raw["when_category"], _join(path, "when_category"), Category)
        if len(self.problems) != before or rule_id is None or not isinstance(fact, str):
            return None
        return GradingRule(id=rule_id, fact=fact, op=str(op), value=rule_value, when_category=when)

    def rule_value(
        self, raw: Mapping[str, Any], path: str, fact: str, kind: FactKind, op: str
    ) -> RuleValue:
        value = raw.get("value")
        if op == "is_true":
            if value is not None:
                self.add(path, "is_true takes no value")
            return None
        if "value" not in raw:
            self.add(path, "is required")
            return None
        if kind == "number":
            return self.number(value, path, positive=False)
        if kind == "flag":
            return self.boolean(value, path)
        allowed = _FACT_VALUES[fact]
        if op == "in":
            items = self.sequence(value, path)
            if items is None:
                return None
            if not items:
                self.add(path, "must not be empty")
            bad = [i for i, item in enumerate(items) if item not in allowed]
            for i in bad:
                self.add(f"{path}[{i}]", f"must be one of {', '.join(allowed)}")
            return tuple(str(item) for item in items) if not bad else None
        if not isinstance(value, str) or value not in allowed:
            self.add(path, f"must be one of {', '.join(allowed)}")
            return None
        return value

    def routing(
        self, value: object, path: str, taxonomy: Mapping[str, tuple[str, ...]] | None
    ) -> RoutingPolicy | None:
        raw = self.mapping(value, path, tuple(Category))
        if raw is None:
            return None
        before = len(self.problems)
        business = complaint = coordination = emergency = None
        if Category.BUSINESS_ISSUE in raw:
            business = self.business_routing(
                raw[Category.BUSINESS_ISSUE],
                _join(path, Category.BUSINESS_ISSUE),
                None if taxonomy is None else taxonomy[Category.BUSINESS_ISSUE],
            )
        if Category.CUSTOMER_COMPLAINT in raw:
            complaint_path = _join(path, Category.CUSTOMER_COMPLAINT)
            section = self.mapping(
                raw[Category.CUSTOMER_COMPLAINT], complaint_path, ("lead",), ("involved_cooperate",)
            )
            if section is not None:
                lead = self.department(section.get("lead"), _join(complaint_path, "lead"))
                cooperate = self.boolean(
                    section.get("involved_cooperate", True),
                    _join(complaint_path, "involved_cooperate"),
                )
                if lead is not None and cooperate is not None:
                    complaint = ComplaintRouting(lead=lead, involved_cooperate=cooperate)
        if Category.INTERNAL_COORDINATION in raw:
            coordination_path = _join(path, Category.INTERNAL_COORDINATION)
            section = self.mapping(
                raw[Category.INTERNAL_COORDINATION],
                coordination_path,
                ("all_involved", "min_departments"),
            )
            if section is not None:
                all_involved = self.boolean(
                    section.get("all_involved"), _join(coordination_path, "all_involved")
                )
                minimum = self.integer(
                    section.get("min_departments"),
                    _join(coordination_path, "min_departments"),
                    minimum=1,
                )
                if all_involved is not None and minimum is not None:
                    coordination = CoordinationRouting(
                        all_involved=all_involved, min_departments=minimum
                    )
        if Category.EMERGENCY in raw:
            emergency = self.emergency_routing(
                raw[Category.EMERGENCY],
                _join(path, Category.EMERGENCY),
                None if taxonomy is None else taxonomy[Category.EMERGENCY],
            )
        if (
            len(self.problems) != before
            or business is None
            or complaint is None
            or coordination is None
            or emergency is None
        ):
            return None
        return RoutingPolicy(
            business_issue=business,
            customer_complaint=complaint,
            internal_coordination=coordination,
            emergency=emergency,
        )

    def subcategory_map(
        self, value: object, path: str, subcategories: tuple[str, ...] | None
    ) -> Mapping[str, str] | None:
        raw = self.mapping(value, path, open_keys=True)
        if raw is None:
            return None
        before = len(self.problems)
        result: dict[str, str] = {}
        for sub, department in raw.items():
            sub_path = _join(path, sub)
            if subcategories is not None and sub not in subcategories:
                self.add(sub_path, f"unknown subcategory {sub!r}")
            code = self.department(department, sub_path)
            if code is not None:
                result[str(sub)] = code
        return MappingProxyType(result) if len(self.problems) == before else None

    def business_routing(
        self, value: object, path: str, subcategories: tuple[str, ...] | None
    ) -> BusinessRouting | None:
        raw = self.mapping(
            value,
            path,
            ("by_subcategory", "first_involved_for", "fallback"),
            ("involved_cooperate",),
        )
        if raw is None:
            return None
        before = len(self.problems)
        map_path = _join(path, "by_subcategory")
        by_sub = (
            self.subcategory_map(raw["by_subcategory"], map_path, subcategories)
            if "by_subcategory" in raw
            else None
        )
        first: tuple[str, ...] | None = None
        if "first_involved_for" in raw:
            first_path = _join(path, "first_involved_for")
            first = self.slugs(raw["first_involved_for"], first_path, non_empty=False)
            for i, sub in enumerate(first or ()):
                if subcategories is not None and sub not in subcategories:
                    self.add(f"{first_path}[{i}]", f"unknown subcategory {sub!r}")
                if by_sub is not None and sub in by_sub:
                    self.add(f"{first_path}[{i}]", f"{sub!r} is also in by_subcategory")
        fallback = (
            self.department(raw["fallback"], _join(path, "fallback")) if "fallback" in raw else None
        )
        cooperate = self.boolean(
            raw.get("involved_cooperate", True), _join(path, "involved_cooperate")
        )
        if (
            len(self.problems) != before
            or by_sub is None
            or first is None
            or fallback is None
            or cooperate is None
        ):
            return None
        return BusinessRouting(
            by_subcategory=by_sub,
            first_involved_for=first,
            fallback=fallback,
            involved_cooperate=cooperate,
        )

    def emergency_routing(
        self, value: object, path: str, subcategories: tuple[str, ...] | None
    ) -> EmergencyRouting | None:
        raw = self.mapping(value, path, ("by_subcategory",), ("fallback", "involved_cooperate"))
        if raw is None:
            return None
        before = len(self.problems)
        map_path = _join(path, "by_subcategory")
        by_sub = (
            self.subcategory_map(raw["by_subcategory"], map_path, subcategories)
            if "by_subcategory" in raw
            else None
        )
        fallback = None
        if raw.get("fallback") is not None:
            fallback = self.department(raw["fallback"], _join(path, "fallback"))
        elif by_sub is not None and subcategories is not None:
            for sub in subcategories:
                if sub not in by_sub:
                    self.add(map_path, f"no department for emergency subcategory {sub!r}")
        cooperate = self.boolean(
            raw.get("involved_cooperate", True), _join(path, "involved_cooperate")
        )
        if len(self.problems) != before or by_sub is None or cooperate is None:
            return None
        return EmergencyRouting(
            by_subcategory=by_sub, fallback=fallback, involved_cooperate=cooperate
        )

    def hours_by_severity(self, value: object, path: str) -> Mapping[Severity, float] | None:
        raw = self.mapping(value, path, _SEVERITY_KEYS)
        if raw is None:
            return None
        result: dict[Severity, float] = {}
        for severity in Severity:
            if severity in raw:
                hours = self.number(raw[severity], _join(path, severity), positive=True)
                if hours is not None:
                    result[severity] = hours
        return MappingProxyType(result) if len(result) == len(Severity) else None

    def deadlines(self, value: object, path: str) -> DeadlinePolicy | None:
        raw = self.mapping(
            value,
            path,
            ("respond_hours", "resolve_hours", "feedback_hours", "review_hours"),
            ("calendar",),
        )
        if raw is None:
            return None
        urgent = normal = None
        if "respond_hours" in raw:
            respond_path = _join(path, "respond_hours")
            respond = self.mapping(raw["respond_hours"], respond_path, ("urgent", "normal"))
            if respond is not None:
                if "urgent" in respond:
                    urgent = self.number(
                        respond["urgent"], _join(respond_path, "urgent"), positive=True
                    )
                if "normal" in respond:
                    normal = self.number(
                        respond["normal"], _join(respond_path, "normal"), positive=True
                    )
        resolve = (
            self.hours_by_severity(raw["resolve_hours"], _join(path, "resolve_hours"))
            if "resolve_hours" in raw
            else None
        )
        feedback = (
            self.number(raw["feedback_hours"], _join(path, "feedback_hours"), positive=True)
            if "feedback_hours" in raw
            else None
        )
        review = (
            self.hours_by_severity(raw["review_hours"], _join(path, "review_hours"))
            if "review_hours" in raw
            else None
        )
        calendar: WorkingCalendar | None = None
        calendar_ok = True
        if raw.get("calendar") is not None:
            calendar = self.calendar(raw["calendar"], _join(path, "calendar"))
            calendar_ok = calendar is not None
        if (
            urgent is None
            or normal is None
            or resolve is None
            or feedback is None
            or review is None
            or not calendar_ok
        ):
            return None
        return DeadlinePolicy(
            respond_urgent_hours=urgent,
            respond_normal_hours=normal,
            resolve_hours=resolve,
            feedback_hours=feedback,
            review_hours=review,
            calendar=calendar,
        )

    def clock(self, value: object, path: str) -> time | None:
        if not isinstance(value, str) or not _HHMM.match(value):
            self.add(path, "must be a time HH:MM")
            return None
        return time.fromisoformat(value)

    def calendar(self, value: object, path: str) -> WorkingCalendar | None:
        raw = self.mapping(value, path, ("timezone", "workdays", "start", "end"), ("holidays",))
        if raw is None:
            return None
        before = len(self.problems)
        zone = raw.get("timezone")
        zone_path = _join(path, "timezone")
        if "timezone" in raw:
            if not isinstance(zone, str):
                self.add(zone_path, "must be an IANA timezone name")
            else:
                try:
                    ZoneInfo(zone)
                except (ZoneInfoNotFoundError, ValueError):
                    self.add(zone_path, f"unknown timezone {zone!r}")
        workdays: set[int] = set()
        if "workdays" in raw:
            days_path = _join(path, "workdays")
            days = self.sequence(raw["workdays"], days_path)
            if days is not None and not days:
                self.add(days_path, "must not be empty")
            for i, day in enumerate(days or ()):
                if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                    self.add(f"{days_path}[{i}]", "must be a weekday 0 (Monday) .. 6 (Sunday)")
                elif day in workdays:
                    self.add(f"{days_path}[{i}]", f"duplicate weekday {day}")
                else:
                    workdays.add(day)
        start = self.clock(raw["start"], _join(path, "start")) if "start" in raw else None
        end = self.clock(raw["end"], _join(path, "end")) if "end" in raw else None
        if start is not None and end is not None and end <= start:
            self.add(_join(path, "end"), "must be after start")
        holidays: set[date] = set()
        holidays_path = _join(path, "holidays")
        for i, item in enumerate(self.sequence(raw.get("holidays", []), holidays_path) or ()):
            day_value: date | None = None
            if isinstance(item, str) and _ISO_DATE.match(item):
                try:
                    day_value = date.fromisoformat(item)
                except ValueError:
                    day_value = None
            if day_value is None:
                self.add(f"{holidays_path}[{i}]", "must be a date YYYY-MM-DD")
            else:
                holidays.add(day_value)
        if len(self.problems) != before or start is None or end is None:
            return None
        return WorkingCalendar(
            timezone=str(zone),
            workdays=frozenset(workdays),
            start=start,
            end=end,
            holidays=frozenset(holidays),
        )

    def gates(self, value: object, path: str) -> GateOptions | None:
        keys = (
            "satisfaction_attempts",
            "complex_min_departments",
            "complex_severities",
            "meeting_severities",
            "actions_severities",
            "survey_ttl_hours",
        )
        raw = self.mapping(value, path, keys)
        if raw is None:
            return None
        attempts = minimum = complex_ = meeting = actions = ttl = None
        if "satisfaction_attempts" in raw:
            attempts = self.integer(
                raw["satisfaction_attempts"], _join(path, "satisfaction_attempts"), minimum=1
            )
        if "complex_min_departments" in raw:
            minimum = self.integer(
                raw["complex_min_departments"], _join(path, "complex_min_departments"), minimum=1
            )
        if "complex_severities" in raw:
            complex_ = self.severities(raw["complex_severities"], _join(path, "complex_severities"))
        if "meeting_severities" in raw:
            meeting = self.severities(raw["meeting_severities"], _join(path, "meeting_severities"))
        if "actions_severities" in raw:
            actions = self.severities(raw["actions_severities"], _join(path, "actions_severities"))
        if "survey_ttl_hours" in raw:
            ttl = self.number(
                raw["survey_ttl_hours"], _join(path, "survey_ttl_hours"), positive=True
            )
        if (
            attempts is None
            or minimum is None
            or complex_ is None
            or meeting is None
            or actions is None
            or ttl is None
        ):
            return None
        return GateOptions(
            satisfaction_attempts=attempts,
            complex_min_departments=minimum,
            complex_severities=complex_,
            meeting_severities=meeting,
            actions_severities=actions,
            survey_ttl_hours=ttl,
        )


# --------------------------------------------------------------------------------------------
# Back to a document
# --------------------------------------------------------------------------------------------


def _severity_list(severities: Collection[Severity]) -> list[str]:
    return [s.value for s in sorted(severities, key=SEVERITY_RANK.__getitem__)]


def _rule_document(rule: GradingRule) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": rule.id, "fact": rule.fact, "op": rule.op}
    if rule.value is not None:
        doc["value"] = list(rule.value) if isinstance(rule.value, tuple) else rule.value
    if rule.when_category is not None:
        doc["when_category"] = rule.when_category.value
    return doc


def _calendar_document(calendar: WorkingCalendar | None) -> dict[str, Any] | None:
    if calendar is None:
        return None
    return {
        "timezone": calendar.timezone,
        "workdays": sorted(calendar.workdays),
        "start": calendar.start.strftime("%H:%M"),
        "end": calendar.end.strftime("%H:%M"),
        "holidays": [day.isoformat() for day in sorted(calendar.holidays)],
    }


def _to_document(policy: Policy) -> dict[str, Any]:
    routing = policy.routing
    deadlines = policy.deadlines
    gates = policy.gates
    return {
        "taxonomy": {category: list(subs) for category, subs in policy.taxonomy.items()},
        "root_cause_codes": list(policy.root_cause_codes),
        "intake_department": policy.intake_department,
        "grading": {
            "major": [_rule_document(rule) for rule in policy.grading.major],
            "important": [_rule_document(rule) for rule in policy.grading.important],
        },
        "routing": {
            "business_issue": {
                "by_subcategory": dict(routing.business_issue.by_subcategory),
                "first_involved_for": list(routing.business_issue.first_involved_for),
                "fallback": routing.business_issue.fallback,
                "involved_cooperate": routing.business_issue.involved_cooperate,
            },
            "customer_complaint": {
                "lead": routing.customer_complaint.lead,
                "involved_cooperate": routing.customer_complaint.involved_cooperate,
            },
            "internal_coordination": {
                "all_involved": routing.internal_coordination.all_involved,
                "min_departments": routing.internal_coordination.min_departments,
            },
            "emergency": {
                "by_subcategory": dict(routing.emergency.by_subcategory),
                "fallback": routing.emergency.fallback,
                "involved_cooperate": routing.emergency.involved_cooperate,
            },
        },
        "deadlines": {
            "respond_hours": {
                "urgent": deadlines.respond_urgent_hours,
                "normal": deadlines.respond_normal_hours,
            },
            "resolve_hours": {s.value: deadlines.resolve_hours[s] for s in reversed(Severity)},
            "feedback_hours": deadlines.feedback_hours,
            "review_hours": {s.value: deadlines.review_hours[s] for s in reversed(Severity)},
            "calendar": _calendar_document(deadlines.calendar),
        },
        "gates": {
            "satisfaction_attempts": gates.satisfaction_attempts,
            "complex_min_departments": gates.complex_min_departments,
            "complex_severities": _severity_list(gates.complex_severities),
            "meeting_severities": _severity_list(gates.meeting_severities),
            "actions_severities": _severity_list(gates.actions_severities),
            "survey_ttl_hours": gates.survey_ttl_hours,
        },
    }
