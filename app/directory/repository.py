"""The directory's SQL: departments, users, API keys, and the caller's lookup (issue 11, item 1).

The service decides; this module only reads and writes rows. The caller's lookup and its
last-used stamp are plain prepared statements on a pooled connection (they run on every miss
of the principal cache); `PRINCIPAL_STORE` is what `create_app` hands to `app.core.auth`.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import KnownKey, Principal, PrincipalStore
from app.core.db import uuid7
from app.core.oidc import Identity
from app.directory.models import ApiKey, Department, User
from app.rules.vocabulary import Role

LOAD_PRINCIPAL_SQL = """
SELECT k.id AS key_id, k.last_used_at, u.id AS user_id, u.name, u.email, u.roles,
       u.department_id, u.service_account, d.code AS department
FROM api_key k JOIN app_user u ON u.id = k.user_id
LEFT JOIN department d ON d.id = u.department_id
WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND u.active
"""
# SKIP LOCKED: when another request is already stamping this key, do not queue on it.
STAMP_SQL = """
UPDATE api_key SET last_used_at = $2
WHERE id = (SELECT id FROM api_key WHERE id = $1 FOR UPDATE SKIP LOCKED)
"""


async def load_principal(connection: Any, token_hash: str) -> KnownKey | None:
    """The active user behind an unrevoked key, or None."""
    row = await connection.fetchrow(LOAD_PRINCIPAL_SQL, token_hash)
    if row is None:
        return None
    return KnownKey(_principal(row, row["key_id"]), row["last_used_at"])


def _principal(row: Any, api_key_id: uuid.UUID | None) -> Principal:
    return Principal(
        user_id=row["user_id"],
        api_key_id=api_key_id,
        name=row["name"],
        roles=frozenset(Role(r) for r in row["roles"]),
        department_id=row["department_id"],
        department=row["department"],
        service_account=row["service_account"],
        email=row["email"],
    )


async def stamp_last_used(connection: Any, api_key_id: uuid.UUID, at: datetime) -> None:
    await connection.execute(STAMP_SQL, api_key_id, at)


# ---- people signed in with OIDC (issue 16 item 1) -----------------------------------------

_PERSON_COLUMNS = """u.id AS user_id, u.name, u.email, u.roles, u.department_id,
       u.service_account, u.active, d.code AS department"""
PERSON_BY_SUBJECT_SQL = f"""
SELECT {_PERSON_COLUMNS}
FROM app_user u LEFT JOIN department d ON d.id = u.department_id
WHERE u.oidc_subject = $1
"""
# The expression of the unique index `uq_app_user_email_lower`, so it is used.
PERSON_BY_EMAIL_SQL = f"""
SELECT {_PERSON_COLUMNS}
FROM app_user u LEFT JOIN department d ON d.id = u.department_id
WHERE lower(u.email) = lower($1) AND (u.oidc_subject IS NULL OR u.oidc_subject = $2)
"""
# A new person as a reporter. ON CONFLICT DO NOTHING: a concurrent first sign-in of the same
# person (the subject), or an e-mail address another user already has, inserts nothing.
PROVISION_SQL = """
INSERT INTO app_user (id, name, email, roles, oidc_subject, service_account, active,
                      created_at, updated_at)
VALUES ($1, $2, $3, ARRAY['reporter']::varchar[], $4, false, true, now(), now())
ON CONFLICT DO NOTHING
RETURNING id AS user_id, name, email, roles, NULL::uuid AS department_id, service_account,
          active, NULL::varchar AS department
"""


async def identify_person(
    connection: Any, identity: Identity, claim: str, provision: bool
) -> Principal | None:
    """The active user an OIDC identity names: by `oidc_subject` when `claim` is `sub`, else
    by the e-mail address in `claim` (only an `email` claim the provider says is verified
    counts, and never for a user bound to another subject); unknown and
    `provision`: added as a reporter (product.md section 1: any employee)."""
    if claim == "sub":
        row = await connection.fetchrow(PERSON_BY_SUBJECT_SQL, identity.subject)
    else:
        email = identity.verified_email if claim == "email" else identity.claim(claim)
        # A user bound to a subject is that subject's only: another account of the provider
        # with the same address does not sign in as them.
        row = (
            None
            if email is None
            else await connection.fetchrow(PERSON_BY_EMAIL_SQL, email, identity.subject)
        )
    if row is None and provision:
        row = await _provision(connection, identity)
    if row is None or not row["active"]:
        return None
    return _principal(row, None)


async def _provision(connection: Any, identity: Identity) -> Any:
    """Add the person as a reporter (without the e-mail address if another user has it)."""
    name = (
        identity.claim("name")
        or identity.claim("preferred_username")
        or identity.verified_email
        or identity.subject
    )[:200]
    email = identity.verified_email
    email = email.lower() if email and len(email) <= 320 else None
    for address in dict.fromkeys((email, None)):
        row = await connection.fetchrow(PROVISION_SQL, uuid7(), name, address, identity.subject)
        if row is not None:
            return row
        # Nothing inserted: the subject is taken (a concurrent first sign-in), or the e-mail.
        row = await connection.fetchrow(PERSON_BY_SUBJECT_SQL, identity.subject)
        if row is not None:
            return row
    return None


PRINCIPAL_STORE = PrincipalStore(
    load=load_principal, stamp=stamp_last_used, identify=identify_person
)


# ---- writing -------------------------------------------------------------------------------


async def flush_unique(session: AsyncSession) -> bool:
    """Write pending changes; False (and nothing written) on a unique violation."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        return False
    return True


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def reload(session: AsyncSession, row: object) -> None:
    """Read back what the database set (defaults, timestamps)."""
    await session.refresh(row)


def add(session: AsyncSession, row: object) -> None:
    session.add(row)


# ---- departments ---------------------------------------------------------------------------


async def department_by_code(session: AsyncSession, code: str) -> Department | None:
    return await session.scalar(sa.select(Department).where(Department.code == code))


async def department_codes(session: AsyncSession) -> set[str]:
    return set((await session.scalars(sa.select(Department.code))).all())


async def department_code_taken(session: AsyncSession, code: str) -> bool:
    found = await session.scalar(sa.select(Department.id).where(Department.code == code).limit(1))
    return found is not None


async def departments(session: AsyncSession) -> Sequence[Department]:
    return (await session.scalars(sa.select(Department).order_by(Department.code))).all()


# ---- users ---------------------------------------------------------------------------------


async def user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def user_with_department(
    session: AsyncSession, user_id: uuid.UUID
) -> tuple[User, str | None] | None:
    row = (
        await session.execute(
            sa.select(User, Department.code)
            .outerjoin(Department, Department.id == User.department_id)
            .where(User.id == user_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def users_with_department(
    session: AsyncSession, department: str | None = None
) -> list[tuple[User, str | None]]:
    query = (
        sa.select(User, Department.code)
        .outerjoin(Department, Department.id == User.department_id)
        .order_by(User.id)
    )
    if department is not None:
        query = query.where(Department.code == department)
    return [(u, c) for u, c in (await session.execute(query)).all()]


async def email_taken(
    session: AsyncSession, email: str, other_than: uuid.UUID | None = None
) -> bool:
    """Another user has this e-mail address (case-insensitively)."""
    # The expression of the unique index `uq_app_user_email_lower`, so it is used.
    query = sa.select(User.id).where(sa.func.lower(User.email) == sa.func.lower(email))
    if other_than is not None:
        query = query.where(User.id != other_than)
    return await session.scalar(query.limit(1)) is not None


async def subject_taken(
    session: AsyncSession, subject: str, other_than: uuid.UUID | None = None
) -> bool:
    """Another user has this OIDC subject."""
    query = sa.select(User.id).where(User.oidc_subject == subject)
    if other_than is not None:
        query = query.where(User.id != other_than)
    return await session.scalar(query.limit(1)) is not None


async def any_user(session: AsyncSession) -> bool:
    return bool(await session.scalar(sa.select(sa.func.count()).select_from(User)))


async def lock_admins_and(session: AsyncSession, user_id: uuid.UUID) -> set[uuid.UUID]:
    """The active admins, with the rows of every one of them and of `user_id` locked in id
    order until the transaction ends. FOR NO KEY UPDATE, so creating an API key for one of
    them does not wait."""
    admin = Role.ADMIN.value
    rows = (
        await session.execute(
            sa.select(User.id, User.active, User.roles)
            .where(sa.or_(User.id == user_id, User.active & User.roles.contains([admin])))
            .order_by(User.id)
            .with_for_update(key_share=True)
        )
    ).all()
    return {row.id for row in rows if row.active and admin in row.roles}


# ---- API keys ------------------------------------------------------------------------------


async def admin_keys_other_than(session: AsyncSession, key_id: uuid.UUID) -> int:
    """How many API keys besides `key_id` let an active admin in (not revoked)."""
    admin = Role.ADMIN.value
    return int(
        await session.scalar(
            sa.select(sa.func.count())
            .select_from(ApiKey)
            .join(User, User.id == ApiKey.user_id)
            .where(
                ApiKey.id != key_id,
                ApiKey.revoked_at.is_(None),
                User.active,
                User.roles.contains([admin]),
            )
        )
        or 0
    )


async def api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def api_keys(session: AsyncSession, user_id: uuid.UUID | None = None) -> Sequence[ApiKey]:
    query = sa.select(ApiKey).order_by(ApiKey.id)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return (await session.scalars(query)).all()
