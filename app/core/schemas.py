"""Base request/response models: unknown fields rejected, strings bounded, times with a zone.

Request bodies take values as JSON sent them (issue 10 item 12): no control characters in
text, no coercion between JSON types (`"urgent": "yes"`, `"score": "5"` and `"score": 5.0` are
refused), for every field of every request model, checked once here in `RequestModel`.
"""

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.core.clock import utcnow

EARLIEST_YEAR, LATEST_YEAR = 1900, 2200
# How far ahead of the server's clock a reported moment may be: clock skew and time zones,
# not events that have not happened yet (issue 10 item 12).
FUTURE_TOLERANCE = timedelta(days=1)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be an RFC 3339 time with a zone (e.g. 2026-11-26T10:00:00Z)")
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def _not_ahead(value: datetime) -> datetime:
    if value > utcnow() + FUTURE_TOLERANCE:
        raise ValueError("must not be more than a day in the future")
    return value


# Issue 15 (contract fuzzing): a query parameter's "0.5" was taken as a Unix time.
_RFC3339_START = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]")


def _rfc3339_text(value: Any) -> Any:
    """A time sent as text is RFC 3339 (`2026-11-26T10:00:00Z`), never a number in a string."""
    if isinstance(value, str) and not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 time with a zone (e.g. 2026-11-26T10:00:00Z)")
    return value


AwareDatetime = Annotated[datetime, BeforeValidator(_rfc3339_text), AfterValidator(_aware)]
# A moment that has happened (e.g. when an event occurred): at most a day ahead of now.
PastDatetime = Annotated[AwareDatetime, AfterValidator(_not_ahead)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=20_000)]
Note = Annotated[str, Field(min_length=1, max_length=2_000)]
# The HTML Living Standard's "valid email address" (what browsers check in <input
# type=email>), widened to internationalised addresses (RFC 6531 local parts, IDNA U-labels:
# `wang@例子.中国`): a syntax check compiled into pydantic-core, no deliverability or IDNA
# lookups. It replaced email-validator, which cost ~10 % of the intake request's CPU
# (bench/README.md). _INTL is the non-ASCII letters, marks and symbols of the Basic
# Multilingual Plane without C1 controls, NBSP, the General Punctuation block (spaces,
# zero-width and bidi controls, line separators), the ideographic space, surrogates, private
# use, non-characters and the BOM; written as \u escapes so the pattern reads the same to
# pydantic-core's Rust regex, Python's re and the ECMAScript of OpenAPI tools.
_INTL = r"\u00A1-\u1FFF\u2070-\u2FFF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFEFE\uFF00-\uFFEF"
_LABEL = rf"[a-zA-Z0-9{_INTL}](?:[a-zA-Z0-9{_INTL}-]{{0,61}}[a-zA-Z0-9{_INTL}])?"
EMAIL_PATTERN = rf"^[a-zA-Z0-9.!#$%&'*+/=?^_`{{|}}~{_INTL}-]+@{_LABEL}(?:\.{_LABEL})*$"
EmailAddress = Annotated[
    str,
    Field(
        max_length=320,
        pattern=EMAIL_PATTERN,
        description="An email address (the HTML standard's syntax, with non-ASCII letters)",
        examples=["ada@example.com", "wang@例子.中国"],
    ),
]
DeptCode = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Z][A-Z0-9_]{0,15}$")]

# C0 controls but tab, line feed and carriage return; DEL; C1 controls (Unicode category Cc).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_ERROR = PydanticCustomError(
    "control_character",
    "Control characters (other than tab, line feed, carriage return) are not allowed",
)


@dataclass(frozen=True, slots=True)
class _JsonType:
    """What a scalar field accepts: its JSON type, never a string or number standing for it."""

    accepts: tuple[type, ...]
    error: PydanticCustomError


_BOOLEAN = _JsonType((bool,), PydanticCustomError("bool_type", "Input should be true or false"))
_INTEGER = _JsonType((int,), PydanticCustomError("int_type", "Input should be a JSON integer"))
# Decimal: the value a model built in Python holds (`Impact(financial_loss=Decimal(...))`).
_NUMBER = _JsonType(
    (int, float, Decimal), PydanticCustomError("decimal_type", "Input should be a JSON number")
)
# datetime: as a model built in Python holds it; a number (a Unix time) is refused.
_TIME = _JsonType(
    (str, datetime), PydanticCustomError("datetime_type", "Input should be an RFC 3339 string")
)
_SCALARS: Mapping[Any, _JsonType] = {
    bool: _BOOLEAN,
    int: _INTEGER,
    float: _NUMBER,
    Decimal: _NUMBER,
    datetime: _TIME,
}


def _error(error: PydanticCustomError, loc: tuple[str | int, ...], value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=error, loc=loc, input=value)


def _json_type(annotation: Any) -> _JsonType | None:
    """The scalar JSON type a field annotation stands for (`bool`, `int | None`,
    `Annotated[int, Field(ge=1)] | None`, `bool | MISSING`), or None for anything else."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None) and a is not MISSING]
        if len(members) != 1:
            return None
        annotation = members[0]
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return _SCALARS.get(annotation)


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Per subclass: the scalar fields whose JSON type is checked before pydantic's lax
    # coercion (filled in `__pydantic_init_subclass__`).
    json_types: ClassVar[Mapping[str, _JsonType]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.json_types = {
            name: kind
            for name, field in cls.model_fields.items()
            if (kind := _json_type(field.annotation)) is not None
        }

    @model_validator(mode="before")
    @classmethod
    def _as_sent(cls, data: Any) -> Any:
        """Issue 10 item 12: no control characters in text (a field, or an item of a list),
        scalars of the JSON type the field declares. One call per model, each nested model
        checks its own fields; errors carry the field's location like pydantic's own."""
        if type(data) is not dict:
            return data
        errors: list[InitErrorDetails] = []
        for name, value in data.items():
            if type(value) is str:
                if not value.isprintable() and _CONTROL.search(value):
                    errors.append(_error(_CONTROL_ERROR, (name,), value))
            elif type(value) is list:
                for index, item in enumerate(value):
                    if type(item) is str and not item.isprintable() and _CONTROL.search(item):
                        errors.append(_error(_CONTROL_ERROR, (name, index), item))
        for name, kind in cls.json_types.items():
            value = data.get(name)
            if value is not None and type(value) not in kind.accepts:
                errors.append(_error(kind.error, (name,), value))
        if errors:
            # pydantic-core keeps a ValidationError's own locations (pydantic-core#510).
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
