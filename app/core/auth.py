"""Bearer API keys: opaque tokens stored only as SHA-256 hashes (product.md section 1)."""

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request

from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.db import Database
from app.core.errors import Forbidden, Unauthorized
from app.rules.vocabulary import Role

TOKEN_PREFIX = "cle_"
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: the user behind the API key, with roles and department."""

    user_id: uuid.UUID
    api_key_id: uuid.UUID
    name: str
    roles: frozenset[Role]
    department_id: uuid.UUID | None
    department: str | None
    service_account: bool

    def has(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PrincipalCache:
    """A short-lived in-process cache of token hash -> principal; revocation clears it here.

    When an entry is due (expired, or its last-used stamp is), ONE request refreshes it while
    the others of that key go on with the entry they have: a client sending 64 requests at
    once does not send 64 lookups to the database every few seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Principal, datetime | None]] = {}
        self.refreshing: set[str] = set()

    def get(self, token_hash: str) -> tuple[Principal, datetime | None] | None:
        hit = self._items.get(token_hash)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def stale(self, token_hash: str) -> tuple[Principal, datetime | None] | None:
        """The entry even when expired (for requests arriving while it is refreshed)."""
        hit = self._items.get(token_hash)
        return None if hit is None else (hit[1], hit[2])

    def drop(self, token_hash: str) -> None:
        self._items.pop(token_hash, None)

    def put(self, token_hash: str, principal: Principal, last_used: datetime | None) -> None:
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[token_hash] = (time.monotonic() + self.ttl, principal, last_used)

    def clear(self) -> None:
        self._items.clear()


principal_cache = PrincipalCache(get_settings().principal_cache_seconds)


# Plain SQL on a pooled connection: this runs on a cache miss of every request path.
LOAD_SQL = """
SELECT k.id AS key_id, k.last_used_at, u.id AS user_id, u.name, u.roles, u.department_id,
       u.service_account, d.code AS department
FROM api_key k JOIN app_user u ON u.id = k.user_id
LEFT JOIN department d ON d.id = u.department_id
WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND u.active
"""
# SKIP LOCKED: when another request is already stamping this key, do not queue on it.
STAMP_SQL = """
UPDATE api_key SET last_used_at = $2
WHERE id = (SELECT id FROM api_key WHERE id = $1 FOR UPDATE SKIP LOCKED)
"""


async def _load_principal(
    connection: Any, token_hash: str
) -> tuple[Principal, datetime | None] | None:
    row = await connection.fetchrow(LOAD_SQL, token_hash)
    if row is None:
        return None
    principal = Principal(
        user_id=row["user_id"],
        api_key_id=row["key_id"],
        name=row["name"],
        roles=frozenset(Role(r) for r in row["roles"]),
        department_id=row["department_id"],
        department=row["department"],
        service_account=row["service_account"],
    )
    return principal, row["last_used_at"]


async def authenticate(database: Database, authorization: str) -> Principal:
    """The principal behind an `Authorization: Bearer` header; 401 when missing, unknown,
    revoked or of an inactive user. Cached per process (`PRINCIPAL_CACHE_SECONDS`); the
    database is asked only on a cache miss and to stamp `last_used_at` once a minute."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized()
    token_hash = hash_token(token)
    cached = principal_cache.get(token_hash)
    now = utcnow()
    if cached is not None and cached[1] is not None and now - cached[1] <= LAST_USED_RESOLUTION:
        return cached[0]
    if token_hash in principal_cache.refreshing:
        stale = principal_cache.stale(token_hash)
        if stale is not None:
            return stale[0]
    principal_cache.refreshing.add(token_hash)
    try:
        async with database.connection() as connection:
            if cached is None:
                cached = await _load_principal(connection, token_hash)
                if cached is None:
                    principal_cache.drop(token_hash)
                    raise Unauthorized()
            principal, last_used = cached
            if last_used is None or now - last_used > LAST_USED_RESOLUTION:
                await connection.execute(STAMP_SQL, principal.api_key_id, now)
                last_used = now
        principal_cache.put(token_hash, principal, last_used)
    finally:
        principal_cache.refreshing.discard(token_hash)
    return principal


async def request_principal(request: Request) -> Principal:
    """The caller (401 when the request carries no valid API key), resolved once per request
    and without the dependency machinery on the hot paths. Routes that never ask (health
    checks) never look a key up."""
    state = request.state
    if state.principal is None:
        if state.auth_error is not None:
            raise state.auth_error
        try:
            state.principal = await authenticate(request.app.state.db, state.authorization)
        except Unauthorized as exc:
            state.auth_error = exc
            raise
    principal: Principal = state.principal
    return principal


async def current_principal(request: Request) -> Principal:
    """Authenticate the bearer API key; 401 when missing, unknown or revoked."""
    return await request_principal(request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that answers 403 unless the caller holds one of `roles`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(*roles):
            raise Forbidden(f"Requires one of the roles: {', '.join(sorted(roles))}")
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
