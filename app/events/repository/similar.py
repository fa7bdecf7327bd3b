"""The SQL of similar events and recurrence matches (README, Search; R1.1, R5.4): candidates
share a token with the source (the GIN index of `event.search_vector`), the newest first up to
`SIMILAR_CANDIDATES`, each scored in SQL with Dice's coefficient of the two token sets
(`app.core.search_text.similarity`): 2 x shared / (theirs + ours), where `ts_delete` takes our
tokens out of theirs to count what is shared."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from app.core.auth import Principal
from app.core.search_text import any_of
from app.events.repository.hot import SEEN_BY, match_clause
from app.events.repository.visibility import Params, seen

# How many of the newest candidates are scored: the cost of a lookup stays the same however
# common the source's words are (README, Search).
SIMILAR_CANDIDATES: Final = 200
# How many of the best-scored originals of the window the recurrence rule chooses among.
RECURRENCE_ROWS: Final = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """What a lookup is for: the event (None before it exists), when it was reported, its
    category (None: every category) and its distinct search tokens."""

    event_id: uuid.UUID | None
    reported_at: datetime
    category: str | None
    lexemes: Sequence[str]


_SCORE: Final = (
    "(2.0 * (length(m.search_vector) - length(ts_delete(m.search_vector, {tokens})))"
    " / (length(m.search_vector) + {count}))::float8"
)
_COLUMNS: Final = (
    "e.id, e.ref, e.title, e.status, e.category, e.reported_at, e.closed_at,"
    " e.lead_department, e.created_at, e.search_vector"
)
_OUT: Final = (
    "m.id AS event_id, m.ref, m.title, m.status, m.category, m.reported_at, m.closed_at,"
    " m.lead_department"
)


def _candidates(
    source: Source, p: Params, where: list[str], newest: str, seen_by: str = ""
) -> str | None:
    """The scored candidates' statement, best first: the newest by `newest` (a column) up to
    SIMILAR_CANDIDATES; None when the source has no token. `seen_by`: the caller's visibility
    as a LATERAL of each candidate (`hot.SEEN_BY`)."""
    query = any_of(source.lexemes)
    if query is None:
        return None
    where = [f"e.search_vector @@ {p(query, 'tsquery')}", *where]
    if source.event_id is not None:
        where.append(f"e.id <> {p(source.event_id, 'uuid')}")
    if source.category is not None:
        where.append(f"e.category = {p(source.category, 'varchar')}")
    tokens, count = p(list(source.lexemes), "text[]"), p(len(source.lexemes), "integer")
    return (
        f"SELECT {_OUT}, {_SCORE.format(tokens=tokens, count=count)} AS score"
        f" FROM (SELECT {_COLUMNS} FROM event e{seen_by} WHERE {' AND '.join(where)}"
        f" ORDER BY e.{newest} DESC, e.id DESC LIMIT {SIMILAR_CANDIDATES}) m"
        f" ORDER BY score DESC, m.{newest} DESC, m.id DESC"
    )


async def similar_visible(
    connection: Any, source: Source, principal: Principal, *, limit: int
) -> list[dict[str, Any]]:
    """Earlier events (reported before the source) the caller may see that share a token with
    the source, of its category when it has one, most similar first."""
    p = Params()
    where = [f"e.created_at < {p(source.reported_at, 'timestamptz')}"]
    # Checked per candidate, never as a hash of everything the caller could see (a handler's
    # plan steps): bench/README.md, search.
    visible = seen(principal, p).where
    seen_by = SEEN_BY.format(visible=visible) if visible else ""
    sql = _candidates(source, p, where, "created_at", seen_by)
    if sql is None:
        return []
    rows = await connection.fetch(f"{sql} LIMIT {p(limit, 'integer')}", *p.values)
    return [dict(r) for r in rows]


async def closed_matches(
    connection: Any, source: Source, *, closed_from: datetime
) -> list[dict[str, Any]]:
    """The best-scored events of the source's category closed from `closed_from` until it was
    reported (the recurrence window, rules.recurrence), whoever may see them: a recurrence is
    a fact about the organisation, not about who classified it."""
    p = Params()
    where = [
        f"e.closed_at >= {p(closed_from, 'timestamptz')}",
        f"e.closed_at <= {p(source.reported_at, 'timestamptz')}",
    ]
    sql = _candidates(source, p, where, "closed_at")
    if sql is None:
        return []
    rows = await connection.fetch(f"{sql} LIMIT {p(RECURRENCE_ROWS, 'integer')}", *p.values)
    return [dict(r) for r in rows]


async def source_of(connection: Any, id_or_ref: str, principal: Principal) -> dict[str, Any] | None:
    """The event a similar-events lookup starts from, if the principal may see it."""
    p = Params()
    match = match_clause(id_or_ref, p)
    visible = seen(principal, p).where
    sql = (
        "SELECT e.id, e.category, e.reported_at, e.created_at, e.title, e.description"
        f" FROM event e WHERE {match}" + (f" AND {visible}" if visible else "")
    )
    record = await connection.fetchrow(sql, *p.values)
    return None if record is None else dict(record)
