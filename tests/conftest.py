"""Test fixtures: a real PostgreSQL (embedded, or TEST_DATABASE_URL), migrated once; each test
in a rolled-back transaction with the app's commits turned into savepoints."""

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from asyncpg import Pool
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.core import caches
from app.core.config import Settings
from app.core.db import Database, make_engine, make_pool
from app.core.migrations import upgrade
from app.directory import service as directory
from app.directory.schemas import ApiKeyCreate, DepartmentCreate, UserCreate
from app.events import repository
from app.main import create_app
from app.policy import service as policy_service
from app.rules.vocabulary import Role

DEFAULT_DEPARTMENTS = {
    "CS": "Customer service",
    "IT": "Information technology",
    "OPS": "Operations",
    "SALES": "Sales",
    "LOG": "Logistics",
    "ADM": "Administration",
    "SAF": "Safety",
    "HR": "Human resources",
    "SUP": "Supervision group",
}


def _in_thread(fn: Callable[[], Any]) -> None:
    """Alembic's async env calls asyncio.run(); keep it off the test loop's thread."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # pragma: no cover - re-raised below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """TEST_DATABASE_URL as given, else a fresh database on an embedded PostgreSQL 18."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    from app.core.embedded import create_database, start_embedded

    folder = Path(tempfile.mkdtemp(prefix="cle-test-"))
    server, _ = start_embedded(folder, cleanup="delete")
    try:
        yield create_database(server, "cle_test")
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    _in_thread(lambda: upgrade(database_url))
    return database_url


@pytest.fixture(scope="session")
async def engine(migrated_url: str) -> AsyncGenerator[AsyncEngine]:
    engine = make_engine(migrated_url, pool_size=5, max_overflow=10)
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
        await policy_service.ensure_default_policy(session)
        known = await directory.known_department_codes(session)
        for code, name in DEFAULT_DEPARTMENTS.items():
            if code not in known:
                await directory.create_department(session, DepartmentCreate(code=code, name=name))
        await session.flush()
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
def _clear_process_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches outlive a rolled-back test; start each test cold (`app.core.caches`, issue 11
    item 6). That includes the block of event ref numbers taken ahead, or a test that moves
    `event_ref_seq` gets stale numbers."""
    caches.reset_all()
    monkeypatch.setattr(repository, "ref_numbers", repository.RefNumbers())


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncGenerator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


@pytest.fixture
def session_maker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


def build_app(
    maker: async_sessionmaker[AsyncSession], pool: Pool | None = None, **settings: Any
) -> FastAPI:
    """The app on the given sessions; with `pool`, the hot paths use it as in production,
    without, they join the sessions' connection (`Database.connection`)."""
    app = create_app(Settings(DATABASE_URL="postgresql://unused/unused", **settings))
    app.state.db = Database(maker, pool)
    return app


@pytest.fixture
def app(session_maker: async_sessionmaker[AsyncSession]) -> FastAPI:
    return build_app(session_maker)


@pytest.fixture
async def client(app: FastAPI) -> AsyncGenerator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture(scope="session")
async def pool(migrated_url: str) -> AsyncGenerator[Pool]:
    """A real asyncpg pool for the hot paths of the committing apps."""
    pool = await make_pool(migrated_url, size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def committing_client(engine: AsyncEngine, pool: Pool) -> AsyncGenerator[httpx.AsyncClient]:
    """A client whose requests really commit, for tests that need concurrent connections.
    Such tests clean up what they create."""
    app = build_app(async_sessionmaker(engine, expire_on_commit=False), pool)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@dataclass(frozen=True)
class CommittedKey:
    user_id: uuid.UUID
    key_id: uuid.UUID
    token: str


@pytest.fixture
async def committed_key(engine: AsyncEngine) -> AsyncGenerator[CommittedKey]:
    """A reporter with an API key really committed (for `committing_client` tests); its
    events, key and user are deleted afterwards."""
    from app.core.auth import hash_token, new_token
    from app.core.idempotency_models import IdempotencyRecord
    from app.directory.models import ApiKey, User
    from app.events.models import Event

    made = CommittedKey(uuid.uuid4(), uuid.uuid4(), new_token())
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(User).values(id=made.user_id, name="committed", roles=["reporter"])
        )
        await conn.execute(
            sa.insert(ApiKey).values(
                id=made.key_id,
                user_id=made.user_id,
                name="t",
                prefix=made.token[:12],
                token_hash=hash_token(made.token),
            )
        )
    yield made
    async with engine.begin() as conn:
        await conn.execute(
            sa.delete(IdempotencyRecord).where(IdempotencyRecord.scope == str(made.key_id))
        )
        await conn.execute(sa.delete(Event).where(Event.created_by == made.user_id))
        await conn.execute(sa.delete(ApiKey).where(ApiKey.user_id == made.user_id))
        await conn.execute(sa.delete(User).where(User.id == made.user_id))


@dataclass(frozen=True)
class Actor:
    """A user with an API key; `headers` authenticate as them."""

    id: uuid.UUID
    token: str
    department: str | None
    roles: tuple[Role, ...]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeActor = Callable[..., Awaitable[Actor]]


@pytest.fixture
def make_actor(session_maker: async_sessionmaker[AsyncSession]) -> MakeActor:
    async def make(*roles: Role, department: str | None = None, name: str | None = None) -> Actor:
        async with session_maker() as session:
            user = await directory.create_user(
                session,
                UserCreate(
                    name=name or f"{'/'.join(roles)} {department or ''}".strip(),
                    email=f"{uuid.uuid4().hex[:12]}@example.com",
                    department=department,
                    roles=list(roles),
                ),
            )
            key = await directory.create_api_key(
                session, ApiKeyCreate(name="test", user_id=user.id)
            )
            await session.commit()
        return Actor(id=user.id, token=key.token, department=department, roles=tuple(roles))

    return make


@pytest.fixture
async def admin(make_actor: MakeActor) -> Actor:
    return await make_actor(Role.ADMIN)


@pytest.fixture
async def desk(make_actor: MakeActor) -> Actor:
    """An intake agent of the customer service desk (R4.1)."""
    return await make_actor(Role.INTAKE_AGENT, department="CS")


@pytest.fixture
async def reporter(make_actor: MakeActor) -> Actor:
    return await make_actor(Role.REPORTER, department="SALES")


def intake_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Invoice numbers duplicated",
        "description": "Two customers received invoices with the same number this morning.",
        "channel": "email",
        "reporter": {"name": "Ana Ruiz", "email": "ana@example.com"},
    }
    body.update(overrides)
    return body
