"""The Idempotency-Key store (product.md section 4): a keyed POST's first answer, kept 24 hours.

A key is scoped to the API key that sent it. While a request holds the key's transaction-level
advisory lock, no other request with that key runs; after it commits, a replay answers from the
stored first response (`Idempotent-Replayed: true`), and the same key with another request is
422. A response that carries a secret (an API key's token, a survey link) is never stored whole:
its record keeps the response without the secret fields, and a replay answers a 409 problem
with that (`resource`) and the created resource's `Location`, never the secret (issue 10,
item 2; its review, item 3).

Plain SQL on the request's own connection: this runs on every keyed POST.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import IdempotencyKeyReused, IdempotencySecretWithheld
from app.core.idempotency_models import IdempotencyRecord

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
REPLAY_HEADERS = ("content-type", "location", "etag", "link")
# The headers kept for a withheld response: where the created resource is, nothing of it.
WITHHELD_HEADERS = ("location",)
# The fields of a withheld response that carry its secret (an API key's `token`, a survey
# link's `token` and `url`): the rest of the response is kept and handed back with the 409,
# so a client that lost the first answer learns what was created (review of issue 10, item 3).
SECRET_FIELDS = frozenset({"token", "url"})

LOCK_SQL = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))"
_LOCK_STATEMENT = sa.text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")
FIND_SQL = (
    "SELECT request_hash, status_code, headers, body, secret_withheld FROM idempotency_record"
    " WHERE scope = $1 AND key = $2 AND expires_at > now()"
)
STORE_SQL = (
    "INSERT INTO idempotency_record (scope, key, request_hash, status_code, headers, body,"
    " expires_at, secret_withheld) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)"
    " ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
    " status_code = EXCLUDED.status_code, headers = EXCLUDED.headers, body = EXCLUDED.body,"
    " expires_at = EXCLUDED.expires_at, secret_withheld = EXCLUDED.secret_withheld"
)
DELETE_EXPIRED_SQL = (
    "DELETE FROM idempotency_record WHERE scope = $1 AND key = $2 AND expires_at <= now()"
)
PURGE_BATCH = 5_000
# `request.state` flag set by routes whose successful response carries a secret.
WITHHOLD_STATE = "withhold_response"


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """A keyed POST: the key, scoped to the API key that sent it, and the request's hash."""

    scope: str
    key: str
    request_hash: str

    @property
    def lock_key(self) -> str:
        return self.scope + ":" + self.key


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def lock_in_session(session: AsyncSession, claim: IdempotencyClaim) -> bool:
    """Try the key's advisory lock for the rest of the session's transaction.

    Through the session on purpose: the SQLAlchemy driver begins its transaction on the first
    statement it runs itself, so a lock taken on the raw connection before that ran in
    autocommit and was released at once (issue 10, item 1)."""
    locked = await session.scalar(_LOCK_STATEMENT, {"key": claim.lock_key})
    return bool(locked)


async def stored_response(connection: Any, claim: IdempotencyClaim) -> StoredResponse | None:
    """The first response stored under the claim's key (None when there is none); 422 when
    the key was used with another request, 409 when the first response carried a secret."""
    record = await connection.fetchrow(FIND_SQL, claim.scope, claim.key)
    if record is None:
        return None
    if record["request_hash"] != claim.request_hash:
        raise IdempotencyKeyReused()
    stored = record["headers"]
    if isinstance(stored, str):
        stored = json.loads(stored)
    if record["secret_withheld"]:
        resource = json.loads(record["body"]) if record["body"] else None
        raise IdempotencySecretWithheld(location=stored.get("location"), resource=resource)
    headers = [(k.encode(), v.encode()) for k, v in stored.items()]
    return StoredResponse(
        record["status_code"], [*headers, (b"idempotent-replayed", b"true")], record["body"]
    )


async def try_lock(connection: Any, claim: IdempotencyClaim) -> bool:
    """Try the key's advisory lock for the rest of the connection's transaction."""
    return bool(await connection.fetchval(LOCK_SQL, claim.lock_key))


async def forget_expired(connection: Any, claim: IdempotencyClaim) -> None:
    """Delete the key's record if it has expired (a new first request may take the key)."""
    await connection.execute(DELETE_EXPIRED_SQL, claim.scope, claim.key)


def replay_headers(headers: list[tuple[bytes, bytes]], *, withheld: bool = False) -> dict[str, str]:
    """The response headers a replay repeats (only `Location` of a withheld response)."""
    kept = WITHHELD_HEADERS if withheld else REPLAY_HEADERS
    return {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in headers
        if k.decode("latin-1").lower() in kept
    }


async def store(
    connection: Any,
    claim: IdempotencyClaim,
    *,
    status: int,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
    withheld: bool = False,
) -> None:
    """Keep the first answer under the claim's key; a withheld one without its secret."""
    await connection.execute(
        STORE_SQL,
        claim.scope,
        claim.key,
        claim.request_hash,
        status,
        json.dumps(headers),
        redacted(body) if withheld else body,
        now + IDEMPOTENCY_TTL,
        withheld,
    )


def redacted(body: bytes) -> bytes:
    """A withheld response without its `SECRET_FIELDS`; nothing when it is not a JSON object."""
    try:
        resource = json.loads(body)
    except ValueError:
        return b""
    if not isinstance(resource, dict):
        return b""
    kept = {k: v for k, v in resource.items() if k not in SECRET_FIELDS}
    return json.dumps(kept, separators=(",", ":")).encode()


def withhold_from_replay(request: Request) -> None:
    """Dependency of routes whose response carries a secret shown once (an API key's token,
    a survey link): their answer is never stored for replay (issue 10, item 2)."""
    setattr(request.state, WITHHOLD_STATE, True)


async def purge_expired(session: AsyncSession, batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` expired records; returns how many. Rows another transaction holds
    are skipped, so any number of runners may purge at once."""
    expired = (
        sa.select(IdempotencyRecord.scope, IdempotencyRecord.key)
        .where(IdempotencyRecord.expires_at < sa.func.now())
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        sa.delete(IdempotencyRecord).where(
            sa.tuple_(IdempotencyRecord.scope, IdempotencyRecord.key).in_(expired)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
