"""Engine, session and declarative base: infrastructure only, no business decisions."""

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, TypeVar

import asyncpg
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

from app.core.config import get_settings
from app.core.unavailable import database_unavailable

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


# JIT off: short OLTP statements only pay its start-up cost.
HOT_SERVER_SETTINGS: dict[str, str] = {"jit": "off", "application_name": "closed-loop-events"}
# Custom plans for the ORM paths and, per transaction, for lists and reports
# (`Database.report_connection`): generic plans of prepared list/report statements are far
# slower on skewed filters (bench/README.md). Intake and get by id keep PostgreSQL's default:
# their plans do not depend on the values, and replanning them on every call costs CPU.
CUSTOM_PLANS = "force_custom_plan"
SERVER_SETTINGS: dict[str, str] = {**HOT_SERVER_SETTINGS, "plan_cache_mode": CUSTOM_PLANS}


def make_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int = 10,
    command_timeout: float | None = None,
    **kw: Any,
) -> AsyncEngine:
    """The SQLAlchemy engine behind the ORM sessions.

    Connecting and waiting for a pooled connection are bounded (`DB_CONNECT_TIMEOUT`,
    `DB_POOL_TIMEOUT`), so an unreachable PostgreSQL fails fast (issue 10 item 3). A statement
    is bounded only when `command_timeout` is given: the service passes it, migrations do not.
    """
    settings = get_settings()
    connect_args: dict[str, Any] = {
        "server_settings": SERVER_SETTINGS,
        "timeout": settings.db_connect_timeout,
    }
    if command_timeout is not None:
        connect_args["command_timeout"] = command_timeout
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_timeout=settings.db_pool_timeout,
        connect_args=connect_args,
        **kw,
    )
    sa.event.listen(engine.sync_engine.pool, "invalidate", _close_at_once)
    return engine


def _close_at_once(_dbapi: Any, record: Any, exception: BaseException | None) -> None:
    """A connection given up on after a connection-class error (a command timeout on a hung
    server, a dropped connection) or by `session.invalidate()` is closed without a goodbye:
    the graceful close SQLAlchemy tries would wait on the hung server for asyncpg's pending
    cancel request, up to another command timeout (review of issue 10, item 8)."""
    if exception is None or database_unavailable(exception) is not None:
        connection = record.driver_connection
        if connection is not None and not connection.is_closed():
            connection.terminate()


async def _keep_session(_connection: object) -> None:
    """Nothing to reset on release. asyncpg still rolls back an open transaction first; its
    default reset (RESET ALL, UNLISTEN, advisory unlock: one more round trip per request) has
    nothing to undo here, as the hot paths set nothing, listen to nothing and only take
    transaction-level locks."""


async def make_pool(url: str, *, size: int) -> "asyncpg.Pool[asyncpg.Record]":
    """A plain asyncpg pool for the hot paths (intake, get by id, lists, KPIs, auth); connecting
    and each statement are bounded (`DB_CONNECT_TIMEOUT`, `DB_COMMAND_TIMEOUT`)."""
    settings = get_settings()
    dsn = "postgresql://" + async_url(url).removeprefix("postgresql+asyncpg://")
    return await asyncpg.create_pool(
        dsn,
        min_size=size,
        max_size=size,
        server_settings=HOT_SERVER_SETTINGS,
        reset=_keep_session,
        timeout=settings.db_connect_timeout,
        command_timeout=settings.db_command_timeout,
    )


def make_session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under a session, inside the session's transaction (for the
    few hot statements that run as plain prepared SQL)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


class FairGate:
    """First come, first served admission to a pool of `slots` connections.

    A released slot is handed straight to the longest waiter, never taken by a newcomer.
    asyncpg's pool wakes a waiter but lets a request arriving meanwhile take the connection,
    and the woken one queues again at the back, which starved some requests under load
    (bench/README.md). With this gate in front the pool never makes anyone wait, and the wait
    is in arrival order."""

    def __init__(self, slots: int, timeout: float | None = None) -> None:
        """`timeout`: the longest wait for a slot (TimeoutError after it); None waits on."""
        self._free = slots
        self._timeout = timeout
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """How many are waiting for a slot (the pool gauges, app.core.metrics)."""
        return len(self._waiters)

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                await waiter
        except (asyncio.CancelledError, TimeoutError):
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class Database:
    """The two ways into PostgreSQL a request has.

    * `session_maker`: ORM sessions; `TransactionMiddleware` gives each request one session and
      one transaction, committed before the response is sent.
    * `connection()`: a plain asyncpg connection for the hot paths, each of which is ONE
      statement and so its own (autocommit) transaction: no BEGIN/COMMIT round trips, no
      session, no greenlet bridge. A request uses one of the two, never both for one change.

    Without a pool (the tests bind sessions to one connection in a rolled-back transaction),
    `connection()` is a session's connection inside a savepoint that is released when the block
    ends and rolled back when it raises, so a hot statement behaves the same: all or nothing.
    """

    def __init__(
        self,
        session_maker: async_sessionmaker[AsyncSession],
        pool: "asyncpg.Pool[asyncpg.Record] | None" = None,
    ) -> None:
        self.session_maker = session_maker
        self.pool = pool
        self.acquire_timeout = get_settings().db_pool_timeout
        self.gate = (
            FairGate(pool.get_max_size(), self.acquire_timeout) if pool is not None else None
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        if self.pool is not None and self.gate is not None:
            await self.gate.acquire()
            try:
                async with self.pool.acquire() as connection:
                    yield connection
            finally:
                self.gate.release()
            return
        async with self.session_maker() as session:
            connection = await driver_connection(session)
            try:
                yield connection
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    @asynccontextmanager
    async def unqueued_connection(self) -> AsyncIterator[Any]:
        """A pooled connection without waiting in line behind the requests (for the service's
        own short upkeep statements, such as taking a block of ref numbers)."""
        if self.pool is None:
            async with self.connection() as connection:
                yield connection
            return
        async with self.pool.acquire(timeout=self.acquire_timeout) as connection:
            yield connection

    @asynccontextmanager
    async def report_connection(self) -> AsyncIterator[Any]:
        """`connection()` for lists and reports: one read-only transaction planned with the
        values at hand (custom plans), whatever the statement cache holds."""
        async with self.connection() as connection, connection.transaction(readonly=True):
            await connection.execute(f"SET LOCAL plan_cache_mode = {CUSTOM_PLANS}")
            # A client that stops reading leaves this transaction idle: PostgreSQL ends it
            # after the stall limit, the stream fails and the connection goes back.
            stall = int(get_settings().export_stall_seconds * 1000)
            await connection.execute(f"SET LOCAL idle_in_transaction_session_timeout = {stall}")
            yield connection

    @asynccontextmanager
    async def export_connection(self) -> AsyncIterator[Any]:
        """A connection of its own for a streamed export (CSV), which is read after the route
        has returned and its request's transaction has ended: one REPEATABLE READ, read-only
        transaction (one snapshot from the first row to the last), planned with the values at
        hand, ended and given back when the stream ends or its client goes away. It waits in
        line like `connection()` and holds its slot for the whole stream."""
        if self.pool is None:
            # The tests' shared connection is already in a transaction: a savepoint in it.
            async with self.connection() as connection, connection.transaction():
                yield connection
            return
        async with (
            self.connection() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            await connection.execute(f"SET LOCAL plan_cache_mode = {CUSTOM_PLANS}")
            # A client that stops reading leaves this transaction idle: PostgreSQL ends it
            # after the stall limit, the stream fails and the connection goes back.
            stall = int(get_settings().export_stall_seconds * 1000)
            await connection.execute(f"SET LOCAL idle_in_transaction_session_timeout = {stall}")
            yield connection


class RequestSession:
    """The request's ORM session, opened on first use (hot paths never open one)."""

    __slots__ = ("_maker", "session")

    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self._maker = maker
        self.session: AsyncSession | None = None

    def get(self) -> AsyncSession:
        if self.session is None:
            self.session = self._maker()
        return self.session


async def get_session(request: Request) -> AsyncSession:
    """The request's session; its transaction is owned by `TransactionMiddleware`."""
    holder: RequestSession = request.state.session
    return holder.get()


SessionDep = Annotated[AsyncSession, Depends(get_session)]


M = TypeVar("M", bound=Base)


async def rows_of(session: AsyncSession, model: type[M], where: Any, *order_by: Any) -> list[M]:
    """Every row of `model` matching `where`, in `order_by` (the children of a parent record,
    in a repository)."""
    return list(await session.scalars(sa.select(model).where(where).order_by(*order_by)))
