"""What a request may name besides its event: known department codes, events the caller sees
(issue 10, item 8). Shared by intake and the stages."""

import uuid
from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.errors import Unprocessable
from app.directory.service import department_codes_cached
from app.events import repository


def refuse_unknown_departments(codes: Collection[str], known: frozenset[str], field: str) -> None:
    """Unknown department codes are a 422 naming each one."""
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise Unprocessable(
            f"Unknown department code(s): {', '.join(unknown)}",
            errors=[{"field": field, "message": f"unknown department code {c}"} for c in unknown],
        )


async def check_departments(session: AsyncSession, codes: Collection[str], field: str) -> None:
    """`refuse_unknown_departments` against the directory's (cached) codes."""
    refuse_unknown_departments(codes, await department_codes_cached(session), field)


def unknown_event(field: str) -> Unprocessable:
    """One problem for an unknown id and an event the caller may not see, without the id:
    reading answers both with the same 404 (product.md section 1, no existence leak)."""
    return Unprocessable(
        "No event you can see has this id",
        errors=[{"field": field, "message": "no event you can see has this id"}],
    )


async def check_linked_event(
    session: AsyncSession, event_id: uuid.UUID, field: str, *, actor: Principal
) -> None:
    """A link to another event names one the caller may see (issue 10, item 8)."""
    if not await repository.sees_event_in(session, event_id, actor):
        raise unknown_event(field)
