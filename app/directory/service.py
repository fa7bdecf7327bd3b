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
from app.core.errors import Conflict, NotFound, Unprocessable
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
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what} already exists") from exc


async def _check_user(session: AsyncSession, user_id: uuid.UUID | None) -> None:
    if user_id is not None and await session.get(User, user_id) is None:
        raise Unprocessable(
            f"No user {user_id}", errors=[{"field": "head_id", "message": "unknown user"}]
        )


async def create_department(session: AsyncSession, data: DepartmentCreate) -> DepartmentRead:
    await _check_user(session, data.head_id)
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
    changes = data.model_dump(exclude_unset=True)
    if "head_id" in changes:
        await _check_user(session, changes["head_id"])
    invalidate_department_codes()
    for field, value in changes.items():
        if value is None and field in ("name", "active"):
            raise Unprocessable(f"{field} cannot be null")
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
    user = User(
        name=data.name,
        email=str(data.email).lower() if data.email else None,
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
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}")
    changes = data.model_dump(exclude_unset=True)
    if "department" in changes:
        user.department_id = await _department_id(session, changes.pop("department"))
    if "roles" in changes:
        if not changes["roles"]:
            raise Unprocessable("roles cannot be empty")
        user.roles = sorted({Role(r).value for r in changes.pop("roles")})
    if "email" in changes:
        email = changes.pop("email")
        user.email = str(email).lower() if email else None
    for field, value in changes.items():
        if value is None:
            raise Unprocessable(f"{field} cannot be null")
        setattr(user, field, value)
    await _flush_unique(session, f"A user with email {user.email}")
    principal_cache.clear()
    return await get_user(session, user_id)


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
