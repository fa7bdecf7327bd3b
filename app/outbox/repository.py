"""The outbox's SQL: messages inserted in the caller's transaction (delivery reads them later)."""

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import OutboxMessage


async def insert(session: AsyncSession, row: Mapping[str, Any]) -> None:
    """One message (the column values of `writer.message`), in the session's transaction."""
    await session.execute(sa.insert(OutboxMessage).values(**row))
