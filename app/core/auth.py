"""Bearer API keys: opaque tokens stored only as SHA-256 hashes (product.md section 1)."""

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.db import SessionDep
from app.core.errors import Forbidden, Unauthorized
from app.directory.models import ApiKey, Department, User
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
    """A short-lived in-process cache of token hash -> principal; revocation clears it here."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Principal, datetime | None]] = {}

    def get(self, token_hash: str) -> tuple[Principal, datetime | None] | None:
        hit = self._items.get(token_hash)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put(self, token_hash: str, principal: Principal, last_used: datetime | None) -> None:
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[token_hash] = (time.monotonic() + self.ttl, principal, last_used)

    def clear(self) -> None:
        self._items.clear()


principal_cache = PrincipalCache(get_settings().principal_cache_seconds)


async def _load_principal(
    session: AsyncSession, token_hash: str
) -> tuple[Principal, datetime | None] | None:
    row = (
        await session.execute(
            sa.select(
                ApiKey.id,
                ApiKey.last_used_at,
                User.id,
                User.name,
                User.roles,
                User.department_id,
                User.service_account,
                Department.code,
            )
            .join(User, User.id == ApiKey.user_id)
            .outerjoin(Department, Department.id == User.department_id)
            .where(ApiKey.token_hash == token_hash, ApiKey.revoked_at.is_(None), User.active)
        )
    ).one_or_none()
    if row is None:
        return None
    key_id, last_used, user_id, name, roles, dept_id, service, dept_code = row
    principal = Principal(
        user_id=user_id,
        api_key_id=key_id,
        name=name,
        roles=frozenset(Role(r) for r in roles),
        department_id=dept_id,
        department=dept_code,
        service_account=service,
    )
    return principal, last_used


async def authenticate(session: AsyncSession, authorization: str) -> Principal:
    """The principal behind an `Authorization: Bearer` header; 401 when missing, unknown,
    revoked or of an inactive user."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized()
    token_hash = hash_token(token)
    cached = principal_cache.get(token_hash)
    if cached is None:
        cached = await _load_principal(session, token_hash)
        if cached is None:
            raise Unauthorized()
        principal_cache.put(token_hash, *cached)
    principal, last_used = cached
    now = utcnow()
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:
        principal_cache.put(token_hash, principal, now)
        # SKIP LOCKED: when another request is already stamping this key, do not queue on it.
        locked = (
            sa.select(ApiKey.id)
            .where(ApiKey.id == principal.api_key_id)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        await session.execute(sa.update(ApiKey).where(ApiKey.id == locked).values(last_used_at=now))
    return principal


async def current_principal(request: Request, session: SessionDep) -> Principal:
    """Authenticate the bearer API key; 401 when missing, unknown or revoked."""
    principal = await authenticate(session, request.headers.get("authorization", ""))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that answers 403 unless the caller holds one of `roles`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(*roles):
            raise Forbidden(f"Requires one of the roles: {', '.join(sorted(roles))}")
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
