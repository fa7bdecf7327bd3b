"""All of the webhooks' SQL (issue 13): endpoints, the fan-out of outbox messages, claiming
and finishing deliveries, the delivery log, replay and the retention purge."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Cursor, newest_first
from app.outbox.models import OutboxMessage
from app.rules.vocabulary import Role
from app.webhooks.audience import TEST_TYPE, EventFacts, Receiver
from app.webhooks.models import WebhookDelivery, WebhookDispatch, WebhookEndpoint

# The fan-out runs one piece at a time across every runner (a transaction-level advisory
# lock), so messages are fanned out in the order they were written.
FANOUT_LOCK: Final = 0x5EB_400C_0013
# A message's id is made a moment after its `created_at` (same clock): a time range is a key
# range widened by this much, made exact by a `created_at` condition.
_SLACK: Final = timedelta(minutes=1)
_LAST_UUID: Final = uuid.UUID(int=2**128 - 1)


def uuid7_floor(at: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of the millisecond `at`: ids are time-ordered, so a time range of
    messages or attempts is a range of the primary key."""
    ms = int(at.timestamp() * 1000)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62))


# ---- endpoints ---------------------------------------------------------------------------


async def add_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    session.add(endpoint)
    await session.flush()
    return endpoint


async def endpoint(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    owner_id: uuid.UUID | None,
    for_update: bool = False,
) -> WebhookEndpoint | None:
    """One endpoint (only if `owner_id` owns it, unless None), locked with `for_update`."""
    query = sa.select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if owner_id is not None:
        query = query.where(WebhookEndpoint.owner_id == owner_id)
    if for_update:
        query = query.with_for_update()
    found: WebhookEndpoint | None = await session.scalar(query)
    return found


async def endpoints(
    session: AsyncSession, *, owner_id: uuid.UUID | None, cursor: Cursor | None, limit: int
) -> list[WebhookEndpoint]:
    """Endpoints newest first, one keyset page (one more row than `limit` tells there is
    another)."""
    query = sa.select(WebhookEndpoint)
    if owner_id is not None:
        query = query.where(WebhookEndpoint.owner_id == owner_id)
    page = newest_first(query, cursor, limit, WebhookEndpoint.created_at, WebhookEndpoint.id)
    return list(await session.scalars(page))


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """The endpoint, what is still to be sent to it and its delivery log (no foreign key
    cascades: `models._EndpointMessage`). A delivery sending to it at this moment may still
    log its attempt; the retention purge takes that row with the others of its age."""
    for table in (WebhookDispatch, WebhookDelivery):
        await session.execute(sa.delete(table).where(table.endpoint_id == endpoint.id))
    await session.delete(endpoint)
    await session.flush()


# What waits for a disabled endpoint is parked this far ahead, so the delivery claims (an index
# range on `next_attempt_at`) never walk past it; enabling the endpoint makes it due again.
PARKED: Final = datetime(9999, 1, 1, tzinfo=UTC)


async def park(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """An endpoint disabled: what waits for it is set aside until it is enabled again."""
    await session.execute(
        sa.update(WebhookDispatch)
        .where(WebhookDispatch.endpoint_id == endpoint_id)
        .values(next_attempt_at=PARKED)
    )


async def resume(session: AsyncSession, endpoint_id: uuid.UUID, now: datetime) -> None:
    """An endpoint enabled again: what waits for it is due now."""
    await session.execute(
        sa.update(WebhookDispatch)
        .where(WebhookDispatch.endpoint_id == endpoint_id, WebhookDispatch.next_attempt_at > now)
        .values(next_attempt_at=now)
    )


async def disable(
    session: AsyncSession, endpoint_id: uuid.UUID, *, reason: str, now: datetime
) -> WebhookEndpoint | None:
    """Disable an endpoint that is enabled; the endpoint, or None if it already was."""
    row = await session.execute(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled)
        .values(enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now)
        .returning(WebhookEndpoint)
        .execution_options(synchronize_session=False)
    )
    disabled = row.scalar_one_or_none()
    if disabled is not None:
        await park(session, endpoint_id)
    return disabled


# ---- messages ----------------------------------------------------------------------------


async def add_message(session: AsyncSession, row: Mapping[str, Any]) -> None:
    """A message of the service's own (a test message, `endpoint.disabled`)."""
    await session.execute(sa.insert(OutboxMessage).values(**row))


@dataclass(frozen=True, slots=True)
class Message:
    id: uuid.UUID
    type: str
    event_id: uuid.UUID | None
    data: Mapping[str, Any]
    created_at: datetime
    timestamp: str  # the payload's: when the change happened


def _message(
    id_: uuid.UUID, type_: str, event_id: uuid.UUID | None, payload: Any, created_at: datetime
) -> Message:
    """A message from its columns (`_MESSAGE_COLUMNS`' order), its payload parsed."""
    if not isinstance(payload, dict):
        payload = {}
    data = payload.get("data")
    return Message(id_, type_, event_id, data or {}, created_at, str(payload.get("timestamp", "")))


_MESSAGE_COLUMNS: Final = (
    OutboxMessage.id,
    OutboxMessage.type,
    OutboxMessage.event_id,
    OutboxMessage.payload,
    OutboxMessage.created_at,
)


_UNPUBLISHED_SQL: Final = sa.text("""
SELECT id, type, event_id, payload::text, created_at FROM outbox_message
WHERE published_at IS NULL ORDER BY id LIMIT :limit
""")


async def unpublished(session: AsyncSession, limit: int) -> list[Message]:
    """The oldest messages not yet fanned out (the outbox's partial index on them); the
    payload read as text and parsed by orjson, as `claim_due` does."""
    rows = await session.execute(_UNPUBLISHED_SQL, {"limit": limit})
    return [
        _message(id_, type_, event_id, orjson.loads(payload), created_at)
        for id_, type_, event_id, payload, created_at in rows
    ]


def _heard_from(first: datetime) -> uuid.UUID:
    """The smallest message id an endpoint created at `first` receives (less a minute of
    clock slack): what comes before was written while nobody listened."""
    return uuid7_floor(first - _SLACK)


def is_unheard(message: Message, first: datetime) -> bool:
    """Whether `message` was written before any enabled endpoint existed (`first`: the first
    one's creation), as `publish_unheard` counts it."""
    return message.id < _heard_from(first)


_PUBLISH_UNHEARD: Final = sa.text("""
WITH batch AS (
  SELECT id FROM outbox_message WHERE published_at IS NULL AND id < :floor ORDER BY id LIMIT :limit
)
UPDATE outbox_message m SET published_at = :now FROM batch WHERE m.id = batch.id
""")


async def publish_unheard(
    session: AsyncSession, before: datetime | None, limit: int, now: datetime
) -> int:
    """Mark published, without reading them, the oldest `limit` unpublished messages written
    before `before` (the first enabled endpoint's creation, less a minute of clock slack; all
    of them for `None`, when no endpoint is enabled): nobody listened when they were written,
    so there is nobody to queue them for. How many."""
    floor = _heard_from(before) if before is not None else _LAST_UUID
    result = await session.execute(_PUBLISH_UNHEARD, {"floor": floor, "limit": limit, "now": now})
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_published(session: AsyncSession, ids: Sequence[uuid.UUID], now: datetime) -> None:
    await session.execute(
        sa.text("UPDATE outbox_message SET published_at = :now WHERE id = ANY(:ids)"),
        {"now": now, "ids": list(ids)},
    )


async def messages_between(
    session: AsyncSession, since: datetime, until: datetime, *, limit: int
) -> list[Message]:
    """Messages written in [since, until) that were fanned out, oldest first (a range of the
    time-ordered primary key, narrowed by `created_at`), at most `limit`; test messages
    belong to their endpoint and are left out."""
    rows = await session.execute(
        sa.select(*_MESSAGE_COLUMNS)
        .where(
            OutboxMessage.id >= uuid7_floor(since - _SLACK),
            OutboxMessage.id < uuid7_floor(until + _SLACK),
            OutboxMessage.created_at >= since,
            OutboxMessage.created_at < until,
            OutboxMessage.published_at.is_not(None),
            OutboxMessage.type != TEST_TYPE,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return [_message(*r) for r in rows]


# ---- the fan-out -------------------------------------------------------------------------


# The lock is tried only when an endpoint exists (CASE evaluates its branches in order).
# The same statement makes the piece's commit not wait for the disk (`relax_commit`), and
# turns bitmap scans off for the rest of the piece's transaction: the unpublished messages
# are read through the outbox's partial index in key order, and a plain index scan marks the
# entries of messages published since (dead until a vacuum) as dead as it passes them, so
# the next piece skips them; a bitmap scan visits them all again, every piece (7.8 ms for
# 130 messages after 44,000 were published, 0.3 ms with the index scan).
_FANOUT_TURN_SQL: Final = sa.text(
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoint)"
    " THEN pg_try_advisory_xact_lock(:lock) END,"
    " set_config('enable_bitmapscan', 'off', true),"
    " set_config('synchronous_commit', 'off', true)"
).bindparams(lock=FANOUT_LOCK)


async def relax_commit(session: AsyncSession) -> None:
    """This transaction's commit returns before its WAL is on disk (PostgreSQL's
    `synchronous_commit = off`, for this transaction only): the webhook pieces do not make
    the intakes committing beside them wait for their flushes. Safe for them: a crash of
    the database can lose only whole recent pieces, and what a lost piece did the next one
    does again (its messages fanned out or sent again, with their `webhook-id`: at-least-
    once; an endpoint answering 410 again is disabled again). Intake and every other
    transaction still wait for the disk."""
    await session.execute(sa.text("SET LOCAL synchronous_commit = off"))


async def take_fanout_lock(session: AsyncSession) -> bool | None:
    """In one statement: None when no endpoint exists (enabled or not: nobody has ever
    listened, and no lock is taken), else True when this transaction is now the only fan-out
    running. Either way, for the rest of this transaction, bitmap scans are off and the
    commit does not wait for the disk (`_FANOUT_TURN_SQL`)."""
    taken = (await session.execute(_FANOUT_TURN_SQL)).scalar()
    return None if taken is None else bool(taken)


_RECEIVERS_SQL: Final = sa.text("""
SELECT w.id, w.owner_id, w.event_types, w.departments, w.created_at, u.roles,
       d.code AS department, NOT u.service_account AS person,
       w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
       w.failing_since IS NOT NULL AS failing
FROM webhook_endpoint w
JOIN app_user u ON u.id = w.owner_id AND u.active
LEFT JOIN department d ON d.id = u.department_id
WHERE w.enabled
""")


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how an enabled endpoint is sent to."""

    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    failing: bool  # its `failing_since` is set


async def targets(session: AsyncSession) -> list[tuple[Receiver, Target]]:
    """The enabled endpoints, each with what its owner is now and where it is sent to."""
    rows = await session.execute(_RECEIVERS_SQL)
    return [
        (
            Receiver(
                endpoint_id=r.id,
                owner_id=r.owner_id,
                roles=frozenset(map(Role, r.roles)),
                department=r.department,
                event_types=frozenset(r.event_types) if r.event_types is not None else None,
                departments=frozenset(r.departments) if r.departments is not None else None,
                created_at=r.created_at,
                person=r.person,
            ),
            Target(r.url, r.secret, r.previous_secret, r.previous_secret_expires_at, r.failing),
        )
        for r in rows
    ]


async def receivers(session: AsyncSession, endpoint_id: uuid.UUID | None = None) -> list[Receiver]:
    """The enabled endpoints (or the one given) with what their owners are now."""
    found = [receiver for receiver, _ in await targets(session)]
    if endpoint_id is not None:
        found = [r for r in found if r.endpoint_id == endpoint_id]
    return found


_FACTS_SQL: Final = sa.text("""
SELECT e.id, e.version, e.created_by, e.lead_department, e.cooperating_departments,
       e.involved_departments, e.reporter_user_id, e.ref, e.title,
       ARRAY(SELECT s.owner_id FROM plan_step s WHERE s.event_id = e.id) AS step_owners,
       ARRAY(SELECT a.department FROM improvement_action a WHERE a.event_id = e.id)
           AS action_departments
FROM event e
WHERE e.id = ANY(:ids)
""")


async def event_facts(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, EventFacts]:
    """What the visibility rule needs of each event (app/rules/permissions.py `may_see`)."""
    if not event_ids:
        return {}
    rows = await session.execute(_FACTS_SQL, {"ids": list(event_ids)})
    return {
        id_: EventFacts(
            id=id_,
            version=version,
            created_by=created_by,
            lead=lead,
            cooperating=tuple(cooperating or ()),
            involved=tuple(involved or ()),
            step_owners=frozenset(step_owners or ()),
            action_departments=frozenset(action_departments or ()),
            reporter_user=reporter,
            ref=ref,
            title=title,
        )
        for (
            id_,
            version,
            created_by,
            lead,
            cooperating,
            involved,
            reporter,
            ref,
            title,
            step_owners,
            action_departments,
        ) in rows
    }


def as_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows for `json_populate_recordset` (one text parameter, whatever the number of rows):
    orjson writes a batch in about a fifth of the time the driver takes to encode the same
    values as one array per column, and the database reads it no slower. The driver's own
    UUIDs (ids read back from the database) are written as their text."""
    return orjson.dumps(rows, default=str).decode()


# A piece's rows as ONE statement (rows one by one cost a round trip each; bound parameters
# one by one, SQLAlchemy a compilation per batch size), in the table's own row type: a
# column the rows do not name is NULL.
_QUEUE_SQL: Final = sa.text(
    "INSERT INTO webhook_dispatch"
    " SELECT * FROM json_populate_recordset(NULL::webhook_dispatch, CAST(:rows AS json))"
    " ON CONFLICT ON CONSTRAINT uq_webhook_dispatch_endpoint_id_message_id"
    " DO UPDATE SET next_attempt_at = excluded.next_attempt_at"
)


async def queue(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> int:
    """Queue messages for endpoints (`webhook_dispatch` rows); a message already waiting for
    that endpoint is made due at the new row's time instead. Returns how many."""
    if not rows:
        return 0
    await session.execute(_QUEUE_SQL, {"rows": as_json(rows)})
    return len(rows)


# ---- delivery ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message to send to one endpoint, with what sending it needs: a due dispatch row,
    locked by this transaction, or (`id` None) a message the fan-out sends at once, which
    has no row unless it fails (`Deliverer.fanout`)."""

    id: uuid.UUID | None
    endpoint_id: uuid.UUID
    message_id: uuid.UUID
    event_id: uuid.UUID | None
    event_version: int
    view: str
    attempts: int
    type: str
    payload: Mapping[str, Any]
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    event_ref: str | None
    event_title: str | None
    endpoint_failing: bool  # its `failing_since` was set when the row was claimed


# Due rows of enabled endpoints, each the first still to be sent about its event to its
# endpoint (item 2's order); rows another runner holds are skipped, not waited for.
_CLAIM_SQL: Final = sa.text("""
SELECT d.id, d.endpoint_id, d.message_id, d.event_id, d.event_version, d.view, d.attempts,
       m.type, m.payload::text, w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
       ev.ref AS event_ref, ev.title AS event_title, w.failing_since IS NOT NULL
FROM webhook_dispatch d
JOIN webhook_endpoint w ON w.id = d.endpoint_id
JOIN outbox_message m ON m.id = d.message_id
LEFT JOIN event ev ON ev.id = d.event_id
WHERE d.next_attempt_at <= :now AND w.enabled
  AND NOT EXISTS (
      SELECT 1 FROM webhook_dispatch p
      WHERE p.endpoint_id = d.endpoint_id AND p.event_id = d.event_id
        AND (p.event_version, p.message_id) < (d.event_version, d.message_id))
ORDER BY d.next_attempt_at
LIMIT :limit
FOR UPDATE OF d SKIP LOCKED
""")


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[Claimed]:
    """Due rows, locked (`_CLAIM_SQL`); the payload is read as text and parsed by orjson
    (several times faster than the driver's JSON codec, on every message delivered)."""
    rows = await session.execute(_CLAIM_SQL, {"now": now, "limit": limit})
    claimed = []
    for row in rows:
        fields: list[Any] = list(row)
        fields[8] = orjson.loads(fields[8])
        claimed.append(Claimed(*fields))
    return claimed


async def finish(
    session: AsyncSession,
    *,
    done: Sequence[uuid.UUID],
    retry: Sequence[Mapping[str, Any]],
    attempts: Sequence[Mapping[str, Any]],
) -> None:
    """Record a delivery piece's attempts: `done` rows (delivered or given up) are deleted;
    `retry` rows (`id`, `attempts`, `next_attempt_at`, `endpoint_id`, `event_id`) wait until
    their next attempt, and so do the later rows about the same event for the same endpoint
    (`hold_back`); `attempts` go to the delivery log."""
    if done:
        await session.execute(
            sa.text("DELETE FROM webhook_dispatch WHERE id = ANY(:ids)"), {"ids": list(done)}
        )
    if retry:
        await session.execute(
            sa.text("""
UPDATE webhook_dispatch d SET attempts = r.attempts, next_attempt_at = r.next_attempt_at
FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS int[]), CAST(:nexts AS timestamptz[]))
     AS r(id, attempts, next_attempt_at)
WHERE d.id = r.id
"""),
            {
                "ids": [r["id"] for r in retry],
                "attempts": [r["attempts"] for r in retry],
                "nexts": [r["next_attempt_at"] for r in retry],
            },
        )
    await hold_back(session, retry)
    await log_attempts(session, attempts)


async def hold_back(session: AsyncSession, retry: Sequence[Mapping[str, Any]]) -> None:
    """The rows about the same event for the same endpoint as a `retry` row wait until its
    next attempt: they cannot go before it, and the claims need not walk past them."""
    waiting = [r for r in retry if r["event_id"] is not None]
    if not waiting:
        return
    await session.execute(
        sa.text("""
UPDATE webhook_dispatch d SET next_attempt_at = r.next_attempt_at
FROM unnest(CAST(:endpoints AS uuid[]), CAST(:events AS uuid[]),
            CAST(:nexts AS timestamptz[])) AS r(endpoint_id, event_id, next_attempt_at)
WHERE d.endpoint_id = r.endpoint_id AND d.event_id = r.event_id
  AND d.next_attempt_at < r.next_attempt_at
"""),
        {
            "endpoints": [r["endpoint_id"] for r in waiting],
            "events": [r["event_id"] for r in waiting],
            "nexts": [r["next_attempt_at"] for r in waiting],
        },
    )


async def log_attempts(session: AsyncSession, attempts: Sequence[Mapping[str, Any]]) -> None:
    """Attempts to the delivery log, in one statement."""
    if attempts:
        await session.execute(_INSERT_ATTEMPTS, {"rows": as_json(attempts)})


_WAITING_SQL: Final = sa.text("""
SELECT DISTINCT endpoint_id, event_id FROM webhook_dispatch
WHERE endpoint_id = ANY(:endpoints) AND event_id = ANY(:events)
""")


async def waiting(
    session: AsyncSession, endpoints: Sequence[uuid.UUID], events: Sequence[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """The (endpoint, event) pairs among these that have a message still waiting to be sent
    (queued, or being retried): a newer message of the pair must queue behind it."""
    if not endpoints or not events:
        return set()
    rows = await session.execute(
        _WAITING_SQL, {"endpoints": list(endpoints), "events": list(events)}
    )
    return {(endpoint_id, event_id) for endpoint_id, event_id in rows}


_INSERT_ATTEMPTS: Final = sa.text(
    "INSERT INTO webhook_delivery"
    " SELECT * FROM json_populate_recordset(NULL::webhook_delivery, CAST(:rows AS json))"
)


async def endpoint_health(
    session: AsyncSession,
    *,
    succeeded: Sequence[uuid.UUID],
    recovered: Sequence[uuid.UUID],
    failed: Sequence[uuid.UUID],
    now: datetime,
) -> list[tuple[uuid.UUID, datetime]]:
    """A success clears the `failing_since` of an endpoint that was failing when its row
    was claimed (`recovered`: no statement at all while every endpoint answers); a failure
    sets it if unset, unless the endpoint also `succeeded` in this piece. Returns (id,
    failing_since) of the enabled endpoints that only failed in this piece."""
    if recovered:
        await session.execute(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(recovered), WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None)
        )
    only_failed = sorted(set(failed) - set(succeeded))
    if not only_failed:
        return []
    await session.execute(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id.in_(only_failed), WebhookEndpoint.failing_since.is_(None))
        .values(failing_since=now)
    )
    rows = await session.execute(
        sa.select(WebhookEndpoint.id, WebhookEndpoint.failing_since).where(
            WebhookEndpoint.id.in_(only_failed), WebhookEndpoint.enabled
        )
    )
    return [(r.id, r.failing_since) for r in rows]


# ---- the delivery log ----------------------------------------------------------------------


async def deliveries(
    session: AsyncSession, endpoint_id: uuid.UUID, *, cursor: Cursor | None, limit: int
) -> list[WebhookDelivery]:
    """An endpoint's attempts, newest first (ids are time-ordered), one keyset page (one more
    row than `limit` tells there is another)."""
    query = sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    return list(await session.scalars(newest_first(query, cursor, limit, WebhookDelivery.id)))


async def delivery(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    found: WebhookDelivery | None = await session.scalar(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
    )
    return found


# ---- retention -----------------------------------------------------------------------------


async def purge(session: AsyncSession, cutoff: datetime, *, batch: int) -> int:
    """Item 7: attempts and fanned-out (or never to be fanned-out: no enabled endpoint was
    listening when they were written) messages written before `cutoff`, and what still waits
    for a disabled endpoint since before it; at most `batch` rows of each. Returns how many."""
    floor = uuid7_floor(cutoff)
    attempts = await session.execute(
        sa.text("""
DELETE FROM webhook_delivery WHERE id IN (
    SELECT id FROM webhook_delivery WHERE id < :floor ORDER BY id LIMIT :batch)
"""),
        {"floor": floor, "batch": batch},
    )
    stale = await session.execute(_PURGE_STALE, {"cutoff": cutoff, "batch": batch})
    messages = await session.scalar(_PURGE_MESSAGES, {"floor": floor, "batch": batch})
    counts: list[int] = [r.rowcount for r in (attempts, stale)]  # type: ignore[attr-defined]
    return sum(counts) + int(messages or 0)


# What waits for a disabled endpoint since before the cutoff, and what waits for an endpoint
# or a message that is gone (deleted while a piece queued for it: no foreign keys).
_PURGE_STALE: Final = sa.text("""
DELETE FROM webhook_dispatch WHERE id IN (
    SELECT d.id FROM webhook_dispatch d LEFT JOIN webhook_endpoint w ON w.id = d.endpoint_id
    WHERE (w.id IS NULL OR (NOT w.enabled AND d.created_at < :cutoff)
           OR NOT EXISTS (SELECT 1 FROM outbox_message m WHERE m.id = d.message_id))
    LIMIT :batch)
""")
# Messages before the cutoff that were fanned out (or never will be: no enabled endpoint was
# listening when they were written) and wait for no endpoint, with their delivery log, newer
# attempts (a resend) included.
_PURGE_MESSAGES: Final = sa.text("""
WITH purged AS (
  DELETE FROM outbox_message WHERE id IN (
    SELECT m.id FROM outbox_message m
    WHERE m.id < :floor
      AND (m.published_at IS NOT NULL
           OR NOT EXISTS (SELECT 1 FROM webhook_endpoint w
                          WHERE w.enabled AND w.created_at <= m.created_at))
      AND NOT EXISTS (SELECT 1 FROM webhook_dispatch d WHERE d.message_id = m.id)
    ORDER BY m.id LIMIT :batch)
  RETURNING id
), log AS (
  DELETE FROM webhook_delivery WHERE message_id IN (SELECT id FROM purged)
)
SELECT count(*) FROM purged
""")


async def message(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    row = (
        await session.execute(sa.select(*_MESSAGE_COLUMNS).where(OutboxMessage.id == message_id))
    ).first()
    return _message(*row) if row is not None else None


async def unknown_departments(session: AsyncSession, codes: Sequence[str]) -> list[str]:
    """Those of `codes` that name no department."""
    known = set(
        await session.scalars(
            sa.text("SELECT code FROM department WHERE code = ANY(:codes)"), {"codes": list(codes)}
        )
    )
    return sorted(set(codes) - known)
