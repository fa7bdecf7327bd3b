"""The value types of the policy document and how they report problems (issue 11 item 6).

Each check raises one pydantic error of type `PROBLEM` that carries every problem it found, each
at a location below the value checked (`()` is the value itself, `(2,)` its third item), in the
words the API has always used; `app.policy.document` turns them into `PolicyProblem`s. Checks that
need more than the value read the `ParseContext` that `parse_policy` passes to pydantic.
"""

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from typing import Annotated, Any, Final, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictInt,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from app.rules.policy import MAX_HOURS, MAX_NUMBER
from app.rules.vocabulary import SEVERITY_RANK, Category, Severity

Loc = tuple[str | int, ...]
PROBLEM: Final = "policy_problem"  # the pydantic error type of every check below


def fail(*problems: tuple[Loc, str]) -> NoReturn:
    """Report problems at locations below the value being validated (`()` = the value)."""
    summary = "; ".join(message for _, message in problems)
    raise PydanticCustomError(PROBLEM, "{summary}", {"summary": summary, "problems": problems})


def problem(message: str) -> NoReturn:
    fail(((), message))


# --------------------------------------------------------------------------------------------
# What the validators share: known departments, the taxonomy once validated, rule ids seen
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ParseContext:
    known_departments: frozenset[str] | None = None
    taxonomy: Mapping[str, tuple[str, ...]] | None = None
    rule_ids: set[str] = field(default_factory=set)
    level_ids: set[str] = field(default_factory=set)  # escalation levels: unique per ladder


def parse_context(info: ValidationInfo) -> ParseContext:
    if not isinstance(info.context, ParseContext):
        raise TypeError("validate policy documents with parse_policy() or policy_document()")
    return info.context


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def number(value: object, *, positive: bool) -> int | float:
    """A threshold (`positive=False`) or a number of hours (`positive=True`)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        problem(f"must be at most {MAX_NUMBER:.0e}")
    if (
        not isinstance(value, int | float | Decimal)
        or isinstance(value, bool)
        or not math.isfinite(value)
    ):
        problem("must be a number")
    result: int | float = value if not isinstance(value, Decimal) else _plain(value)
    if positive and result <= 0:
        problem("must be greater than 0")
    if positive and result > MAX_HOURS:
        problem(f"must be at most {MAX_HOURS} hours (ten years)")
    if abs(result) > MAX_NUMBER:
        problem(f"must be at most {MAX_NUMBER:.0e}")
    if result < 0:
        problem("must not be negative")
    return result


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        problem("must be a non-empty string")
    return value


def department_code(value: object, info: ValidationInfo) -> str:
    code = text(value)
    known = parse_context(info).known_departments
    if known is not None and code not in known:
        problem(f"unknown department {code!r}")
    return code


_SLUG: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def slug(value: object) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        problem("must be a lowercase code (a-z, 0-9, _)")
    return value


def member(enum: type[Category] | type[Severity]) -> Callable[[object], Any]:
    def check(value: object) -> Any:
        if not isinstance(value, str) or value not in tuple(enum):
            problem(f"must be one of {', '.join(enum)}")
        return enum(value)

    return check


def one_of(allowed: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or value not in allowed:
            problem(f"must be one of {', '.join(allowed)}")
        return str(value)

    return check


def _problems_of(exc: PydanticCustomError) -> tuple[tuple[Loc, str], ...]:
    problems: tuple[tuple[Loc, str], ...] = (exc.context or {})["problems"]
    return problems


def items(
    value: object,
    item: Callable[[object], Any],
    *,
    non_empty: bool = False,
    duplicate: Callable[[Any], str] | None = None,
) -> tuple[Any, ...]:
    """A list checked item by item: every bad item and every repeat is reported at its index."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | AbstractSet):
        problem("must be a list")  # a set only comes from a dataclass being written back
    problems: list[tuple[Loc, str]] = [((), "must not be empty")] if non_empty and not value else []
    result: list[Any] = []
    for i, raw in enumerate(value):
        try:
            checked = item(raw)
        except PydanticCustomError as exc:
            problems += [((i, *sub), message) for sub, message in _problems_of(exc)]
            continue
        if duplicate is not None and checked in result:
            problems.append(((i,), duplicate(checked)))
        else:
            result.append(checked)
    if problems:
        fail(*problems)
    return tuple(result)


def list_of(
    item: Callable[[object], Any],
    *,
    non_empty: bool = False,
    duplicate: Callable[[Any], str] | None = None,
) -> PlainValidator:
    def check(value: object) -> tuple[Any, ...]:
        return items(value, item, non_empty=non_empty, duplicate=duplicate)

    return PlainValidator(check)


def timezone_name(value: object) -> str:
    if not isinstance(value, str):
        problem("must be an IANA timezone name")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        problem(f"unknown timezone {value!r}")
    return value


_HHMM: Final = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def clock(value: object) -> time:
    if isinstance(value, time):  # from a WorkingCalendar being written back
        return value
    if not isinstance(value, str) or not _HHMM.match(value):
        problem("must be a time HH:MM")
    return time.fromisoformat(value)


def weekday(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        problem("must be a weekday 0 (Monday) .. 6 (Sunday)")
    return value


def day(value: object) -> date:
    if isinstance(value, date):  # from a WorkingCalendar being written back
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problem("must be a date YYYY-MM-DD")


def by_rank(severities: Iterable[Severity]) -> list[str]:
    return [s.value for s in sorted(severities, key=SEVERITY_RANK.__getitem__)]


# --------------------------------------------------------------------------------------------
# Types of the document's fields
# --------------------------------------------------------------------------------------------

Hours = Annotated[int | float, PlainValidator(lambda value: number(value, positive=True))]
Count = Annotated[StrictInt, Field(ge=1)]
Department = Annotated[str, PlainValidator(department_code)]
# A tuple validated by a plain validator needs its own serializer in pydantic 2.14's JSON mode.
_AS_LIST: Final = PlainSerializer(list, return_type=list[str])
Codes = Annotated[
    tuple[str, ...], list_of(slug, duplicate=lambda code: f"duplicate {code!r}"), _AS_LIST
]
NonEmptyCodes = Annotated[
    tuple[str, ...],
    list_of(slug, non_empty=True, duplicate=lambda code: f"duplicate {code!r}"),
    _AS_LIST,
]
CategoryName = Annotated[Category, BeforeValidator(member(Category))]
SeverityName = Annotated[Severity, BeforeValidator(member(Severity))]
Severities = Annotated[
    tuple[Severity, ...],
    list_of(member(Severity)),
    PlainSerializer(by_rank, return_type=list[str]),
]
Clock = Annotated[
    time,
    PlainValidator(clock),
    PlainSerializer(lambda at: at.strftime("%H:%M"), return_type=str),
]
Weekdays = Annotated[
    tuple[int, ...],
    list_of(weekday, non_empty=True, duplicate=lambda number: f"duplicate weekday {number}"),
    PlainSerializer(sorted, return_type=list[int]),
]
Holidays = Annotated[
    tuple[date, ...],
    list_of(day),
    PlainSerializer(lambda dates: [d.isoformat() for d in sorted(dates)], return_type=list[str]),
]


def is_none(value: object) -> bool:
    return value is None


class Section(BaseModel):
    """A part of the policy document: every key known, none left out unless it has a default."""

    model_config = ConfigDict(extra="forbid")
