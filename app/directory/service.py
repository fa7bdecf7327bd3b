"""Directory service: departments, users, API keys (product.md section 1). Never commits."""

import time
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal, hash_token, new_token, principal_cache
from app.core.clock import utcnow
from app.core.db import Database
from app.core.errors import Conflict, LastAdmin, NotFound, Unprocessable
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
    department = await session.scalar(sa.select(Department).where(Department.code == code))
    if department is None:
        raise NotFound(f"No department with code {code}")
    return department


async def known_department_codes(session: AsyncSession) -> set[str]:
    return set((await session.scalars(sa.select(Department.code))).all())


async def _flush_unique(session: AsyncSession, what: str) -> None:
    """Flush; a unique violation is a 409. Only a race gets here with a duplicate: the value
    is checked first (`_refuse_taken`), so PostgreSQL does not log the violation's DETAIL,
    which names the value (an e-mail address), on the normal path (issue 10 item 10)."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what} already exists") from exc


async def _refuse_taken(session: AsyncSession, taken: sa.Select[uuid.UUID], what: str) -> None:
    """409 when `taken` finds a row: the unique check made before writing (issue 10 item 10).
    Run it before changing any mapped object, or autoflush would write the change first."""
    if await session.scalar(taken.limit(1)) is not None:
        raise Conflict(f"{what} already exists")


def _email_taken(email: str, other_than: uuid.UUID | None = None) -> sa.Select[uuid.UUID]:
    # The expression of the unique index `uq_app_user_email_lower`, so it is used.
    query = sa.select(User.id).where(sa.func.lower(User.email) == sa.func.lower(email))
    return query if other_than is None else query.where(User.id != other_than)


async def _check_user(session: AsyncSession, user_id: uuid.UUID | None) -> None:
    if user_id is not None and await session.get(User, user_id) is None:
        raise Unprocessable(
            f"No user {user_id}", errors=[{"field": "head_id", "message": "unknown user"}]
        )


async def create_department(session: AsyncSession, data: DepartmentCreate) -> DepartmentRead:
    await _check_user(session, data.head_id)
    await _refuse_taken(
        session,
        sa.select(Department.id).where(Department.code == data.code),
        f"Department {data.code}",
    )
    department = Department(code=data.code, name=data.name, kind=data.kind, head_id=data.head_id)
    session.add(department)
    await _flush_unique(session, f"Department {data.code}")
    invalidate_department_codes()
    await session.refresh(department)
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
    await session.flush()
    await session.refresh(department)
    return DepartmentRead.model_validate(department)


async def list_departments(session: AsyncSession) -> list[DepartmentRead]:
    rows = await session.scalars(sa.select(Department).order_by(Department.code))
    return [DepartmentRead.model_validate(d) for d in rows]


def _user_read(user: User, department_code: str | None) -> UserRead:
    return UserRead(
        id=user.id,
        name=user.name,
        email=user.email,
        department=department_code,
        roles=[Role(r) for r in user.roles],
        service_account=user.service_account,
        active=user.active,
    )


async def _department_id(session: AsyncSession, code: str | None) -> uuid.UUID | None:
    if code is None:
        return None
    department = await session.scalar(sa.select(Department).where(Department.code == code))
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
        await _refuse_taken(session, _email_taken(email), f"A user with email {data.email}")
    user = User(
        name=data.name,
        email=email,
        department_id=await _department_id(session, data.department),
        roles=sorted({r.value for r in data.roles}),
        service_account=service_account,
    )
    session.add(user)
    await _flush_unique(session, f"A user with email {data.email}")
    await session.refresh(user)
    return _user_read(user, data.department)


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> UserRead:
    row = (
        await session.execute(
            sa.select(User, Department.code)
            .outerjoin(Department, Department.id == User.department_id)
            .where(User.id == user_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"No user {user_id}")
    return _user_read(row[0], row[1])


async def update_user(session: AsyncSession, user_id: uuid.UUID, data: UserUpdate) -> UserRead:
    """Change what the request sends (`name`, `roles`, `active` are never null); refuses to
    remove the last active admin (issue 10 item 11)."""
    user = await session.get(User, user_id)
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
        await _refuse_taken(
            session, _email_taken(email, other_than=user_id), f"A user with email {email}"
        )
    if "department" in changes:
        changes["department_id"] = await _department_id(session, changes.pop("department"))
    for field, value in changes.items():
        setattr(user, field, value)
    await _flush_unique(session, f"A user with email {user.email}")
    principal_cache.clear()
    return await get_user(session, user_id)


ADMIN = Role.ADMIN.value


async def _keep_an_admin(
    session: AsyncSession, user_id: uuid.UUID, *, roles: list[str] | None, active: bool | None
) -> None:
    """409 `last-admin` when the change (new `roles`, new `active`; None: unchanged) would leave
    no active admin (issue 10 item 11). Locks the rows of every active admin and of the user,
    in id order, until the transaction ends: concurrent changes of admins take turns, and each
    decides on the rows as the previous one committed them (two admins demoting each other at
    once leave one). FOR NO KEY UPDATE, so creating an API key for one of them does not wait."""
    rows = (
        await session.execute(
            sa.select(User.id, User.active, User.roles)
            .where(sa.or_(User.id == user_id, User.active & User.roles.contains([ADMIN])))
            .order_by(User.id)
            .with_for_update(key_share=True)
        )
    ).all()
    admins = {row.id for row in rows if row.active and ADMIN in row.roles}
    if user_id not in admins:
        return
    stays_admin = (active is not False) and (roles is None or ADMIN in roles)
    if not stays_admin and admins == {user_id}:
        raise LastAdmin(
            "This is the last active admin: make another user an active admin before removing"
            " this one's admin role or deactivating them"
        )


async def list_users(session: AsyncSession, department: str | None = None) -> list[UserRead]:
    query = (
        sa.select(User, Department.code)
        .outerjoin(Department, Department.id == User.department_id)
        .order_by(User.id)
    )
    if department is not None:
        query = query.where(Department.code == department)
    return [_user_read(u, c) for u, c in (await session.execute(query)).all()]


async def create_api_key(session: AsyncSession, data: ApiKeyCreate) -> ApiKeyCreated:
    """Make a key; the token is returned here only, and only its hash is stored."""
    if await session.get(User, data.user_id) is None:
        raise Unprocessable(
            f"No user {data.user_id}", errors=[{"field": "user_id", "message": "unknown user"}]
        )
    token = new_token()
    key = ApiKey(
        user_id=data.user_id, name=data.name, prefix=token[:12], token_hash=hash_token(token)
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), token=token)


async def list_api_keys(
    session: AsyncSession, user_id: uuid.UUID | None = None
) -> Sequence[ApiKeyRead]:
    query = sa.select(ApiKey).order_by(ApiKey.id)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return [ApiKeyRead.model_validate(k) for k in await session.scalars(query)]


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKeyRead:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    principal_cache.clear()
    return ApiKeyRead.model_validate(key)


async def me(session: AsyncSession, principal: Principal) -> UserRead:
    return await get_user(session, principal.user_id)


CODES_TTL = 5.0


class _CodeCache:
    codes: frozenset[str] | None = None
    loaded_at: float = 0.0
    refreshing: bool = False


async def department_codes_cached(session: AsyncSession, ttl: float = CODES_TTL) -> frozenset[str]:
    """Known department codes, cached a few seconds per process (hot path: intake)."""
    if _CodeCache.codes is None or time.monotonic() - _CodeCache.loaded_at > ttl:
        _CodeCache.codes = frozenset(await known_department_codes(session))
        _CodeCache.loaded_at = time.monotonic()
    return _CodeCache.codes


async def department_codes_in(database: Database) -> frozenset[str]:
    """`department_codes_cached` for the hot paths: a session only when the cache is cold."""
    if _CodeCache.codes is not None and (
        time.monotonic() - _CodeCache.loaded_at <= CODES_TTL or _CodeCache.refreshing
    ):
        return _CodeCache.codes  # fresh, or being refreshed by another request
    _CodeCache.refreshing = True
    try:
        async with database.session_maker() as session:
            return await department_codes_cached(session)
    finally:
        _CodeCache.refreshing = False


def invalidate_department_codes() -> None:
    _CodeCache.codes = None
