"""Directory service: departments, users, API keys (product.md section 1). Never commits;
its SQL is in `app.directory.repository`."""

import uuid
from collections.abc import Sequence
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal, forget_principals, hash_token, new_token
from app.core.caches import RefreshingCache, cache
from app.core.clock import utcnow
from app.core.db import Database
from app.core.errors import Conflict, LastAdmin, NotFound, Unprocessable
from app.directory import repository
from app.directory.models import ApiKey, Department, User
from app.directory.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.rules.vocabulary import Role


async def department_by_code(session: AsyncSession, code: str) -> Department:
    department = await repository.department_by_code(session, code)
    if department is None:
        raise NotFound(f"No department with code {code}")
    return department


async def known_department_codes(session: AsyncSession) -> set[str]:
    return await repository.department_codes(session)


async def _flush_unique(session: AsyncSession, what: str) -> None:
    """Flush; a unique violation is a 409. Only a race gets here with a duplicate: the value
    is checked first (`_refuse_taken`), so PostgreSQL does not log the violation's DETAIL,
    which names the value (an e-mail address), on the normal path (issue 10 item 10)."""
    if not await repository.flush_unique(session):
        raise Conflict(f"{what} already exists")


def _refuse_taken(taken: bool, what: str) -> None:
    """409 when the value is taken: the unique check made before writing (issue 10 item 10).
    Check before changing any mapped object, or autoflush would write the change first."""
    if taken:
        raise Conflict(f"{what} already exists")


async def _check_user(session: AsyncSession, user_id: uuid.UUID | None) -> None:
    if user_id is not None and await repository.user(session, user_id) is None:
        raise Unprocessable(
            f"No user {user_id}", errors=[{"field": "head_id", "message": "unknown user"}]
        )


async def create_department(session: AsyncSession, data: DepartmentCreate) -> DepartmentRead:
    await _check_user(session, data.head_id)
    _refuse_taken(
        await repository.department_code_taken(session, data.code), f"Department {data.code}"
    )
    department = Department(code=data.code, name=data.name, kind=data.kind, head_id=data.head_id)
    repository.add(session, department)
    await _flush_unique(session, f"Department {data.code}")
    invalidate_department_codes()
    await repository.reload(session, department)
    return DepartmentRead.model_validate(department)


async def update_department(
    session: AsyncSession, code: str, data: DepartmentUpdate
) -> DepartmentRead:
    department = await department_by_code(session, code)
    changes = data.model_dump(exclude_unset=True)  # `name` and `active` are never null
    if "head_id" in changes:
        await _check_user(session, changes["head_id"])
    invalidate_department_codes()
    for field, value in changes.items():
        setattr(department, field, value)
    await repository.flush(session)
    await repository.reload(session, department)
    return DepartmentRead.model_validate(department)


async def list_departments(session: AsyncSession) -> list[DepartmentRead]:
    return [DepartmentRead.model_validate(d) for d in await repository.departments(session)]


def _user_read(user: User, department_code: str | None) -> UserRead:
    return UserRead(
        id=user.id,
        name=user.name,
        email=user.email,
        department=department_code,
        roles=[Role(r) for r in user.roles],
        service_account=user.service_account,
        active=user.active,
        oidc_subject=user.oidc_subject,
    )


async def _department_id(session: AsyncSession, code: str | None) -> uuid.UUID | None:
    if code is None:
        return None
    department = await repository.department_by_code(session, code)
    if department is None:
        raise Unprocessable(
            f"No department with code {code}",
            errors=[{"field": "department", "message": "unknown department code"}],
        )
    return department.id


async def create_user(
    session: AsyncSession, data: UserCreate, *, service_account: bool = False
) -> UserRead:
    email = data.email.lower() if data.email else None
    if email is not None:
        _refuse_taken(
            await repository.email_taken(session, email), f"A user with email {data.email}"
        )
    if data.oidc_subject is not None:
        _refuse_taken(
            await repository.subject_taken(session, data.oidc_subject),
            "A user with this oidc_subject",
        )
    user = User(
        name=data.name,
        email=email,
        department_id=await _department_id(session, data.department),
        roles=sorted({r.value for r in data.roles}),
        service_account=service_account,
        oidc_subject=data.oidc_subject,
    )
    repository.add(session, user)
    await _flush_unique(session, f"A user with email {data.email}")
    await repository.reload(session, user)
    return _user_read(user, data.department)


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> UserRead:
    row = await repository.user_with_department(session, user_id)
    if row is None:
        raise NotFound(f"No user {user_id}")
    return _user_read(row[0], row[1])


async def update_user(session: AsyncSession, user_id: uuid.UUID, data: UserUpdate) -> UserRead:
    """Change what the request sends (`name`, `roles`, `active` are never null); refuses to
    remove the last active admin (issue 10 item 11)."""
    user = await repository.user(session, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}")
    changes = data.model_dump(exclude_unset=True)
    # Every read before the first change: a query autoflushes changes already made to `user`.
    if "roles" in changes:
        changes["roles"] = sorted({Role(r).value for r in changes["roles"]})
    if "roles" in changes or "active" in changes:
        await _keep_an_admin(
            session, user_id, roles=changes.get("roles"), active=changes.get("active")
        )
    if changes.get("email"):
        changes["email"] = email = changes["email"].lower()
        _refuse_taken(
            await repository.email_taken(session, email, other_than=user_id),
            f"A user with email {email}",
        )
    if changes.get("oidc_subject"):
        _refuse_taken(
            await repository.subject_taken(session, changes["oidc_subject"], other_than=user_id),
            "A user with this oidc_subject",
        )
    if "department" in changes:
        changes["department_id"] = await _department_id(session, changes.pop("department"))
    for field, value in changes.items():
        setattr(user, field, value)
    await _flush_unique(session, f"A user with email {user.email}")
    forget_principals()
    return await get_user(session, user_id)


ADMIN = Role.ADMIN.value


async def _keep_an_admin(
    session: AsyncSession, user_id: uuid.UUID, *, roles: list[str] | None, active: bool | None
) -> None:
    """409 `last-admin` when the change (new `roles`, new `active`; None: unchanged) would leave
    no active admin (issue 10 item 11). Locks the rows of every active admin and of the user,
    in id order, until the transaction ends: concurrent changes of admins take turns, and each
    decides on the rows as the previous one committed them (two admins demoting each other at
    once leave one)."""
    admins = await repository.lock_admins_and(session, user_id)
    if user_id not in admins:
        return
    stays_admin = (active is not False) and (roles is None or ADMIN in roles)
    if not stays_admin and admins == {user_id}:
        raise LastAdmin(
            "This is the last active admin: make another user an active admin before removing"
            " this one's admin role or deactivating them"
        )


async def _keep_an_admin_key(session: AsyncSession, key: ApiKey) -> None:
    """409 `last-admin` when revoking `key` would leave no active admin with a key to sign
    in with, so nobody could administer the service through the API (review of issue 10,
    item 11). Locks the admins' rows as `_keep_an_admin` does, so that concurrent
    revocations and removals of admins take turns and each sees the previous one."""
    admins = await repository.lock_admins_and(session, key.user_id)
    if key.user_id in admins and not await repository.admin_keys_other_than(session, key.id):
        raise LastAdmin(
            "This is the last API key of an active admin: issue another admin key before"
            " revoking this one"
        )


async def list_users(session: AsyncSession, department: str | None = None) -> list[UserRead]:
    rows = await repository.users_with_department(session, department)
    return [_user_read(u, c) for u, c in rows]


async def create_api_key(session: AsyncSession, data: ApiKeyCreate) -> ApiKeyCreated:
    """Make a key; the token is returned here only, and only its hash is stored."""
    if await repository.user(session, data.user_id) is None:
        raise Unprocessable(
            f"No user {data.user_id}", errors=[{"field": "user_id", "message": "unknown user"}]
        )
    token = new_token()
    key = ApiKey(
        user_id=data.user_id, name=data.name, prefix=token[:12], token_hash=hash_token(token)
    )
    repository.add(session, key)
    await repository.flush(session)
    await repository.reload(session, key)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), token=token)


async def list_api_keys(
    session: AsyncSession, user_id: uuid.UUID | None = None
) -> Sequence[ApiKeyRead]:
    return [ApiKeyRead.model_validate(k) for k in await repository.api_keys(session, user_id)]


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKeyRead:
    """Revoke a key; refuses the last key that lets an active admin in (409 `last-admin`)."""
    key = await repository.api_key(session, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}")
    if key.revoked_at is None:
        await _keep_an_admin_key(session, key)
        key.revoked_at = utcnow()
        await repository.flush(session)
    forget_principals()
    return ApiKeyRead.model_validate(key)


async def me(session: AsyncSession, principal: Principal) -> UserRead:
    return await get_user(session, principal.user_id)


CODES_TTL: Final = 5.0
_ALL_CODES: Final = "all"
# The known department codes, for intake's check of `involved_departments` (a hot path).
_codes: RefreshingCache[str, frozenset[str]] = cache("department_codes", ttl=CODES_TTL, maxsize=1)


async def _codes_of(session: AsyncSession) -> frozenset[str]:
    return frozenset(await repository.department_codes(session))


async def department_codes_cached(session: AsyncSession) -> frozenset[str]:
    """Known department codes, cached a few seconds per process (loaded with `session`)."""
    codes = _codes.fresh(_ALL_CODES)
    if codes is None:
        codes = await _codes.get(_ALL_CODES, lambda _: _codes_of(session))
    return codes if codes is not None else frozenset()


async def department_codes_in(database: Database) -> frozenset[str]:
    """`department_codes_cached` for the hot paths: a session only when the cache is due, by
    one request while the others go on with the codes they have."""
    codes = _codes.fresh(_ALL_CODES)
    if codes is None:

        async def load(_: frozenset[str] | None) -> frozenset[str]:
            async with database.session_maker() as session:
                return await _codes_of(session)

        codes = await _codes.get(_ALL_CODES, load)
    return codes if codes is not None else frozenset()


def invalidate_department_codes() -> None:
    _codes.invalidate()


async def any_user(session: AsyncSession) -> bool:
    """The directory has at least one user (`serve` creates the first admin otherwise)."""
    return await repository.any_user(session)
