"""Write outbox messages in the caller's transaction (delivery is a separate worker)."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import uuid7
from app.core.jsonable import jsonable
from app.outbox import repository


def message(
    type_: str, *, event_id: uuid.UUID | None, at: datetime, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Column values of one message; the payload follows the Standard Webhooks shape."""
    message_id = uuid7()
    return {
        "id": message_id,
        "type": type_,
        "event_id": event_id,
        "created_at": at,
        "payload": {"type": type_, "timestamp": at.isoformat(), "data": jsonable(dict(data))},
    }


async def publish(
    session: AsyncSession,
    type_: str,
    *,
    event_id: uuid.UUID | None,
    at: datetime,
    data: Mapping[str, Any],
) -> None:
    """Write one message in the session's transaction (R7.1: the change and its message
    commit together or not at all)."""
    await repository.insert(session, message(type_, event_id=event_id, at=at, data=data))
