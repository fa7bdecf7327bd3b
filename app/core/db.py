"""Engine, session and declarative base: infrastructure only, no business decisions."""

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import sqlalchemy as sa
import uuid_utils
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def uuid7() -> uuid.UUID:
    """A time-ordered UUIDv7 made in Python (PostgreSQL 14 has no uuidv7())."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: sa.DateTime(timezone=True)}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(
        server_default=sa.func.now(), onupdate=sa.func.now()
    )


def str_enum(enum: type[StrEnum], *, column: str) -> sa.Enum:
    """An enum stored as VARCHAR with a named CHECK constraint (distinct per column)."""
    return sa.Enum(
        enum,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum),
        name=column,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def async_url(url: str) -> str:
    """Accept plain postgresql:// URLs and select the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def make_engine(url: str, *, pool_size: int = 20, max_overflow: int = 10, **kw: Any) -> AsyncEngine:
    """An asyncpg engine; JIT off because short OLTP statements only pay its start-up cost."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        # Custom plans always: generic plans of prepared list/report statements were measured
        # 10x slower on skewed filters (bench/README.md); planning short OLTP SQL is cheap.
        connect_args={
            "server_settings": {
                "jit": "off",
                "plan_cache_mode": "force_custom_plan",
                "application_name": "closed-loop-events",
            }
        },
        **kw,
    )


def make_session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under a session, inside the session's transaction (for the
    few hot statements that run as plain prepared SQL)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def get_session(request: Request) -> AsyncGenerator[AsyncSession]:
    """The request's session; its transaction is owned by `TransactionMiddleware`."""
    session: AsyncSession = request.state.session
    yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
