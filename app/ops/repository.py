"""The operations checks' SQL: the schema revision the database is at."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


async def schema_revision(session: AsyncSession) -> str | None:
    """The Alembic revision stamped in the database (None: not migrated)."""
    revision: str | None = await session.scalar(sa.text("SELECT version_num FROM alembic_version"))
    return revision
