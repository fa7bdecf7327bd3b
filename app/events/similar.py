"""Similar events and recurrence (R1.1, R5.4; README, Search): earlier events whose text is
like an event's, for `GET /v1/events/{id}/similar`, the suggestions of classification and
intake (`suggest=true`), and the recurrence match stored at classification. The SQL is in
`repository.similar`; what counts as a recurrence is `rules.recurrence`."""

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import Database, driver_connection
from app.core.errors import NotFound
from app.core.search_text import lexemes
from app.events.models import Event
from app.events.repository import similar as repository
from app.events.repository.similar import Source
from app.events.similar_schemas import SimilarEventRead, SimilarEvents
from app.rules import recurrence
from app.rules.policy import Policy

DEFAULT_SUGGESTIONS = 5


def _original(row: Mapping[str, Any]) -> recurrence.Original:
    return recurrence.Original(
        event_id=row["event_id"],
        category=row["category"],
        closed_at=row["closed_at"],
        lead_department=row["lead_department"],
    )


def _item(row: Mapping[str, Any], source: Source, policy: Policy) -> SimilarEventRead:
    in_window = recurrence.in_window(
        _original(row),
        category=source.category,
        reported_at=source.reported_at,
        policy=policy.recurrence,
    )
    return SimilarEventRead(
        event_id=row["event_id"],
        ref=row["ref"],
        title=row["title"],
        status=row["status"],
        category=row["category"],
        reported_at=row["reported_at"],
        closed_at=row["closed_at"],
        score=round(row["score"], 4),
        recurrence=in_window,
    )


def _source(event_id: uuid.UUID | None, row: Mapping[str, Any]) -> Source:
    return Source(
        event_id=event_id,
        reported_at=row["created_at"],
        category=row["category"],
        lexemes=lexemes(row["title"], row["description"]),
    )


async def _similar(
    connection: Any, source: Source, actor: Principal, policy: Policy, limit: int
) -> SimilarEvents:
    rows = await repository.similar_visible(connection, source, actor, limit=limit)
    return SimilarEvents(items=[_item(row, source, policy) for row in rows])


async def similar_events(
    connection: Any, id_or_ref: str, *, actor: Principal, policy: Policy, limit: int
) -> SimilarEvents:
    """Earlier events of the event's category (every category before it is classified) whose
    text is like its own, most similar first, among those the caller may see (R1.1, R5.4);
    404 when the caller may not see the event."""
    row = await repository.source_of(connection, id_or_ref, actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    return await _similar(connection, _source(row["id"], row), actor, policy, limit)


async def intake_suggestions(
    database: Database, event_id: uuid.UUID, *, actor: Principal, policy: Policy
) -> SimilarEvents:
    """Suggestions for an event just taken in (`POST /v1/events?suggest=true`): earlier events
    of any category (it has none yet) like it, that the caller may see; planned with its
    own tokens (`Database.report_connection`), as `GET /v1/events/{id}/similar`."""
    async with database.report_connection() as connection:
        return await similar_events(
            connection, str(event_id), actor=actor, policy=policy, limit=DEFAULT_SUGGESTIONS
        )


def _event_source(event: Event) -> Source:
    return Source(
        event_id=event.id,
        reported_at=event.reported_at,
        category=event.category,
        lexemes=lexemes(event.title, event.description),
    )


async def classification_suggestions(
    session: AsyncSession, event: Event, *, actor: Principal, policy: Policy
) -> SimilarEvents:
    """Suggestions returned with a classification: earlier events of the new category like
    this one, that the caller may see (R1.1)."""
    connection = await driver_connection(session)
    return await _similar(connection, _event_source(event), actor, policy, DEFAULT_SUGGESTIONS)


async def match_recurrence(
    session: AsyncSession, event: Event, *, policy: Policy
) -> tuple[uuid.UUID, float] | None:
    """The original this event recurs by its text (rules.recurrence.best_match): of its
    category, closed within the window before it was reported, at least as similar as the
    threshold; with the score. Searched among every event, whoever classifies (R5.4)."""
    source = _event_source(event)
    if source.category is None:
        return None
    connection = await driver_connection(session)
    rows = await repository.closed_matches(
        connection,
        source,
        closed_from=recurrence.window_start(source.reported_at, policy.recurrence),
    )
    best = recurrence.best_match(
        ((_original(row), float(row["score"])) for row in rows),
        category=source.category,
        reported_at=source.reported_at,
        policy=policy.recurrence,
    )
    return None if best is None else (best[0].event_id, round(best[1], 4))
