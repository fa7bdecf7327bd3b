"""Keyset cursors: opaque, URL-safe, versioned; a bad cursor is a 400 problem, never a 500."""

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request

from app.core.errors import AppError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


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
    try:
        padded = token + "=" * (-len(token) % 4)
        data: Any = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("version")
        created_at = datetime.fromisoformat(data["t"])
        if created_at.tzinfo is None:
            raise ValueError("naive")
        return Cursor(created_at, uuid.UUID(data["i"]))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("Use the next_cursor value from a previous page") from exc


LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
CursorQuery = Annotated[
    str | None, Query(max_length=500, description="The `next_cursor` of the previous page")
]


def next_link(request: Request, next_cursor: str | None) -> dict[str, str]:
    """RFC 8288 `Link: <...>; rel="next"` for the following page."""
    if next_cursor is None:
        return {}
    url = request.url.include_query_params(cursor=next_cursor)
    return {"Link": f'<{url}>; rel="next"'}
