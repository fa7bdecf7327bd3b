"""How jobs claim work, so that any number of runners on one database never do one piece of
work twice (issue 12, item 1).

* Rows: `claim(select, limit=n)` locks up to n rows with `FOR UPDATE SKIP LOCKED` in the
  piece's transaction. Rows another runner holds are skipped, not waited for; the lock lasts
  until the piece commits, so the work on a row and the mark that it is done are one
  transaction, and a row already done no longer matches the select.
* Leases: `take_lease` / `renew_lease` / `release_lease` on `job_lease(name, holder,
  expires_at)`, for singleton jobs (a purge) or work that cannot be held in one transaction.
  Each call is its own short transaction. A lease only excludes while it is renewed in time:
  work done under one should still be safe to repeat or be claimed by row.
"""

from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.runner.models import JobLease

_Select = TypeVar("_Select", bound=sa.Select[Any])


def claim(select: _Select, *, limit: int, of: Any = None) -> _Select:
    """`select` as a claim: at most `limit` rows, locked until the transaction ends, skipping
    rows another transaction holds (`of`: the table(s) to lock when the select joins)."""
    return select.limit(limit).with_for_update(skip_locked=True, of=of)


async def take_lease(
    session: AsyncSession, name: str, *, holder: str, now: datetime, until: datetime
) -> bool:
    """Take the lease `name` until `until` if nobody holds it at `now` (a lease past its
    expiry is free, whoever held it). True when `holder` now holds it."""
    stmt = insert(JobLease).values(name=name, holder=holder, expires_at=until)
    stmt = stmt.on_conflict_do_update(
        index_elements=[JobLease.name],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=JobLease.expires_at <= now,
    )
    taken = await session.execute(stmt.returning(JobLease.name))
    return taken.first() is not None


async def renew_lease(session: AsyncSession, name: str, *, holder: str, until: datetime) -> bool:
    """Extend `holder`'s lease to `until`; False when another holder has taken it since."""
    renewed = await session.execute(
        sa.update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=until)
        .returning(JobLease.name)
    )
    return renewed.first() is not None


async def release_lease(session: AsyncSession, name: str, *, holder: str, now: datetime) -> None:
    """Give the lease back (it expires at `now`) if `holder` still holds it."""
    await session.execute(
        sa.update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=now)
    )
