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
    """The search index is a GIN index on the stored vector and the days of creation (README,
    Search), and the expression index of the `simple` configuration it replaced is gone, as is
    the vector's index alone (migration 4d9f2b6c7e14)."""
    _in_thread(lambda: upgrade(fresh_url))
    found: dict[str, str] = {}

    async def read() -> None:
        engine = make_engine(fresh_url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text(
                        "SELECT indexname, indexdef FROM pg_indexes"
                        " WHERE indexname IN"
                        " ('ix_event_text', 'ix_event_search_vector', 'ix_event_search')"
                    )
                )
                found.update({r[0]: r[1] for r in rows})
        finally:
            await engine.dispose()

    _in_thread(lambda: asyncio.run(read()))
    assert list(found) == ["ix_event_search"]
    assert "USING gin (search_vector, event_search_days(created_at))" in found["ix_event_search"]


def test_the_search_migration_gives_existing_events_their_vector(fresh_url: str) -> None:
    """Events taken in before the search migration get the vector intake writes now (README,
    Search), so that they are found like new ones."""
    from app.core.search_text import search_vector

    _in_thread(lambda: upgrade(fresh_url, "5e1b0c7d9a42"))
    title, description = "客户投诉：快递延误两周", "Parcel FAILS twice"  # noqa: RUF001
    found: list[str] = []

    async def seed() -> None:
        engine = make_engine(fresh_url, pool_size=1, max_overflow=0)
        try:
            async with engine.begin() as conn:
                user = await conn.scalar(
                    sa.text(
                        "INSERT INTO app_user (id, name, roles, service_account, active,"
                        " created_at, updated_at) VALUES (gen_random_uuid(), 'Old', '{reporter}',"
                        " false, true, now(), now()) RETURNING id"
                    )
                )
                await conn.execute(
                    sa.text(
                        "INSERT INTO event (id, ref, status, title, description, channel,"
                        " reported_at, urgent, reporter_name, created_by, involved_departments,"
                        " involved_people, intake_department, cooperating_departments,"
                        " plan_discussed_with, respond_by, version, created_at, updated_at)"
                        " VALUES (gen_random_uuid(), 'EV-2026-000001', 'reported', :title,"
                        " :description, 'email', now(), false, 'Old', :user, '{}', '{}', 'CS',"
                        " '{}', '{}', now(), 1, now(), now())"
                    ),
                    {"title": title, "description": description, "user": user},
                )
        finally:
            await engine.dispose()

    async def read() -> None:
        engine = make_engine(fresh_url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as conn:
                stored, expected = (
                    await conn.execute(
                        sa.text(
                            "SELECT search_vector::text, CAST(:v AS tsvector)::text FROM event"
                        ),
                        {"v": search_vector(title, description)},
                    )
                ).one()
                found.extend([stored, expected])
        finally:
            await engine.dispose()

    _in_thread(lambda: asyncio.run(seed()))
    _in_thread(lambda: upgrade(fresh_url, "1a6c0e2f3b71"))
    _in_thread(lambda: asyncio.run(read()))
    assert found[0] == found[1]
    assert "'快递':5A" in found[0]


def test_the_fold_migration_goes_back_to_a_rollup_without_the_reported(fresh_url: str) -> None:
    """Migration 7b4e1c9d2f58 (issue 14 item 5): a folded event still `reported` is in the
    rollup; going back, the rollup is rebuilt without it (the rule before: a `reported` event
    is not in it) and the triggers are those before (classifying it puts it in, reporting it
    again takes it out); forward again, it is not folded until the fold runs again."""
    _in_thread(lambda: upgrade(fresh_url))
    seen: list[object] = []

    async def run(statements: list[str]) -> None:
        engine = make_engine(fresh_url, pool_size=1, max_overflow=0)
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    seen.append((await conn.execute(sa.text(statement))).scalar())
        finally:
            await engine.dispose()

    in_rollup = (
        "SELECT coalesce(sum(events), 0) FROM report_rollup"
        " WHERE grain = 'day' AND dim = 'department'"
    )
    seed = [
        "INSERT INTO app_user (id, name, roles, service_account, active, created_at, updated_at)"
        " VALUES (gen_random_uuid(), 'Old', '{reporter}', false, true, now(), now())"
        " RETURNING id",
        "INSERT INTO event (id, ref, status, title, description, channel, reported_at, urgent,"
        " reporter_name, created_by, involved_departments, involved_people, intake_department,"
        " cooperating_departments, plan_discussed_with, respond_by, version, created_at,"
        " updated_at) SELECT gen_random_uuid(), 'EV-2026-000001', 'reported', 'Left', 'Left',"
        " 'email', now(), false, 'Old', id, '{}', '{}', 'CS', '{}', '{}', now(), 1,"
        " now() - interval '2 hours', now() FROM app_user RETURNING 1",
        "SELECT report_rollup_fold(now() - interval '1 hour', 10)",
        in_rollup,
    ]
    _in_thread(lambda: asyncio.run(run(seed)))
    assert seen[2:] == [1, 1]
    _in_thread(lambda: downgrade(fresh_url, "6f3b8d0e2a47"))
    moved = [
        in_rollup,
        "UPDATE event SET status = 'classified' RETURNING 1",
        in_rollup,
        "UPDATE event SET status = 'reported' RETURNING 1",
        in_rollup,
    ]
    _in_thread(lambda: asyncio.run(run(moved)))
    assert seen[4:] == [0, 1, 1, 1, 0]
    _in_thread(lambda: upgrade(fresh_url))
    fold = "SELECT report_rollup_fold(now() - interval '1 hour', 10)"
    _in_thread(lambda: asyncio.run(run([in_rollup, fold, in_rollup])))
    assert seen[9:] == [0, 1, 1]
