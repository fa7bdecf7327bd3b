"""Keyset cursors: opaque, URL-safe, versioned; a bad cursor is a 400 problem, never a 500."""

import base64
import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Query, Request, Response
from sqlalchemy.orm import QueryableAttribute

from app.core.errors import AppError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Ours are about 130 characters; the bound is checked in decode_cursor, so that a longer one is
# an invalid cursor (400) like any other, not a validation error (422).
MAX_CURSOR_LENGTH = 500
_CURSOR_KEYS = frozenset(("v", "t", "i"))
S = TypeVar("S", bound=sa.Select[Any])
T = TypeVar("T")
# Version 2 names the sort the position belongs to (`s`); version 1 is the default sort.
_SORTED_CURSOR_KEYS = frozenset(("v", "s", "t", "i"))
# Version 3 is a position in relevance order: `r`, the rank of the row (README, Search).
_RANKED_CURSOR_KEYS = frozenset(("v", "s", "t", "i", "r"))
DEFAULT_SORT = "created_at"
RANKED_SORT = "relevance"
# The sorts a position may belong to besides the default (`GET /v1/events?sort=`).
SORTS = frozenset(("created_at", "updated_at", "due_at", RANKED_SORT))


class InvalidCursor(AppError):
    status, type, title = 400, "invalid-cursor", "The cursor is not valid"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last row seen: (sort value, id). The sort value is `created_at`
    (newest first) unless `sort` names another (`updated_at`, `due_at`: oldest first)."""

    created_at: datetime
    id: uuid.UUID
    sort: str = DEFAULT_SORT
    rank: float | None = None  # in relevance order: the row's rank


def encode_cursor(cursor: Cursor) -> str:
    data: dict[str, Any] = {"v": 1, "t": cursor.created_at.isoformat(), "i": str(cursor.id)}
    if cursor.sort != DEFAULT_SORT:
        data |= {"v": 2, "s": cursor.sort}
    if cursor.sort == RANKED_SORT:
        data |= {"v": 3, "r": float(cursor.rank or 0.0)}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    """The position a `next_cursor` names; anything else is 400 `invalid-cursor` (issue 10,
    item 5). Checked in full here, so nothing malformed reaches the database: base64url of a
    JSON object with exactly `v` (the integer 1), `t` (an RFC 3339 time with a zone that exists
    in UTC: year 1 at +14:00 does not) and `i` (a UUID string), or `v` 2 with `s`, a sort other
    than the default, or `v` 3 with `s` `relevance` and `r`, a finite rank."""
    try:
        if len(token) > MAX_CURSOR_LENGTH:
            raise ValueError("length")
        padded = token + "=" * (-len(token) % 4)
        data: Any = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
        shapes = (_CURSOR_KEYS, _SORTED_CURSOR_KEYS, _RANKED_CURSOR_KEYS)
        if not isinstance(data, dict) or data.keys() not in shapes:
            raise ValueError("shape")
        version, moment, ident = data["v"], data["t"], data["i"]
        sort, rank = data.get("s", DEFAULT_SORT), data.get("r")
        if type(version) is not int or version != shapes.index(data.keys()) + 1:
            raise ValueError("version")
        if (
            not isinstance(sort, str)
            or sort not in SORTS
            or (version == 2 and sort in (DEFAULT_SORT, RANKED_SORT))
            or (version == 3 and sort != RANKED_SORT)
        ):
            raise ValueError("sort")
        if rank is not None and (type(rank) not in (int, float) or not math.isfinite(rank)):
            raise ValueError("rank")
        if not isinstance(moment, str) or not isinstance(ident, str):
            raise TypeError("types")
        created_at = datetime.fromisoformat(moment)
        if created_at.utcoffset() is None:
            raise ValueError("naive")
        # The database compares in UTC; a time that has none raises OverflowError here
        # instead of in the driver (where it was a 422 and an escaped exception).
        return Cursor(
            created_at.astimezone(UTC),
            uuid.UUID(ident),
            sort,
            None if rank is None else float(rank),
        )
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


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The page a list request asks for (`limit`, `cursor`), and where its `Link` header goes."""

    limit: int
    cursor: str | None
    request: Request
    response: Response

    def link(self, next_cursor: str | None) -> None:
        """Send the RFC 8288 `Link` to the next page, if there is one."""
        self.response.headers.update(next_link(self.request, next_cursor))


async def page_request(
    request: Request,
    response: Response,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> PageRequest:
    return PageRequest(limit, cursor, request, response)


PageDep = Annotated[PageRequest, Depends(page_request)]


def newest_first(
    statement: S, cursor: Cursor | None, limit: int, *keys: QueryableAttribute[Any]
) -> S:
    """One keyset page of `statement`, newest first: ordered by `keys` descending (the sort
    column and the id, or the id alone where ids are time-ordered), from the row after `cursor`,
    with one row more than `limit` so that `page_of` can tell whether another page follows."""
    if cursor is not None:
        position = (cursor.created_at, cursor.id)[-len(keys) :]
        statement = statement.where(sa.tuple_(*keys) < sa.tuple_(*position))
    return statement.order_by(*(key.desc() for key in keys)).limit(limit + 1)


def page_of(
    rows: Sequence[T], limit: int, position: Callable[[T], Cursor]
) -> tuple[Sequence[T], str | None]:
    """The page among `rows` (read by `newest_first`, one more than `limit`) and the
    `next_cursor` after its last row, None when it is the last page."""
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(position(rows[limit - 1]))
