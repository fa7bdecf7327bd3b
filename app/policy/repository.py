"""The policy store's SQL: versioned policy documents (R3.2; product.md section 3).

Versions are only ever added: the default as version 1 on first start, then each accepted
document as the next number. The service parses and validates; this module reads and writes.
"""

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.policy.models import PolicyVersion


async def insert_default(session: AsyncSession, document: Mapping[str, Any]) -> None:
    """Store `document` as version 1 unless there is one already."""
    # ON CONFLICT: several workers may start on an empty database at once.
    await session.execute(
        pg_insert(PolicyVersion)
        .values(version=1, document=dict(document), note="default policy")
        .on_conflict_do_nothing(index_elements=[PolicyVersion.version])
    )


async def latest_document(session: AsyncSession) -> tuple[int, dict[str, Any]] | None:
    """The highest version and its document, or None when there is none yet."""
    row = (
        await session.execute(
            sa.select(PolicyVersion.version, PolicyVersion.document)
            .order_by(PolicyVersion.version.desc())
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else (row.version, row.document)


async def document(session: AsyncSession, version: int) -> dict[str, Any] | None:
    found: dict[str, Any] | None = await session.scalar(
        sa.select(PolicyVersion.document).where(PolicyVersion.version == version)
    )
    return found


async def version_row(session: AsyncSession, version: int | None = None) -> PolicyVersion | None:
    """One stored version (None: the latest)."""
    query = sa.select(PolicyVersion)
    query = (
        query.where(PolicyVersion.version == version)
        if version is not None
        else query.order_by(PolicyVersion.version.desc()).limit(1)
    )
    return await session.scalar(query)


async def append(
    session: AsyncSession,
    document: Mapping[str, Any],
    *,
    note: str | None,
    created_by: uuid.UUID,
) -> int:
    """Store `document` as the next version and return its number. The table is locked for
    the rest of the transaction, so two concurrent writers cannot take the same number."""
    await session.execute(sa.text("LOCK TABLE policy_version IN SHARE ROW EXCLUSIVE MODE"))
    latest = await session.scalar(sa.select(sa.func.max(PolicyVersion.version))) or 0
    await session.execute(
        sa.insert(PolicyVersion).values(
            version=latest + 1, document=dict(document), note=note, created_by=created_by
        )
    )
    return int(latest) + 1
