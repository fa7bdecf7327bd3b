"""Base request/response models: unknown fields rejected, strings bounded, times with a zone."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EARLIEST_YEAR, LATEST_YEAR = 1900, 2200


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be an RFC 3339 time with a zone (e.g. 2026-11-26T10:00:00Z)")
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=20_000)]
Note = Annotated[str, Field(min_length=1, max_length=2_000)]
# The HTML Living Standard's "valid email address" (what browsers check in <input
# type=email>): a syntax check compiled into pydantic-core, no deliverability or IDNA lookups.
# It replaced email-validator, which cost ~10 % of the intake request's CPU (bench/README.md).
EMAIL_PATTERN = (
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
EmailAddress = Annotated[
    str,
    Field(
        max_length=320,
        pattern=EMAIL_PATTERN,
        description="An email address (the HTML standard's syntax)",
        examples=["ada@example.com"],
    ),
]
DeptCode = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Z][A-Z0-9_]{0,15}$")]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
