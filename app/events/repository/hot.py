"""The hot paths' SQL: intake, get by id and the list, each ONE plain prepared statement on an
asyncpg connection (no ORM session, no transaction round trips; bench/README.md)."""

import asyncio
import dataclasses
import functools
import math
import operator
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.caches import on_reset
from app.core.db import driver_connection
from app.core.pagination import Cursor
from app.core.search_text import (
    SEARCH_EPOCH,
    Term,
    day_keys,
    expanded_query,
    search_day,
    search_query,
    search_terms,
    spelled_out,
)
from app.events.models import Event
from app.events.repository.visibility import Params, seen
from app.events.schemas import EventRead, EventReporterRead
from app.rules.deadlines import STAGE_DUE, DueDate
from app.rules.views import REPORTER_FEEDBACK_AUDIENCE, STAFF_ONLY_FILTERS, STAFF_ONLY_SORTS
from app.rules.vocabulary import Category, Severity, Status

EVENT_COLUMNS: Final = tuple(c.name for c in Event.__table__.columns)
# What reads select: every column but the search vector (only searches read it) and the
# reporting rollup's mark (app/reporting: never shown).
READ_COLUMNS: Final = tuple(c for c in EVENT_COLUMNS if c not in ("search_vector", "rollup_folded"))
# The columns intake writes, with their SQL types: the parameters of an INSERT ... SELECT are
# typed explicitly (tests/api/test_intake.py checks these against the catalog).
INTAKE_COLUMNS: Final = (
    ("id", "uuid"),
    ("status", "varchar"),
    ("title", "varchar"),
    ("description", "text"),
    ("channel", "varchar"),
    ("occurred_at", "timestamptz"),
    ("reported_at", "timestamptz"),
    ("urgent", "boolean"),
    ("reporter_name", "varchar"),
    ("reporter_email", "varchar"),
    ("reporter_phone", "varchar"),
    ("reporter_external_id", "varchar"),
    ("reporter_user_id", "uuid"),
    ("created_by", "uuid"),
    ("external_system", "varchar"),
    ("external_id", "varchar"),
    ("involved_departments", "varchar[]"),
    ("involved_people", "varchar[]"),
    ("recurrence_of", "uuid"),
    ("search_vector", "tsvector"),
    ("intake_department", "varchar"),
    ("cooperating_departments", "varchar[]"),
    ("plan_discussed_with", "varchar[]"),
    ("respond_by", "timestamptz"),
    ("version", "integer"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("ref", "varchar"),
    ("sla_stage", "varchar"),
    ("sla_cycle", "smallint"),
    ("sla_started_at", "timestamptz"),
    ("sla_due_at", "timestamptz"),
    ("sla_next_at", "timestamptz"),
)
_N = len(INTAKE_COLUMNS)
# The new event's values in the statement's order, in one C call (intake's hot path).
_INTAKE_VALUES: Final = operator.itemgetter(*(c for c, _ in INTAKE_COLUMNS))
_P = {
    name: f"${_N + i}"
    for i, name in enumerate(
        (
            "lock",
            "scope",
            "key",
            "hash",
            "headers",
            "body",
            "expires",
            "tl_id",
            "at",
            "actor",
            "action",
            "after",
            "prev_hash",
            "tl_hash",
            "ob_ids",
            "ob_types",
            "ob_payloads",
            "words",
        ),
        start=1,
    )
}
# Intake is ONE statement, run on its own (autocommit): the Idempotency-Key's advisory lock
# (not taken: nothing is written, the caller answers 409), the key's stored first response,
# the event, its first timeline entry, its outbox messages and the words of its text that
# this process does not know `search_lexeme` holds (`KnownWords`; sorted, so two intakes adding
# the same new words take their locks in one order). A key already stored or an
# external_ref already known makes the statement fail on that unique index, so nothing at all
# is written and the caller takes the slow path.
INTAKE_SQL: Final = f"""
WITH lk AS (
    SELECT CASE WHEN {_P["lock"]}::text IS NULL THEN true
                ELSE pg_try_advisory_xact_lock(hashtextextended({_P["lock"]}::text, 0)) END AS ok
), idem AS (
    INSERT INTO idempotency_record (scope, key, request_hash, status_code, headers, body,
                                    expires_at)
    SELECT {_P["scope"]}::varchar, {_P["key"]}::varchar, {_P["hash"]}::varchar, 201,
           {_P["headers"]}::jsonb, {_P["body"]}::bytea, {_P["expires"]}::timestamptz
    FROM lk WHERE lk.ok AND {_P["key"]}::varchar IS NOT NULL
), ev AS (
    INSERT INTO event ({", ".join(c for c, _ in INTAKE_COLUMNS)})
    SELECT {", ".join(f"${n}::{t}" for n, (_, t) in enumerate(INTAKE_COLUMNS, start=1))}
    FROM lk WHERE lk.ok
    RETURNING id
), tl AS (
    INSERT INTO timeline_entry (id, event_id, seq, at, actor_id, action, before, after, note,
                                prev_hash, hash)
    SELECT {_P["tl_id"]}::uuid, ev.id, 1, {_P["at"]}::timestamptz, {_P["actor"]}::uuid,
           {_P["action"]}::varchar, NULL, {_P["after"]}::jsonb, NULL,
           {_P["prev_hash"]}::varchar, {_P["tl_hash"]}::varchar
    FROM ev
), ob AS (
    INSERT INTO outbox_message (id, type, event_id, payload, created_at)
    SELECT m.id, m.type, ev.id, m.payload, {_P["at"]}::timestamptz
    FROM ev, unnest({_P["ob_ids"]}::uuid[], {_P["ob_types"]}::varchar[],
                    {_P["ob_payloads"]}::jsonb[]) AS m(id, type, payload)
), lx AS (
    INSERT INTO search_lexeme (lexeme)
    SELECT w.lexeme FROM ev, unnest({_P["words"]}::text[]) AS w(lexeme) ORDER BY w.lexeme
    ON CONFLICT DO NOTHING
)
SELECT ok FROM lk
"""
IDEMPOTENCY_CONFLICT: Final = "pk_idempotency_record"
EXTERNAL_REF_CONFLICT: Final = "uq_event_external_ref"
REPORTER_USER_REFERENCE: Final = "fk_event_reporter_user_id_app_user"
# JSON columns of event rows (`steps` is the get statement's aggregate of plan steps).
_JSON_COLUMNS: Final = (
    "impact",
    "grading",
    "routing",
    "steps",
    "reporter_feedback",
    "satisfaction",
)


def decode(record: Any) -> dict[str, Any]:
    """A row as a dict, its JSON columns parsed (asyncpg hands json and jsonb over as text).
    orjson: the columns hold only values validated on the way in, so its 64-bit integers
    lose nothing."""
    row = dict(record.items())
    for column in _JSON_COLUMNS:
        value = row.get(column)
        if isinstance(value, str):
            row[column] = orjson.loads(value)
    return row


@dataclass(frozen=True, slots=True)
class StoredFirstResponse:
    """What an `Idempotency-Key` stores with the intake (the response, sent as it is)."""

    scope: str
    key: str
    request_hash: str
    headers: Mapping[str, str]
    body: bytes
    expires_at: datetime


def _json_text(value: Any) -> str:
    """A `jsonb` parameter's text (orjson: intake's hot path)."""
    return orjson.dumps(value).decode()


async def insert_event(
    connection: Any,
    *,
    values: Mapping[str, Any],
    timeline: Mapping[str, Any],
    outbox: Sequence[Mapping[str, Any]],
    stored: StoredFirstResponse | None,
    words: Sequence[str] = (),
) -> bool:
    """Insert the event, its first timeline entry, its outbox messages and the key's stored
    response in ONE statement; False when the key is held by a request still running.

    Raises asyncpg's UniqueViolationError (`constraint_name` IDEMPOTENCY_CONFLICT or
    EXTERNAL_REF_CONFLICT) when the key or the external_ref is already known; nothing is
    written then."""
    ok: bool = await connection.fetchval(
        INTAKE_SQL,
        *_INTAKE_VALUES(values),
        None if stored is None else stored.scope + ":" + stored.key,
        None if stored is None else stored.scope,
        None if stored is None else stored.key,
        None if stored is None else stored.request_hash,
        None if stored is None else _json_text(dict(stored.headers)),
        None if stored is None else stored.body,
        None if stored is None else stored.expires_at,
        timeline["id"],
        timeline["at"],
        timeline["actor_id"],
        timeline["action"],
        _json_text(timeline["after"]),
        timeline["prev_hash"],
        timeline["hash"],
        [m["id"] for m in outbox],
        [m["type"] for m in outbox],
        [_json_text(m["payload"]) for m in outbox],
        list(words),
    )
    return ok


class KnownWords:
    """The words this process knows the `search_lexeme` table holds (README, Search): a
    prefix search spells a prefix out as the table's words, so every word of every event's
    text must be there. An intake sends the words of its text this process does not know,
    which its statement adds (ON CONFLICT DO NOTHING), and learns them once it succeeded: the
    words of most texts are known, and most intakes send none. Words are never taken out of
    the table, so a known word stays true; a full set is emptied (a word then comes once
    more). A trigger did this before, at about 0.1 ms of PostgreSQL time per intake
    (bench/README.md)."""

    def __init__(self, maxsize: int = 200_000) -> None:
        self.maxsize = maxsize
        self._words: set[str] = set()

    def unknown(self, words: Sequence[str]) -> list[str]:
        """`words` (sorted) that this process has not seen in the table, in their order."""
        known = self._words
        return [w for w in words if w not in known]

    def learn(self, words: Sequence[str]) -> None:
        """`words` are in the table now (the statement that added them committed)."""
        if len(self._words) + len(words) > self.maxsize:
            self._words.clear()
        self._words.update(words)

    def reset(self) -> None:
        self._words.clear()


known_words = KnownWords()
on_reset(known_words.reset)


EVENT_REF_BLOCK: Final = 50


class RefNumbers:
    """Event reference numbers (`EV-2026-000123`), taken from `event_ref_seq` a block at a
    time so that intake knows its ref before its single statement runs. Refs stay unique and
    increase within a process; across workers they interleave, and a restart leaves a gap.

    The next block is fetched in the background once half of the current one is used, so an
    intake waits for it only if the block runs dry (bench/README.md, third round)."""

    def __init__(self, block: int = EVENT_REF_BLOCK) -> None:
        self.block = block
        self._numbers: deque[int] = deque()
        self._refill: asyncio.Task[None] | None = None
        self._generation = 0

    async def next(self, connection_source: Any, *, prefetch: bool = True) -> int:
        """The next number. `prefetch=False` where the source shares one connection with the
        caller (tests, the demo loader): a background refill must not use it meanwhile."""
        if prefetch and len(self._numbers) <= self.block // 2 and self._refill is None:
            self._refill = self._start(connection_source)
        while not self._numbers:
            refill = self._refill or self._start(connection_source)
            self._refill = refill
            await asyncio.shield(refill)
        return self._numbers.popleft()

    def reset(self) -> None:
        """Forget the numbers taken ahead (tests that move `event_ref_seq` start cold)."""
        self._generation += 1
        self._numbers.clear()
        self._refill = None

    def _start(self, connection_source: Any) -> "asyncio.Task[None]":
        task = asyncio.create_task(self._fetch(connection_source, self._generation))
        # A failed background refill is retried by the next caller; its error is not lost
        # for whoever awaited it, and not reported twice for nobody.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def _fetch(self, connection_source: Any, generation: int) -> None:
        try:
            async with connection_source() as connection:
                rows = await connection.fetch(
                    "SELECT nextval('event_ref_seq') FROM generate_series(1, $1)", self.block
                )
            if generation == self._generation:
                self._numbers.extend(sorted(r[0] for r in rows))
        finally:
            if generation == self._generation:
                self._refill = None


ref_numbers = RefNumbers()
on_reset(ref_numbers.reset)


def format_ref(year: int, number: int) -> str:
    return f"EV-{year}-{number:06d}"


async def event_id_by_external_ref(connection: Any, system: str, external_id: str) -> Any:
    return await connection.fetchval(
        "SELECT id FROM event WHERE external_system = $1 AND external_id = $2",
        system,
        external_id,
    )


def match_clause(id_or_ref: str, p: Params) -> str:
    """`event e` by its UUID or its ref (`EV-2026-000123`, any case)."""
    try:
        return f"e.id = {p(uuid.UUID(id_or_ref), 'uuid')}"
    except ValueError:
        return f"e.ref = {p(id_or_ref.upper(), 'varchar')}"


_STEPS_JSON: Final = """(SELECT coalesce(json_agg(json_build_object(
                   'id', s.id, 'title', s.title, 'owner_id', s.owner_id, 'due_at', s.due_at,
                   'status', s.status, 'note', s.note) ORDER BY s.position), '[]'::json)
        FROM plan_step s WHERE s.event_id = e.id)"""
# What the reporter view adds (rules.views): the feedback given to them, their satisfaction.
_REPORTER_FEEDBACK_JSON: Final = f"""(SELECT coalesce(json_agg(json_build_object(
                   'id', f.id, 'result', f.result, 'measures', f.measures,
                   'prevention_advice', f.prevention_advice, 'created_at', f.created_at)
                   ORDER BY f.created_at, f.id), '[]'::json)
        FROM feedback f
        WHERE f.event_id = e.id AND f.audience = '{REPORTER_FEEDBACK_AUDIENCE}')"""
_SATISFACTION_JSON: Final = """(SELECT json_build_object(
                   'score', t.score, 'comment', t.comment, 'unreachable', t.unreachable)
        FROM satisfaction t WHERE t.event_id = e.id)"""
_GET_SQL: Final = f"""
SELECT {", ".join(f"e.{c}" for c in READ_COLUMNS)},
       {_STEPS_JSON} AS steps
FROM event e
WHERE """
# The columns the reporter view shows (app/rules/views.py: REPORTER_EVENT_FIELDS).
REPORTER_COLUMNS: Final = tuple(
    c
    for c in EVENT_COLUMNS
    if c in EventReporterRead.model_fields
    or c.startswith("reporter_")
    or c in ("external_system", "external_id")
)
_GET_REPORTER_SQL: Final = f"""
SELECT {", ".join(f"e.{c}" for c in REPORTER_COLUMNS)},
       {_REPORTER_FEEDBACK_JSON} AS reporter_feedback,
       {_SATISFACTION_JSON} AS satisfaction
FROM event e
WHERE """


# Whether a handler or head is involved in the row, computed once per row (review of issue 10,
# item 6): a LATERAL subquery that OFFSET 0 keeps from being flattened into each use.
_INVOLVED_JOIN: Final = "CROSS JOIN LATERAL (SELECT {involved} AS involved OFFSET 0) v"


@functools.lru_cache(maxsize=64)
def _get_handler_sql(involved: str) -> str:
    """A handler's or head's get: everything, and whether they are involved; when they are
    not (they reported it), what the reporter view adds."""
    return f"""
SELECT {", ".join(f"e.{c}" for c in READ_COLUMNS)},
       {_STEPS_JSON} AS steps,
       v.involved,
       CASE WHEN v.involved THEN NULL ELSE {_REPORTER_FEEDBACK_JSON} END AS reporter_feedback,
       CASE WHEN v.involved THEN NULL ELSE {_SATISFACTION_JSON} END AS satisfaction
FROM event e {_INVOLVED_JOIN.format(involved=involved)}
WHERE """


def get_query(id_or_ref: str, principal: Principal) -> tuple[str, list[Any]]:
    """The SQL and arguments of one event by UUID or ref, when the principal may see it, with
    what the principal's view needs (rules.views): the plan steps for staff; the feedback
    given to the reporter and their satisfaction for the reporter view.

    One statement per visibility shape (`visibility.seen`), without switch parameters, so
    PostgreSQL keeps each one's generic plan instead of planning every get afresh."""
    p = Params()
    match = match_clause(id_or_ref, p)
    visible = seen(principal, p)
    if visible.where is None:  # sees every event: the staff view
        return _GET_SQL + match, p.values
    if visible.involved is None:  # sees only what they reported: the reporter view
        return _GET_REPORTER_SQL + f"{match} AND {visible.where}", p.values
    involved = visible.involved_row or visible.involved
    return _get_handler_sql(involved) + f"{match} AND {visible.where}", p.values


async def get_visible(
    connection: Any, id_or_ref: str, principal: Principal
) -> dict[str, Any] | None:
    """One event row (with its plan steps), or None if absent or not visible."""
    sql, args = get_query(id_or_ref, principal)
    record = await connection.fetchrow(sql, *args)
    if record is None:
        return None
    return decode(record)


async def visible_row(
    session: AsyncSession, id_or_ref: str, principal: Principal
) -> dict[str, Any] | None:
    """`get_visible` inside a session's transaction."""
    return await get_visible(await driver_connection(session), id_or_ref, principal)


async def sees_event(connection: Any, event_id: uuid.UUID, principal: Principal) -> bool:
    """Whether the principal may see this event (the reading rule): a link to another event
    (`recurrence_of`, `duplicate_of`) may name only such an event, so that an event one may
    not see and an unknown id answer alike (issue 10, item 8)."""
    p = Params()
    match = f"e.id = {p(event_id, 'uuid')}"
    visible = seen(principal, p).where
    sql = "SELECT true FROM event e WHERE " + (f"{match} AND {visible}" if visible else match)
    return bool(await connection.fetchval(sql, *p.values))


async def sees_event_in(session: AsyncSession, event_id: uuid.UUID, principal: Principal) -> bool:
    """`sees_event` inside a session's transaction."""
    return await sees_event(await driver_connection(session), event_id, principal)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    status: Sequence[Status] = ()
    category: Sequence[Category] = ()
    severity: Sequence[Severity] = ()
    department: str | None = None
    assignee_id: uuid.UUID | None = None
    urgent: bool | None = None
    overdue: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    text: str | None = None
    external_system: str | None = None
    updated_since: datetime | None = None
    due_before: datetime | None = None
    breached: bool | None = None
    # created_at (newest first), updated_at (the change feed) or due_at (soonest first).
    sort: str = "created_at"

    def used(self) -> list[str]:
        """The filters set, by their query parameter names (`rules.views.LIST_FILTER_FIELDS`)."""
        return [
            "q" if name == "text" else name
            for name in self.__dataclass_fields__
            if name != "sort" and getattr(self, name) not in (None, ())
        ]


def _overdue_template() -> str:
    """`rules.deadlines.STAGE_DUE` as SQL: the due date of the event's status has passed."""
    waiting: dict[DueDate, list[Status]] = {}
    for status, due in STAGE_DUE.items():
        waiting.setdefault(due, []).append(status)
    tests = []
    for due, statuses in waiting.items():
        quoted = [f"'{status.value}'" for status in statuses]
        which = (
            f"e.status = {quoted[0]}" if len(quoted) == 1 else f"e.status IN ({', '.join(quoted)})"
        )
        tests.append(f"({which} AND e.{due.value} < {{now}})")
    return "(" + " OR ".join(tests) + ")"


OVERDUE_SQL: Final = _overdue_template()
# What a list item shows (EventRead): fewer columns to read and decode than the whole row.
LIST_COLUMNS: Final = tuple(
    c
    for c in EVENT_COLUMNS
    if c in EventRead.model_fields
    or c.startswith("reporter_")
    or c in ("external_system", "external_id")
)
_LIST_SELECT: Final = ", ".join(f"e.{c}" for c in LIST_COLUMNS)
_REPORTER_SELECT: Final = ", ".join(f"e.{c}" for c in REPORTER_COLUMNS)


def _filters(flt: EventFilter, p: Params, now: datetime) -> list[tuple[str, str]]:
    """The list's filters as SQL, each with its query parameter's name (`sort` for the sort's
    own condition): fixed clauses, every value a parameter."""
    where: list[tuple[str, str]] = []
    if len(flt.status) == 1:
        # One status as an equality, not `= ANY`: the planner then reads the newest of them
        # backwards from ix_event_status_created_at; with `= ANY` it fetched and sorted every
        # row of that status (the intake queue's first page, 1,000,000 events: 0.25 against
        # 12.8 ms; the reporting index on `reported` events had tipped it, bench/README.md).
        where.append(("status", f"e.status = {p(str(flt.status[0]), 'varchar')}"))
    elif flt.status:
        where.append(("status", f"e.status = ANY({p([str(v) for v in flt.status], 'varchar[]')})"))
    if flt.category:
        category = p([str(v) for v in flt.category], "varchar[]")
        where.append(("category", f"e.category = ANY({category})"))
    if flt.severity:
        severity = p([str(v) for v in flt.severity], "varchar[]")
        where.append(("severity", f"e.severity = ANY({severity})"))
    if flt.department:
        dept = p(flt.department, "varchar")
        where.append(
            (
                "department",
                f"(e.lead_department = {dept} OR e.cooperating_departments @> ARRAY[{dept}])",
            )
        )
    if flt.assignee_id:
        where.append(("assignee_id", f"e.assignee_id = {p(flt.assignee_id, 'uuid')}"))
    if flt.urgent is not None:
        where.append(("urgent", f"e.urgent = {p(flt.urgent, 'boolean')}"))
    if flt.overdue is not None:
        overdue = OVERDUE_SQL.format(now=p(now, "timestamptz"))
        where.append(("overdue", overdue if flt.overdue else f"NOT {overdue}"))
    if flt.created_from:
        where.append(("created_from", f"e.created_at >= {p(flt.created_from, 'timestamptz')}"))
    if flt.created_to:
        where.append(("created_to", f"e.created_at < {p(flt.created_to, 'timestamptz')}"))
    if flt.text:
        # README, Search: CJK bigrams and word prefixes (app/core/search_text.py).
        query = search_query(flt.text)
        matches = f"e.search_vector @@ {p(query, 'tsquery')}" if query else "false"
        where.append(("q", matches))
    if flt.external_system:
        system = p(flt.external_system, "varchar")
        where.append(("external_system", f"e.external_system = {system}"))
    if flt.updated_since:
        where.append(("updated_since", f"e.updated_at >= {p(flt.updated_since, 'timestamptz')}"))
    if flt.due_before:
        where.append(("due_before", f"e.sla_due_at < {p(flt.due_before, 'timestamptz')}"))
    if flt.breached is not None:
        moment = p(now, "timestamptz")
        where.append(
            (
                "breached",
                f"e.sla_due_at < {moment}"
                if flt.breached
                else f"(e.sla_due_at IS NULL OR e.sla_due_at >= {moment})",
            )
        )
    if flt.sort == "due_at":
        # Only running clocks have a due time.
        where.append(("sort", "e.sla_due_at IS NOT NULL"))
    return where


def _staff_only(name: str, flt: EventFilter) -> bool:
    """A filter that reads fields only the staff view shows (rules.views)."""
    if name == "sort":
        return flt.sort in STAFF_ONLY_SORTS
    return name in STAFF_ONLY_FILTERS


# The order of each sort and its keyset condition after a position: the column, and whether
# newest first. `due_at` is the running clock's due time (soonest first); `relevance` ranks
# the newest matches of `q` (`_ranked`).
SORT_COLUMNS: Final = {
    "created_at": ("e.created_at", True),
    "updated_at": ("e.updated_at", False),
    "due_at": ("e.sla_due_at", False),
    "relevance": ("e.created_at", True),
}
# How many of the newest matches `sort=relevance` ranks (README, Search): ranking every match
# of a common word would read them all; a page of the newest ones ranked costs the same
# whatever the word.
SEARCH_CANDIDATES: Final = 200


def _ranked(
    select: str, p: Params, *, cursor: Cursor | None, limit: int | None, candidates: int | None
) -> str:
    """`select` (with its `rank`) as pages in relevance order: the newest `candidates`
    matches (all of them: None), best rank first, then newest first; the keyset is (rank,
    created_at, id)."""
    newest = p(candidates, "integer")
    after = ""
    if cursor is not None:
        after = (
            f" WHERE (m.rank, m.sort_key, m.id) < ({p(cursor.rank or 0.0, 'real')},"
            f" {p(cursor.created_at, 'timestamptz')}, {p(cursor.id, 'uuid')})"
        )
    rows = p(None if limit is None else limit + 1, "integer")
    return (
        f"SELECT * FROM ({select} ORDER BY e.created_at DESC, e.id DESC LIMIT {newest}) m"
        f"{after} ORDER BY m.rank DESC, m.sort_key DESC, m.id DESC LIMIT {rows}"
    )


@dataclass(frozen=True, slots=True)
class _View:
    """The caller's view of a list (rules.views): its columns, the join that reads whether
    they are involved, the visibility rule (None: every event) and the filters."""

    columns: str
    joined: str
    visible: str | None
    where: list[str]


def _view(principal: Principal, flt: EventFilter, p: Params, now: datetime) -> _View:
    """The columns of the caller's view (rules.views), as in `get_query`, and the conditions:
    the visibility rule and the filters; a filter on a field only the staff view shows holds
    only where the caller has the staff view (review of issue 10, item 1): `(involved AND
    ...)`, `involved` read once per row (item 6)."""
    visible = seen(principal, p)
    filters = _filters(flt, p, now)
    where = [clause for name, clause in filters if not _staff_only(name, flt)]
    staff_only = [clause for name, clause in filters if _staff_only(name, flt)]
    if visible.where is None:
        return _View(_LIST_SELECT, "", None, where + staff_only)
    if visible.involved is None:
        # Refused before (reading.list_events); here too, should a caller get this far (the
        # clauses stay, so that their parameters keep their types).
        where += ["false", *staff_only] if staff_only else []
        return _View(_REPORTER_SELECT, "", visible.where, where)
    joined = " " + _INVOLVED_JOIN.format(involved=visible.involved_row or visible.involved)
    where += [*staff_only, "v.involved"] if staff_only else []
    return _View(f"{_LIST_SELECT}, v.involved", joined, visible.where, where)


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _rank(p: Params, query: str | None) -> str:
    """The relevance of a row to `query`: `ts_rank` normalised by the text's length (1:
    divided by 1 + its log). One form for the page read a stretch at a time and for the one
    statement over every match (CSV exports), which must rank alike."""
    return f"ts_rank(e.search_vector, {p(query, 'tsquery')}, 1)"


def list_query(
    principal: Principal,
    flt: EventFilter,
    *,
    cursor: Cursor | None,
    limit: int | None,
    now: datetime,
) -> tuple[str, list[Any]]:
    """The SQL and arguments of a keyset page in the filter's sort: (sort value, id) strictly
    after the cursor, never OFFSET. Built from fixed clauses; every value is a parameter.
    `limit=None`: every matching row (`LIMIT NULL`, the same statement shape; CSV exports).
    A page in relevance order is read by `list_visible` a stretch at a time; this statement of it
    ranks every match (the exports) or the newest SEARCH_CANDIDATES."""
    p = Params()
    view = _view(principal, flt, p, now)
    where, columns = [*([view.visible] if view.visible else []), *view.where], view.columns
    column, newest_first = SORT_COLUMNS[flt.sort]
    ranked = flt.sort == "relevance"
    if cursor is not None and not ranked:
        after = "<" if newest_first else ">"
        where.append(
            f"({column}, e.id) {after} ({p(cursor.created_at, 'timestamptz')},"
            f" {p(cursor.id, 'uuid')})"
        )
    if ranked:
        columns += f", {_rank(p, search_query(flt.text or ''))} AS rank"
    select = f"SELECT {columns}, {column} AS sort_key FROM event e{view.joined}{_where(where)}"
    if ranked:
        # All the matches without a limit (CSV exports).
        candidates = None if limit is None else SEARCH_CANDIDATES
        return _ranked(select, p, cursor=cursor, limit=limit, candidates=candidates), p.values
    direction = "DESC" if newest_first else "ASC"
    rows = p(None if limit is None else limit + 1, "integer")
    return select + f" ORDER BY {column} {direction}, e.id {direction} LIMIT {rows}", p.values


# Relevance (README, Search): the newest SEARCH_CANDIDATES matches the caller may see, ranked.
# They are read newest first, a stretch at a time, each read bounded by what it can find:
# 1. the newest SEARCH_WALK events, walked through the time index, each row's conditions
#    checked: a word common among the newest events costs no more than these (250: a caller
#    who sees few of the newest events, or a word in a few percent of them, pays for every
#    row walked and finds little; 2-4 ms less than 1,000 for a handler, bench/README.md); when the
#    matches found say that the rest is found by walking at most SEARCH_WALK_MORE more events
#    (1.25 times what they say) that were taken in within less than a day (a burst, which the
#    days of the search index cannot tell apart), that walk;
# 2. else stretches of days before them, as long as the matches found so far say is needed
#    (1.25 times), at most 8 times the time read so far, or 32 times while none is found (the
#    newest events say little of the older ones: a handler sees few events still being taken
#    in, so a stretch read on what they say checks several times the matches it needs; each
#    match read costs its row and the visibility rule, the statement itself little): one scan
#    of the search index each (`ix_event_search`: the query's words AND the stretch's days),
#    which reads the words' postings of those days only, and the rows they name;
# 3. past SEARCH_DAYS days, every match before them (a word that rare has few).
# Prefixes are spelled out as the words of the index that start with them first (at most
# SEARCH_SPELLED, else the prefix as it is): the index reads a prefix by gathering all its
# postings, whatever the days. The visibility rule is read per row in a LATERAL subquery, so
# only for the rows that match (its EXISTS probes, never a hash of everything it could
# find). The rows are those of one statement over every match (tests/api/test_search.py
# compares them); events taken in between reads are newer than what is left to read.
SEARCH_WALK: Final = 250
SEARCH_WALK_MORE: Final = 10000
SEARCH_DAYS: Final = 512
SEARCH_SPELLED: Final = 32
_MARGIN: Final = 1.25
_GROWTH: Final = 32
_GROWTH_SEEN: Final = 8
# The words of the index from `low` (included) to `high` (excluded), in the C collation:
# the words starting with a prefix (`high` = prefix + U+10FFFF), or the one word (`high` =
# word + U+0001).
_SPELL_SQL: Final = """
SELECT t.n, l.lexeme
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(low, high, n)
CROSS JOIN LATERAL (
    SELECT s.lexeme FROM search_lexeme s
    WHERE s.lexeme >= t.low COLLATE "C" AND s.lexeme < t.high COLLATE "C"
    ORDER BY s.lexeme LIMIT $3
) l
"""
_DAY: Final = timedelta(days=1)
# The visibility rule read per row (only for the rows that reach it: the matches), never as a
# hash of all the plan steps a handler owns, say, as a filter of a scan may be planned.
SEEN_BY: Final = " CROSS JOIN LATERAL (SELECT WHERE {visible} OFFSET 0) vis"
# After every event: (created_at, id) < (TOP); before the start of a day: (midnight, NO_ID).
_TOP: Final = (datetime.max.replace(tzinfo=SEARCH_EPOCH.tzinfo), uuid.UUID(int=0))
_NO_ID: Final = uuid.UUID(int=0)


async def _spelled(connection: Any, terms: Sequence[Term]) -> str | None:
    """The query of `terms` as the index reads it fastest (`expanded_query`): each prefix as
    its words, each bigram of a phrase checked; None when it can match nothing."""
    words = [t.prefix for t in terms if t.prefix is not None and spelled_out(t.prefix)]
    bigrams = sorted({b for t in terms for b in t.bigrams})
    rows = await connection.fetch(
        _SPELL_SQL,
        [*words, *bigrams],
        [w + "\U0010ffff" for w in words] + [b + "\u0001" for b in bigrams],
        SEARCH_SPELLED + 1,
    )
    found: dict[int, list[str]] = {}
    for row in rows:
        found.setdefault(row["n"] - 1, []).append(row["lexeme"])
    # A number is read as a prefix (None), as is a prefix of too many words.
    spelled: dict[str, Sequence[str] | None] = {
        t.prefix: None for t in terms if t.prefix is not None and not spelled_out(t.prefix)
    }
    for n, word in enumerate([*words, *bigrams]):
        listed = found.get(n, [])
        spelled[word] = None if len(listed) > SEARCH_SPELLED else listed
    return expanded_query(terms, spelled)


@dataclass(frozen=True, slots=True)
class _Search:
    """One relevance search: who, the filters (without `q`), when, the query as the index
    reads it fastest (`spelled`) and as typed (`ranked`: the rank, and the last read)."""

    principal: Principal
    flt: EventFilter
    now: datetime
    spelled: str
    ranked: str

    def select(self, p: Params, source: str, where: Sequence[str], *, typed: bool = False) -> str:
        """The id, created_at and rank (`ts_rank` normalised by the text's length: 1, divided
        by 1 + its log) of the matching rows of `source` the caller may see."""
        view = _view(self.principal, self.flt, p, self.now)
        query = self.ranked if typed else self.spelled
        return (
            f"SELECT e.id, e.created_at, {_rank(p, self.ranked)} AS rank FROM {source}"
            + (SEEN_BY.format(visible=view.visible) if view.visible else "")
            + (view.joined if "v.involved" in view.where else "")
            + _where([*view.where, f"e.search_vector @@ {p(query, 'tsquery')}", *where])
        )

    def walk(self, p: Params, source: str, last: str) -> str:
        """As `select` over the walked rows of `source` (numbered `walked`), whether each
        counts (`hit`), and its last row (`edge`, the `last`-th) whether it counts or not.
        Each row is judged in a LATERAL subquery: the query first, then the rest."""
        view = _view(self.principal, self.flt, p, self.now)
        judged = [f"e.search_vector @@ {p(self.spelled, 'tsquery')}", *view.where]
        judged += [view.visible] if view.visible else []
        return (
            f"SELECT e.id, e.created_at, {_rank(p, self.ranked)} AS rank,"
            " hit.yes IS NOT NULL AS hit,"
            f" e.walked = {last} AS edge FROM {source}"
            + (view.joined if "v.involved" in view.where else "")
            + f" LEFT JOIN LATERAL (SELECT true AS yes{_where(judged)} OFFSET 0) hit ON true"
            + f" WHERE hit.yes OR e.walked = {last}"
        )

    def page(self, ids: list[uuid.UUID]) -> tuple[str, list[Any]]:
        """The rows `ids` (seen and filtered already) in the caller's view; the filters again
        (cheap: one page), so that every parameter of the view is used."""
        p = Params()
        view = _view(self.principal, self.flt, p, self.now)
        return (
            f"SELECT {view.columns}, e.created_at AS sort_key FROM event e"
            + (SEEN_BY.format(visible=view.visible) if view.visible and not view.joined else "")
            + view.joined
            + _where([f"e.id = ANY({p(ids, 'uuid[]')})", *view.where])
        ), p.values


def _walk_sql(
    search: _Search, high: tuple[datetime, uuid.UUID], rows: int
) -> tuple[str, list[Any]]:
    """The newest matches among the `rows` newest events before `high`, walked newest first
    through the time index whatever the planner estimates (the subquery's LIMIT keeps the
    conditions out of it), and the last of those events (`edge`; none when fewer were left):
    what the next read starts before."""
    p = Params()
    before = f"(created_at, id) < ({p(high[0], 'timestamptz')}, {p(high[1], 'uuid')})"
    newest = "ORDER BY created_at DESC, id DESC"
    last = p(rows, "integer")
    source = (
        f"(SELECT *, row_number() OVER ({newest}) AS walked FROM event WHERE {before}"
        f" {newest} LIMIT {last}) e"
    )
    order = f" ORDER BY e.created_at DESC, e.id DESC LIMIT {SEARCH_CANDIDATES + 1}"
    return search.walk(p, source, last) + order, p.values


def _days_sql(
    search: _Search, high: tuple[datetime, uuid.UUID], days: tuple[int, int] | None, need: int
) -> tuple[str, list[Any]]:
    """The newest `need` matches before `high` on the days `days` (first, last), through the
    search index; without days, every match before `high` (the query as typed: a rare one).
    MATERIALIZED: read through the search index, never by walking the time index."""
    p = Params()
    where = [f"(e.created_at, e.id) < ({p(high[0], 'timestamptz')}, {p(high[1], 'uuid')})"]
    if days is not None:
        where.append(f"event_search_days(e.created_at) && {p(day_keys(*days), 'integer[]')}")
    select = search.select(p, "event e", where, typed=days is None)
    return (
        f"WITH m AS MATERIALIZED ({select})"
        f" SELECT * FROM m ORDER BY m.created_at DESC, m.id DESC LIMIT {p(need, 'integer')}"
    ), p.values


Trace = list[tuple[str, list[Any]]]


async def _walked(
    connection: Any, search: _Search, trace: Trace | None, high: Any, rows: int
) -> tuple[list[Any], Any]:
    """The matches among the `rows` newest events before `high`, and the last of those events
    (None: fewer were left)."""
    statement = _walk_sql(search, high, rows)
    if trace is not None:
        trace.append(statement)
    read = await connection.fetch(statement[0], *statement[1])
    found = [r for r in read if r["hit"]][:SEARCH_CANDIDATES]
    return found, next((r for r in read if r["edge"]), None)


async def _candidates(connection: Any, search: _Search, trace: Trace | None) -> list[Any]:
    """The newest SEARCH_CANDIDATES matches the caller may see (see SEARCH_WALK)."""
    found, edge = await _walked(connection, search, trace, _TOP, SEARCH_WALK)
    more = SEARCH_CANDIDATES - len(found)
    if edge is not None and more > 0 and found:
        # The walk still needed, and the time it covers: under a day (events taken in faster
        # than the days of the search index tell apart), walking is the cheaper read.
        rows = math.ceil(more * SEARCH_WALK / len(found) * _MARGIN)
        span = (found[0]["created_at"] - edge["created_at"]) * rows / SEARCH_WALK
        if rows <= SEARCH_WALK_MORE and span < _DAY:
            high = (edge["created_at"], edge["id"])
            walked, edge = await _walked(connection, search, trace, high, rows)
            found += walked
    if edge is None or len(found) >= SEARCH_CANDIDATES:
        return found[:SEARCH_CANDIDATES]
    high = (edge["created_at"], edge["id"])
    last = search_day(high[0])
    read = max((search.now - high[0]) / _DAY, 1 / 24)
    while len(found) < SEARCH_CANDIDATES:
        need = SEARCH_CANDIDATES - len(found)
        if found:
            guess = min(need * read / len(found) * _MARGIN, _GROWTH_SEEN * read)
        else:
            guess = _GROWTH * read
        days = max(1, math.ceil(guess))
        stretch = None if read + days > SEARCH_DAYS else (last - days + 1, last)
        statement = _days_sql(search, high, stretch, need)
        if trace is not None:
            trace.append(statement)
        found += await connection.fetch(statement[0], *statement[1])
        if stretch is None:
            break
        read, last = read + days, last - days
        high = (SEARCH_EPOCH + (last + 1) * _DAY, _NO_ID)
    return found[:SEARCH_CANDIDATES]


async def _searched(
    connection: Any, principal: Principal, flt: EventFilter, now: datetime
) -> _Search | None:
    """The relevance search of `flt.text` (prefixes spelled out as the index's words); None
    when it can match nothing."""
    terms = search_terms(flt.text or "")
    typed = search_query(flt.text or "")
    # Phrases are words already: only prefixes are spelled out (not numbers).
    prefixes = any(term.prefix is not None and spelled_out(term.prefix) for term in terms)
    spelled = await _spelled(connection, terms) if prefixes else typed
    if spelled is None or typed is None:
        return None
    return _Search(
        principal=principal,
        flt=dataclasses.replace(flt, text=None),
        now=now,
        spelled=spelled,
        ranked=typed,
    )


async def _ranked_page(
    connection: Any, search: _Search, cursor: Cursor | None, limit: int, trace: Trace | None
) -> list[dict[str, Any]]:
    """The newest SEARCH_CANDIDATES matches the caller may see, best rank first (`ts_rank`
    normalised by the text's length), then newest first; the keyset is (rank, created_at,
    id)."""
    # Best rank first, then newest first; after the cursor as SQL's row comparison has it.
    found = sorted(await _candidates(connection, search, trace), key=_position, reverse=True)
    if cursor is not None:
        after = (cursor.rank or 0.0, cursor.created_at, cursor.id)
        found = [row for row in found if _position(row) < after]
    found = found[: limit + 1]
    if not found:
        return []
    sql, args = search.page([row["id"] for row in found])
    rows = {row["id"]: row for row in await connection.fetch(sql, *args)}
    return [decode(rows[f["id"]]) | {"rank": f["rank"]} for f in found if f["id"] in rows]


def _position(row: Any) -> tuple[float, datetime, uuid.UUID]:
    return (row["rank"], row["created_at"], row["id"])


async def list_visible(
    connection: Any,
    principal: Principal,
    flt: EventFilter,
    *,
    cursor: Cursor | None,
    limit: int,
    now: datetime,
    trace: Trace | None = None,
) -> list[dict[str, Any]]:
    """A keyset page of the events the caller may see (up to limit + 1 rows). In relevance
    order, the matches of `q` are read a stretch at a time (`_candidates`); `trace` collects
    the statements that read them (tests/api/test_search.py, bench/search.py)."""
    if flt.sort == "relevance":
        search = await _searched(connection, principal, flt, now)
        return (
            [] if search is None else await _ranked_page(connection, search, cursor, limit, trace)
        )
    sql, args = list_query(principal, flt, cursor=cursor, limit=limit, now=now)
    return [decode(r) for r in await connection.fetch(sql, *args)]


async def stream_visible(
    connection: Any, principal: Principal, flt: EventFilter, *, now: datetime, batch: int
) -> AsyncGenerator[dict[str, Any]]:
    """Every event the caller may see that matches, in the filter's sort, read through a
    server-side cursor `batch` rows at a time (never all at once; CSV exports). The
    connection must be in a transaction (`Database.export_connection`)."""
    sql, args = list_query(principal, flt, cursor=None, limit=None, now=now)
    async for record in connection.cursor(sql, *args, prefetch=batch):
        yield decode(record)
