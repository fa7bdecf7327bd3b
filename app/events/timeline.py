"""The append-only, hash-chained timeline of an event (R7.1; product.md section 4).

Each entry's hash is SHA-256 over its canonical JSON content and the previous entry's hash,
so an edited, removed or reordered entry breaks the chain and `verify_chain` reports it.
"""

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import uuid7
from app.events.models import TimelineEntry

GENESIS = "0" * 64


def jsonable(value: Any) -> Any:
    """Plain JSON values (strings for times, UUIDs and decimals), as stored in JSONB."""
    return to_jsonable_python(value)


def entry_hash(
    *,
    event_id: uuid.UUID,
    seq: int,
    at: datetime,
    actor_id: uuid.UUID | None,
    action: str,
    before: Any,
    after: Any,
    note: str | None,
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        {
            "event_id": str(event_id),
            "seq": seq,
            "at": at.isoformat(),
            "actor_id": str(actor_id) if actor_id else None,
            "action": action,
            "before": before,
            "after": after,
            "note": note,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    seq: int
    hash: str


def new_entry(
    *,
    event_id: uuid.UUID,
    head: ChainHead,
    at: datetime,
    actor_id: uuid.UUID | None,
    action: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """The column values of the next entry after `head`."""
    before_json, after_json = jsonable(before), jsonable(after)
    seq = head.seq + 1
    return {
        "id": uuid7(),
        "event_id": event_id,
        "seq": seq,
        "at": at,
        "actor_id": actor_id,
        "action": action,
        "before": before_json,
        "after": after_json,
        "note": note,
        "prev_hash": head.hash,
        "hash": entry_hash(
            event_id=event_id,
            seq=seq,
            at=at,
            actor_id=actor_id,
            action=action,
            before=before_json,
            after=after_json,
            note=note,
            prev_hash=head.hash,
        ),
    }


async def chain_head(session: AsyncSession, event_id: uuid.UUID) -> ChainHead:
    row = (
        await session.execute(
            sa.select(TimelineEntry.seq, TimelineEntry.hash)
            .where(TimelineEntry.event_id == event_id)
            .order_by(TimelineEntry.seq.desc())
            .limit(1)
        )
    ).one_or_none()
    return ChainHead(0, GENESIS) if row is None else ChainHead(row.seq, row.hash)


class Recorder:
    """Writes the timeline entries of one locked event within the request's transaction."""

    def __init__(self, session: AsyncSession, event_id: uuid.UUID, head: ChainHead) -> None:
        self.session = session
        self.event_id = event_id
        self.head = head

    async def record(
        self,
        *,
        at: datetime,
        actor_id: uuid.UUID | None,
        action: str,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        note: str | None = None,
    ) -> None:
        values = new_entry(
            event_id=self.event_id,
            head=self.head,
            at=at,
            actor_id=actor_id,
            action=action,
            before=before,
            after=after,
            note=note,
        )
        await self.session.execute(sa.insert(TimelineEntry).values(**values))
        self.head = ChainHead(values["seq"], values["hash"])


def verify_chain(event_id: uuid.UUID, entries: Iterable[TimelineEntry]) -> bool:
    """True when every entry follows its predecessor and its hash matches its content."""
    previous = GENESIS
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq or entry.prev_hash != previous:
            return False
        computed = entry_hash(
            event_id=event_id,
            seq=entry.seq,
            at=entry.at,
            actor_id=entry.actor_id,
            action=entry.action,
            before=entry.before,
            after=entry.after,
            note=entry.note,
            prev_hash=entry.prev_hash,
        )
        if computed != entry.hash:
            return False
        previous = entry.hash
    return True


async def entries(session: AsyncSession, event_id: uuid.UUID) -> list[TimelineEntry]:
    return list(
        await session.scalars(
            sa.select(TimelineEntry)
            .where(TimelineEntry.event_id == event_id)
            .order_by(TimelineEntry.seq)
        )
    )
