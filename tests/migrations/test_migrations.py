"""Migrations are the only way the schema changes: they run forward, back and forward again,
and `alembic check` finds no drift between the models and the migrated schema."""

import asyncio
import io
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from app.core.db import make_engine
from app.core.migrations import alembic_config, downgrade, upgrade
from tests.conftest import _in_thread


async def _admin(url: str, statement: str) -> None:
    engine = make_engine(url, pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def fresh_url(database_url: str) -> Iterator[str]:
    """An empty database of its own on the same server."""
    name = f"cle_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _in_thread(lambda: asyncio.run(_admin(database_url, f'CREATE DATABASE "{name}"')))
    base, _, query = database_url.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    yield url
    _in_thread(lambda: asyncio.run(_admin(database_url, f'DROP DATABASE "{name}" WITH (FORCE)')))


async def _tables(url: str) -> set[str]:
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return {r[0] for r in rows}
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    _in_thread(lambda: upgrade(fresh_url))
    tables: set[str] = set()
    _in_thread(lambda: tables.update(asyncio.run(_tables(fresh_url))))
    assert {"event", "timeline_entry", "outbox_message", "api_key", "policy_version"} <= tables
    _in_thread(lambda: downgrade(fresh_url, "base"))
    after_down: set[str] = set()
    _in_thread(lambda: after_down.update(asyncio.run(_tables(fresh_url))))
    assert after_down == {"alembic_version"}
    _in_thread(lambda: upgrade(fresh_url))


def test_models_match_migrations(fresh_url: str) -> None:
    """`alembic check`: autogenerate finds nothing to do after upgrading to head."""
    _in_thread(lambda: upgrade(fresh_url))
    config = alembic_config(fresh_url)
    config.stdout = io.StringIO()
    _in_thread(lambda: command.check(config))


def test_text_search_index_exists_as_modelled(fresh_url: str) -> None:
    """The one index `alembic check` cannot compare (see migrations/env.py) is checked here."""
    from app.events.models import TEXT_SEARCH

    _in_thread(lambda: upgrade(fresh_url))
    found: list[str] = []

    async def read() -> None:
        engine = make_engine(fresh_url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as conn:
                found.append(
                    str(
                        await conn.scalar(
                            sa.text(
                                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_event_text'"
                            )
                        )
                    )
                )
        finally:
            await engine.dispose()

    _in_thread(lambda: asyncio.run(read()))
    assert "USING gin" in found[0]
    assert TEXT_SEARCH in found[0]
