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

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import uuid7
from app.core.jsonable import jsonable
from app.events import repository
from app.events.models import TimelineEntry

GENESIS = "0" * 64


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """What one timeline entry says: when, who (None: the service itself), what, and the
    values before and after (R7.1)."""

    at: datetime
    actor_id: uuid.UUID | None
    action: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    note: str | None = None


def new_entry(event_id: uuid.UUID, head: ChainHead, entry: Entry) -> dict[str, Any]:
    """The column values of the next entry after `head`."""
    seq = head.seq + 1
    values = {
        "event_id": event_id,
        "seq": seq,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "before": jsonable(entry.before),
        "after": jsonable(entry.after),
        "note": entry.note,
        "prev_hash": head.hash,
    }
    return {"id": uuid7(), **values, "hash": entry_hash(**values)}


async def chain_head(session: AsyncSession, event_id: uuid.UUID) -> ChainHead:
    """The event's last entry, to chain the next one to."""
    head = await repository.chain_head(session, event_id)
    return ChainHead(0, GENESIS) if head is None else ChainHead(*head)


class Recorder:
    """Writes the timeline entries of one locked event within the request's transaction."""

    def __init__(self, session: AsyncSession, event_id: uuid.UUID, head: ChainHead) -> None:
        self.session = session
        self.event_id = event_id
        self.head = head

    async def record(self, entry: Entry) -> None:
        values = new_entry(self.event_id, self.head, entry)
        await repository.insert_timeline_entry(self.session, values)
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
