"""The work of the webhook jobs (items 2, 3 and 7): fan out, deliver, purge.

* `fanout`: outbox messages not yet published go to each endpoint that is to receive them
  (`audience.view_for`), and are marked published, in one transaction; one fan-out runs at a
  time across every runner, oldest message first. A message that waits behind nothing goes at
  once, sent by the fan-out itself like a delivery (below), and leaves no row unless it fails;
  the others become `webhook_dispatch` rows for the delivery (`_route` says which). Sending
  most messages without a row spares the database a row written, claimed and deleted, and
  the process a claim, per message: a third of the CPU a delivered message cost
  (bench/README.md). While no endpoint exists it writes nothing at all (so the runner costs
  intake nothing when nobody listens): those messages are skipped in bulk once an endpoint
  exists, and purged.
* `deliver`: claims due rows with FOR UPDATE SKIP LOCKED (each the first still to be sent
  about its event to its endpoint), POSTs them signed over the process's kept-alive
  connections (`transport.Connections`: HTTP/1.1, no redirects, timeouts), at most
  `WEBHOOK_ENDPOINT_CONCURRENCY` at once per endpoint (that many lanes, each sending its
  endpoint's rows one after another), and records every attempt in the same transaction: a
  delivered row is deleted, a failed one waits for its next attempt. A message's body is
  rendered once per view, whatever the number of endpoints receiving it.
  The row stays locked while it is sent (a message the fan-out sends, under the fan-out's
  lock), so no other runner sends it at the same time; a runner killed mid-piece leaves its
  rows and messages as they were, and they are sent again (the same `webhook-id`):
  at-least-once.
* `purge`: item 7's retention.
"""

import asyncio
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import metrics
from app.core.clock import utcnow
from app.core.db import uuid7
from app.rules.views import EventView
from app.runner.job import Piece
from app.webhooks import repository, schedule
from app.webhooks.audience import (
    DISABLED_TYPE,
    TEST_TYPE,
    EventFacts,
    Receiver,
    order_version,
    view_for,
)
from app.webhooks.config import WebhookSettings, get_webhook_settings
from app.webhooks.payload import Outgoing, render
from app.webhooks.signing import Signer
from app.webhooks.transport import Answer, Connections

log = structlog.get_logger(__name__)

FANOUT_BATCH: Final = 500
PURGE_BATCH: Final = 5000
EXCERPT_BYTES: Final = 1024
USER_AGENT: Final = "closed-loop-events-webhooks/1"
_FIXED_HEADERS: Final = (
    (b"user-agent", USER_AGENT.encode()),
    (b"content-type", b"application/json"),
)
GONE: Final = 410
KEEPALIVE_SECONDS: Final = 30.0


# An endpoint whose attempt took longer than this (ms) is sent to only through the queue for
# SLOW_FOR: the fan-out, which sends the others' messages at once, holds the fan-out lock while
# it waits. In the piece where that happens, its messages not yet sent are queued too, so a
# hanging endpoint holds the fan-out for one timeout at most.
DIRECT_SLOW_MS: Final = 1000
SLOW_FOR: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt came to."""

    status_code: int | None
    duration_ms: int
    error: str | None
    excerpt: str | None
    retry_after: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(slots=True)
class _Tally:
    """A piece's attempts, as `Deliverer._tally` sorts them."""

    done: list[uuid.UUID] = field(default_factory=list)  # dispatch rows to delete
    retry: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    succeeded: set[uuid.UUID] = field(default_factory=set)
    failed: set[uuid.UUID] = field(default_factory=set)
    gone: set[uuid.UUID] = field(default_factory=set)
    recovered: set[uuid.UUID] = field(default_factory=set)
    slow: set[uuid.UUID] = field(default_factory=set)


def _excerpt(raw: bytes) -> str | None:
    if not raw:
        return None
    return raw[:EXCERPT_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


class Deliverer:
    """The webhook jobs' work and what it keeps across pieces: the process's connections to
    the receivers (kept alive, timeouts, no redirects) and the signers."""

    def __init__(
        self,
        settings: WebhookSettings | None = None,
        *,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.settings = settings or get_webhook_settings()
        self.jitter = jitter
        self.signer = Signer()
        self.connections = Connections(
            allow_private=self.settings.allow_private_targets, keepalive_expiry=KEEPALIVE_SECONDS
        )
        self._queued = asyncio.Event()
        # Endpoints that took longer than DIRECT_SLOW_MS to answer, and until when the
        # fan-out queues their messages instead of sending them at once.
        self._slow: dict[uuid.UUID, datetime] = {}
        self._limits: dict[uuid.UUID, asyncio.Semaphore] = {}
        self._base_url = self.settings.public_base_url.rstrip("/")

    async def queued(self) -> None:
        """Returns once a fan-out of this process has queued messages (and committed): the
        delivery job's `wakeup`, so a message does not wait out the delivery's poll."""
        await self._queued.wait()
        self._queued.clear()

    async def close(self) -> None:
        await self.connections.aclose()

    # ---- fan-out ------------------------------------------------------------------------

    async def fanout(self, piece: Piece) -> int:
        """One batch of unpublished messages sent or queued for their endpoints, and
        published."""
        session = piece.session
        # None: nobody has ever listened (or every endpoint is deleted): nothing to do, and
        # nothing is written; one statement a poll. The messages stay unpublished; once an
        # endpoint exists they are skipped (below), and the retention purge takes them.
        # False: another fan-out is running.
        if not await repository.take_fanout_lock(session):
            return 0
        targets = {
            receiver.endpoint_id: (receiver, target)
            for receiver, target in await repository.targets(session)
        }
        if not targets:
            # Endpoints exist but none is enabled: what is written now is not for them.
            return await repository.publish_unheard(session, None, FANOUT_BATCH, piece.now)
        first = min(receiver.created_at for receiver, _ in targets.values())
        messages = await repository.unpublished(session, FANOUT_BATCH)
        unheard = 0
        if messages and repository.is_unheard(messages[0], first):
            # Written before any enabled endpoint existed: marked published unread, a batch
            # at a time (a backlog from before the first endpoint is not read message by
            # message); then what follows them.
            unheard = await repository.publish_unheard(session, first, FANOUT_BATCH, piece.now)
            if unheard >= FANOUT_BATCH:
                return unheard
            messages = await repository.unpublished(session, FANOUT_BATCH)
        if not messages:
            return unheard
        direct, queued = await self._route(session, messages, targets, piece.now)
        tally: _Tally | None = None
        if direct:
            tally, unsent = await self._send_direct(direct, piece.now)
            queued += [_queued(row, piece.now) for row in unsent]
        await repository.queue(session, queued + (tally.retry if tally else []))
        if tally is not None:
            await repository.hold_back(session, tally.retry)
            await repository.log_attempts(session, tally.attempts)
        await repository.mark_published(session, [m.id for m in messages], piece.now)
        if tally is not None:
            await self._settle(piece, tally)
        if queued:
            piece.on_commit.append(self._queued.set)
        return unheard + len(messages)

    async def _route(
        self,
        session: AsyncSession,
        messages: Sequence[repository.Message],
        targets: Mapping[uuid.UUID, tuple[Receiver, repository.Target]],
        now: datetime,
    ) -> tuple[list[repository.Claimed], list[dict[str, Any]]]:
        """Who receives each message, in which view (`audience.view_for`), and how: sent at
        once by this piece (`direct`), or queued as a `webhook_dispatch` row for the delivery.

        A message goes at once when it is the first still to be sent about its event to its
        endpoint: nothing about that event waits for that endpoint (`repository.waiting`),
        and no earlier message of this batch goes to it; and when its endpoint answers (not
        failing) and answers fast (not in `_slow`: this piece holds the fan-out lock while it
        sends). Everything else is queued, in order behind what it waits for."""
        facts = await repository.event_facts(
            session, list({m.event_id for m in messages if m.event_id is not None})
        )
        wanted = _audience(messages, facts, [receiver for receiver, _ in targets.values()])
        waiting = await repository.waiting(
            session, list(targets), [fact.id for fact in facts.values()]
        )
        # The first of each (endpoint, event) in this batch, in the order of the claims.
        firsts: dict[tuple[uuid.UUID, uuid.UUID], tuple[int, uuid.UUID]] = {}
        for message, receiver, _, version, _ in wanted:
            if message.event_id is not None:
                pair = (receiver.endpoint_id, message.event_id)
                key = (version, message.id)
                firsts[pair] = min(firsts.get(pair, key), key)
        direct: list[repository.Claimed] = []
        queued: list[dict[str, Any]] = []
        for message, receiver, view, version, fact in wanted:
            endpoint_id = receiver.endpoint_id
            target = targets[endpoint_id][1]
            behind = message.event_id is not None and (
                (endpoint_id, message.event_id) in waiting
                or firsts[(endpoint_id, message.event_id)] != (version, message.id)
            )
            slow = endpoint_id in self._slow and self._slow[endpoint_id] > now
            if behind or target.failing or slow:
                queued.append(
                    dispatch_row(endpoint_id, message.id, message.event_id, version, view, now)
                )
                continue
            direct.append(_sending(message, endpoint_id, target, version, view, fact))
        return direct, queued

    async def _send_direct(
        self, direct: list[repository.Claimed], now: datetime
    ) -> tuple["_Tally", list[repository.Claimed]]:
        """Send what the fan-out sends at once: what it came to, and what was left unsent
        (after an endpoint's attempt failed or was slow in this piece: `_send_all`)."""
        await self.connections.sweep()
        results = await self._send_all(direct, now, stop_early=True)
        sent = [(row, result) for row, result in zip(direct, results, strict=True) if result]
        tally = self._tally([row for row, _ in sent], [result for _, result in sent], now)
        return tally, [row for row, result in zip(direct, results, strict=True) if not result]

    # ---- delivery -----------------------------------------------------------------------

    async def deliver(self, piece: Piece) -> int:
        """Claim due messages, send them, record every attempt (one transaction)."""
        session, now = piece.session, piece.now
        claimed = await repository.claim_due(session, now, self.settings.batch_size)
        if not claimed:
            return 0
        await repository.relax_commit(session)
        await self.connections.sweep()
        results = [result for result in await self._send_all(claimed, now) if result]
        tally = self._tally(claimed, results, now)
        await repository.finish(
            session, done=tally.done, retry=tally.retry, attempts=tally.attempts
        )
        await self._settle(piece, tally)
        return len(claimed)

    def _tally(
        self, sent: list[repository.Claimed], results: list[Result], now: datetime
    ) -> "_Tally":
        """What the attempts came to: the dispatch rows done with (delivered or given up),
        those to retry (a message sent without a row gets one), each attempt's log entry,
        and the endpoints that answered, failed, are gone or were slow."""
        tally = _Tally()
        for row, result in zip(sent, results, strict=True):
            number = row.attempts + 1
            next_at: datetime | None = None
            if result.duration_ms > DIRECT_SLOW_MS:
                tally.slow.add(row.endpoint_id)
            if result.ok:
                outcome = "delivered"
                tally.succeeded.add(row.endpoint_id)
                if row.endpoint_failing:
                    tally.recovered.add(row.endpoint_id)
                if row.id is not None:
                    tally.done.append(row.id)
            else:
                tally.failed.add(row.endpoint_id)
                wait = None
                if result.status_code in schedule.RETRY_AFTER_STATUSES:
                    wait = schedule.retry_after(result.retry_after, now)
                next_at = schedule.next_attempt(number, now, wait_at_least=wait, jitter=self.jitter)
                if next_at is None:
                    if row.id is not None:
                        tally.done.append(row.id)
                else:
                    retry = _queued(row, now) | {"attempts": number, "next_attempt_at": next_at}
                    if row.id is not None:
                        retry["id"] = row.id
                    tally.retry.append(retry)
                outcome = "retrying" if next_at is not None else "failed"
                if result.status_code == GONE:
                    tally.gone.add(row.endpoint_id)
                    outcome, next_at = "failed", None
            tally.attempts.append(
                {
                    "id": uuid7(),
                    "endpoint_id": row.endpoint_id,
                    "message_id": row.message_id,
                    "message_type": row.type,
                    "attempt": number,
                    "attempted_at": now,
                    "outcome": outcome,
                    "status_code": result.status_code,
                    "duration_ms": result.duration_ms,
                    "error": result.error,
                    "next_attempt_at": next_at,
                    "response_excerpt": result.excerpt,
                }
            )
        return tally

    async def _settle(self, piece: Piece, tally: "_Tally") -> None:
        """After a piece's attempts are recorded: count them once it commits, note which
        endpoints are slow (`_route`), and record the endpoints' health."""
        outcomes = [attempt["outcome"] for attempt in tally.attempts]
        piece.on_commit.append(lambda: metrics.webhook_attempts(outcomes))
        now = piece.now
        if self._slow:
            self._slow = {ep: until for ep, until in self._slow.items() if until > now}
        self._slow.update(dict.fromkeys(tally.slow, now + SLOW_FOR))
        await self._health(
            piece,
            succeeded=tally.succeeded,
            recovered=tally.recovered,
            failed=tally.failed,
            gone=tally.gone,
        )

    async def _send_all(
        self, claimed: list[repository.Claimed], now: datetime, *, stop_early: bool = False
    ) -> list[Result | None]:
        """Send the claimed messages: per endpoint, `endpoint_concurrency` lanes take its
        messages in turn, and every request of this process to one endpoint takes one of its
        `endpoint_concurrency` slots (`limit`), so at most that many are in flight to it
        whichever job sends. The results in the messages' order; with `stop_early` (the
        fan-out), once an attempt to an endpoint fails or is slow, its messages not yet sent
        are left unsent (None)."""
        results: list[Result | None] = [None] * len(claimed)
        bodies: dict[tuple[uuid.UUID, str], bytes] = {}
        by_endpoint: dict[uuid.UUID, list[int]] = defaultdict(list)
        for index, row in enumerate(claimed):
            by_endpoint[row.endpoint_id].append(index)
        stopped: set[uuid.UUID] = set()

        async def lane(todo: Iterator[int]) -> None:
            for index in todo:
                row = claimed[index]
                if row.endpoint_id in stopped:
                    return
                key = (row.message_id, row.view)
                body = bodies.get(key)
                if body is None:
                    body = bodies[key] = self.body(row)
                async with self.limit(row.endpoint_id):
                    result = results[index] = await self.send(row, body, now)
                if stop_early and (not result.ok or result.duration_ms > DIRECT_SLOW_MS):
                    stopped.add(row.endpoint_id)

        lanes: list[Coroutine[Any, Any, None]] = []
        for indexes in by_endpoint.values():
            todo = iter(indexes)  # shared by the endpoint's lanes
            width = min(self.settings.endpoint_concurrency, len(indexes))
            lanes.extend(lane(todo) for _ in range(width))
        await asyncio.gather(*lanes)
        return results

    def limit(self, endpoint_id: uuid.UUID) -> asyncio.Semaphore:
        """The endpoint's slots in this process: `endpoint_concurrency` requests at once."""
        slots = self._limits.get(endpoint_id)
        if slots is None:
            slots = self._limits[endpoint_id] = asyncio.Semaphore(
                self.settings.endpoint_concurrency
            )
        return slots

    async def _health(
        self,
        piece: Piece,
        *,
        succeeded: set[uuid.UUID],
        recovered: set[uuid.UUID],
        failed: set[uuid.UUID],
        gone: set[uuid.UUID],
    ) -> None:
        """Record which endpoints answered (`recovered`: those of them that were failing when
        claimed); disable those that are gone (410) or have failed every attempt for five
        days (item 3)."""
        now = piece.now
        health = await repository.endpoint_health(
            piece.session,
            succeeded=sorted(succeeded),
            recovered=sorted(recovered),
            failed=sorted(failed),
            now=now,
        )
        for endpoint_id in sorted(gone):
            await self._disable(piece, endpoint_id, "the endpoint answered 410 Gone", None)
        for endpoint_id, failing_since in health:
            if endpoint_id not in gone and schedule.gives_up_on_endpoint(failing_since, now):
                await self._disable(
                    piece, endpoint_id, "every attempt failed for 5 days", failing_since
                )

    def body(self, row: repository.Claimed) -> bytes:
        """The body `row`'s endpoint receives (the message in the endpoint owner's view)."""
        return render(
            Outgoing(
                type=row.type,
                timestamp=str(row.payload.get("timestamp", "")),
                data=row.payload.get("data") or {},
                event_id=str(row.event_id) if row.event_id is not None else None,
                event_ref=row.event_ref,
                event_title=row.event_title,
                version=row.event_version,
                view=EventView(row.view),
            ),
            base_url=self._base_url,
        )

    async def send(self, row: repository.Claimed, body: bytes, now: datetime) -> Result:
        """One signed POST of `body` (`row`'s message); never raises for what the receiver
        does."""
        secrets = [row.secret]
        expires = row.previous_secret_expires_at
        if row.previous_secret and expires is not None and expires > now:
            secrets.append(row.previous_secret)
        signed = self.signer.headers(str(row.message_id), utcnow(), body.decode(), secrets)
        started = time.perf_counter()
        answer: Answer | None = None
        error: str | None = None
        timeout = self.settings.timeout_seconds
        try:  # `post`'s timeout is the whole request's, connecting included
            answer = await self.connections.post(
                row.url, [*_FIXED_HEADERS, *signed], body, timeout=timeout, limit=EXCERPT_BYTES
            )
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
        except Exception as exc:  # whatever the target does, the attempt is recorded
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration = round((time.perf_counter() - started) * 1000)
        if answer is None:
            return Result(None, duration, error, None, None)
        status = answer.status
        if not 200 <= status < 300:
            error = f"HTTP {status}" + (
                " (redirects are not followed)" if 300 <= status < 400 else ""
            )
        return Result(status, duration, error, _excerpt(answer.head), answer.retry_after)

    async def _disable(
        self, piece: Piece, endpoint_id: uuid.UUID, reason: str, failing_since: datetime | None
    ) -> None:
        """Disable the endpoint and tell admins (an `endpoint.disabled` message)."""
        endpoint = await repository.disable(
            piece.session, endpoint_id, reason=reason, now=piece.now
        )
        if endpoint is None:
            return
        log.warning("webhook_endpoint_disabled", endpoint_id=str(endpoint_id), reason=reason)
        await repository.add_message(
            piece.session,
            message_row(
                DISABLED_TYPE,
                at=piece.now,
                data={
                    "endpoint_id": str(endpoint_id),
                    "url": endpoint.url,
                    "owner_id": str(endpoint.owner_id),
                    "reason": reason,
                    "failing_since": failing_since.isoformat() if failing_since else None,
                },
                published=False,
            ),
        )

    # ---- retention ----------------------------------------------------------------------

    async def purge(self, piece: Piece) -> int:
        """Item 7: what is older than `OUTBOX_RETENTION_DAYS`, a batch per piece."""
        cutoff = piece.now - timedelta(days=self.settings.retention_days)
        return await repository.purge(piece.session, cutoff, batch=PURGE_BATCH)


_Wanted = tuple[repository.Message, Receiver, EventView, int, EventFacts | None]


def _audience(
    messages: Sequence[repository.Message],
    facts: Mapping[uuid.UUID, EventFacts],
    receivers: Sequence[Receiver],
) -> list[_Wanted]:
    """Each message with each receiver that gets it (`audience.view_for`), in its view and
    its place among its event's messages (`audience.order_version`), in the messages' order."""
    wanted: list[_Wanted] = []
    for message in messages:
        if message.type == TEST_TYPE:
            continue
        fact = facts.get(message.event_id) if message.event_id is not None else None
        if message.event_id is not None and fact is None:
            continue  # the event is gone
        for receiver in receivers:
            if message.created_at < receiver.created_at:
                continue  # written before the endpoint existed (replay sends those)
            view = view_for(receiver, message.type, fact)
            if view is None:
                continue
            version = (
                order_version(message.type, message.data.get("version"), fact)
                if fact is not None
                else 0
            )
            wanted.append((message, receiver, view, version, fact))
    return wanted


def _sending(
    message: repository.Message,
    endpoint_id: uuid.UUID,
    target: repository.Target,
    version: int,
    view: EventView,
    fact: EventFacts | None,
) -> repository.Claimed:
    """A message the fan-out sends at once (no dispatch row)."""
    return repository.Claimed(
        id=None,
        endpoint_id=endpoint_id,
        message_id=message.id,
        event_id=message.event_id,
        event_version=version,
        view=view.value,
        attempts=0,
        type=message.type,
        payload={"timestamp": message.timestamp, "data": message.data},
        url=target.url,
        secret=target.secret,
        previous_secret=target.previous_secret,
        previous_secret_expires_at=target.previous_secret_expires_at,
        event_ref=fact.ref if fact is not None else None,
        event_title=fact.title if fact is not None else None,
        endpoint_failing=target.failing,
    )


def _queued(row: repository.Claimed, now: datetime) -> dict[str, Any]:
    """`row`'s message as a new dispatch row, due at once: one the fan-out left unsent, or
    (with its attempts and next attempt) one sent without a row that is to be retried."""
    return dispatch_row(
        row.endpoint_id, row.message_id, row.event_id, row.event_version, EventView(row.view), now
    )


def dispatch_row(
    endpoint_id: uuid.UUID,
    message_id: uuid.UUID,
    event_id: uuid.UUID | None,
    version: int,
    view: EventView,
    now: datetime,
) -> dict[str, Any]:
    """A message queued for an endpoint, due at once."""
    return {
        "id": uuid7(),
        "endpoint_id": endpoint_id,
        "message_id": message_id,
        "event_id": event_id,
        "event_version": version,
        "view": view.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def message_row(
    type_: str, *, at: datetime, data: Mapping[str, Any], published: bool
) -> dict[str, Any]:
    """An outbox message of the webhooks' own (about no event); `published` ones are queued
    by the caller and skip the fan-out."""
    return {
        "id": uuid7(),
        "type": type_,
        "event_id": None,
        "created_at": at,
        "published_at": at if published else None,
        "payload": {"type": type_, "timestamp": at.isoformat(), "data": dict(data)},
    }
