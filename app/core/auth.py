"""Bearer API keys: opaque tokens stored only as SHA-256 hashes (product.md section 1); and
people's OIDC bearer tokens beside them (issue 16 item 1, `app.core.oidc`).

The two are told apart by shape before anything else: an API key starts with `cle_`, a JWT
has three dot-separated parts. The API key path is unchanged by OIDC (not one more step)."""

import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request

from app.core.caches import RefreshingCache, cache
from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.db import Database
from app.core.errors import Forbidden, Unauthorized
from app.core.oidc import Identity, OidcVerifier, looks_like_jwt
from app.rules.vocabulary import Role

TOKEN_PREFIX = "cle_"
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: the user behind the API key or OIDC token, with roles and department.
    `service_account`: an integration or script, not a person (product.md section 1)."""

    user_id: uuid.UUID
    api_key_id: uuid.UUID | None  # None: signed in with an OIDC token
    name: str
    roles: frozenset[Role]
    department_id: uuid.UUID | None
    department: str | None
    service_account: bool
    email: str | None = None  # the directory's, for a person who reports for themselves

    def has(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KnownKey:
    """A caller as the store knows it, with the key's last-used stamp."""

    principal: Principal
    last_used: datetime | None


@dataclass(frozen=True, slots=True)
class PrincipalStore:
    """Where callers are looked up: the directory's repository, handed over by `create_app`
    (`app.state.principals`, and the transaction middleware for keyed POSTs).

    Injected rather than written here: the api_key, app_user and department tables are the
    directory's (its models, its migrations), so the SQL over them has one home, the
    directory's repository, while core, below every domain, says only what it needs. Both run
    as plain prepared statements on a pooled connection: the lookup runs on every cache miss."""

    load: Callable[[Any, str], Awaitable[KnownKey | None]]
    stamp: Callable[[Any, uuid.UUID, datetime], Awaitable[None]]
    # The person an OIDC identity names (`OidcVerifier.user_claim`), provisioning them as a
    # reporter when asked and unknown; None: no such active user.
    identify: Callable[[Any, Identity, str, bool], Awaitable[Principal | None]] | None = None


# token hash -> the caller (product.md section 1: a key is looked up at most every
# PRINCIPAL_CACHE_SECONDS per process; revocation and role changes invalidate it here).
principal_cache: RefreshingCache[str, KnownKey] = cache(
    "principals", ttl=get_settings().principal_cache_seconds
)


# OIDC token hash -> the caller and the token's expiry (epoch seconds), for as long as the
# API keys' callers are kept and never past the token's expiry.
token_cache: RefreshingCache[str, tuple[Principal, float]] = cache(
    "oidc_principals", ttl=get_settings().principal_cache_seconds
)


def forget_principals() -> None:
    """A key was revoked or a user changed: this process looks every caller up again."""
    principal_cache.invalidate()
    token_cache.invalidate()


def _stamp_due(known: KnownKey, now: datetime) -> bool:
    return known.last_used is None or now - known.last_used > LAST_USED_RESOLUTION


async def _refresh(
    database: Database,
    store: PrincipalStore,
    token_hash: str,
    current: KnownKey | None,
    now: datetime,
) -> KnownKey | None:
    """Look the key up (unless `current` is still live) and stamp its use when due."""
    async with database.connection() as connection:
        known = current or await store.load(connection, token_hash)
        if known is None or not _stamp_due(known, now):
            return known
        if known.principal.api_key_id is not None:
            await store.stamp(connection, known.principal.api_key_id, now)
    return KnownKey(known.principal, now)


async def authenticate(
    database: Database,
    store: PrincipalStore,
    authorization: str,
    oidc: OidcVerifier | None = None,
) -> Principal:
    """The principal behind an `Authorization: Bearer` header; 401 when missing, unknown,
    revoked or of an inactive user. Cached per process (`PRINCIPAL_CACHE_SECONDS`); the
    database is asked only on a cache miss and to stamp `last_used_at` once a minute, by one
    request per key while the others go on with the caller they have. With `oidc`, a JWT
    instead of an API key is a person's token (`token_principal`)."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        if oidc is not None and scheme.lower() == "bearer" and looks_like_jwt(token):
            return await token_principal(database, store, oidc, token)
        raise Unauthorized()
    token_hash = hash_token(token)
    now = utcnow()
    known = principal_cache.fresh(token_hash)  # the common case, without closures
    if known is None or _stamp_due(known, now):
        known = await principal_cache.get(
            token_hash,
            lambda current: _refresh(database, store, token_hash, current, now),
            due=lambda entry: _stamp_due(entry, now),
        )
    if known is None:
        raise Unauthorized()
    return known.principal


async def token_principal(
    database: Database, store: PrincipalStore, oidc: OidcVerifier, token: str
) -> Principal:
    """The person an OIDC token names (issue 16 item 1): verified (`OidcVerifier.verify`),
    then found in the directory by `sub` or the configured e-mail claim; 401 otherwise."""
    token_hash = hash_token(token)
    cached = token_cache.fresh(token_hash)
    if cached is not None and cached[1] > time.time():
        return cached[0]
    identity = await oidc.verify(token)
    if store.identify is None:
        raise Unauthorized()
    async with database.connection() as connection:
        principal = await store.identify(connection, identity, oidc.user_claim, oidc.auto_provision)
    if principal is None:
        raise Unauthorized("The token's user is not in the directory or not active")
    token_cache.put(token_hash, (principal, identity.expires_at))
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
            app_state = request.app.state
            state.principal = await authenticate(
                app_state.db, app_state.principals, state.authorization, app_state.oidc
            )
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
