"""Keyset cursors: opaque, URL-safe, versioned; a bad cursor is a 400 problem, never a 500."""

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request

from app.core.errors import AppError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Ours are about 130 characters; the bound is checked in decode_cursor, so that a longer one is
# an invalid cursor (400) like any other, not a validation error (422).
MAX_CURSOR_LENGTH = 500
_CURSOR_KEYS = frozenset(("v", "t", "i"))


class InvalidCursor(AppError):
    status, type, title = 400, "invalid-cursor", "The cursor is not valid"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last row seen: (created_at, id), newest first."""

    created_at: datetime
    id: uuid.UUID


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps({"v": 1, "t": cursor.created_at.isoformat(), "i": str(cursor.id)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    """The position a `next_cursor` names; anything else is 400 `invalid-cursor` (issue 10,
    item 5). Checked in full here, so nothing malformed reaches the database: base64url of a
    JSON object with exactly `v` (the integer 1), `t` (an RFC 3339 time with a zone that exists
    in UTC: year 1 at +14:00 does not) and `i` (a UUID string)."""
    try:
        if len(token) > MAX_CURSOR_LENGTH:
            raise ValueError("length")
        padded = token + "=" * (-len(token) % 4)
        data: Any = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
        if not isinstance(data, dict) or data.keys() != _CURSOR_KEYS:
            raise ValueError("shape")
        version, moment, ident = data["v"], data["t"], data["i"]
        if type(version) is not int or version != 1:
            raise ValueError("version")
        if not isinstance(moment, str) or not isinstance(ident, str):
            raise TypeError("types")
        created_at = datetime.fromisoformat(moment)
        if created_at.utcoffset() is None:
            raise ValueError("naive")
        # The database compares in UTC; a time that has none raises OverflowError here
        # instead of in the driver (where it was a 422 and an escaped exception).
        return Cursor(created_at.astimezone(UTC), uuid.UUID(ident))
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise InvalidCursor("Use the next_cursor value from a previous page") from exc


LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
CursorQuery = Annotated[
    str | None,
    Query(
        description="The `next_cursor` of the previous page",
        json_schema_extra={"maxLength": MAX_CURSOR_LENGTH},
    ),
]


def next_link(request: Request, next_cursor: str | None) -> dict[str, str]:
    """RFC 8288 `Link: <...>; rel="next"` for the following page."""
    if next_cursor is None:
        return {}
    url = request.url.include_query_params(cursor=next_cursor)
    return {"Link": f'<{url}>; rel="next"'}
