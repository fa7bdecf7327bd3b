"""The two ways into PostgreSQL (`app.core.db.Database`) and how each is planned."""

import gc
import uuid

from asyncpg import Pool
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.core.auth import Principal
from app.core.config import Settings
from app.core.db import Database
from app.events.repository import get_query, get_visible
from app.main import create_app
from app.rules.vocabulary import Role


async def test_hot_statements_keep_the_plan_cache_and_reports_force_custom_plans(
    engine: AsyncEngine, pool: Pool
) -> None:
    """Intake and get by id reuse their plans; lists and KPIs are planned with the values at
    hand (generic plans were 10x slower on skewed filters), and only inside their own
    transaction: the setting does not leak into the next user of the connection."""
    database = Database(async_sessionmaker(engine), pool)
    show = "SELECT current_setting('plan_cache_mode')"

    async with database.connection() as connection:
        assert await connection.fetchval(show) == "auto"
    async with database.report_connection() as connection:
        assert await connection.fetchval(show) == "force_custom_plan"
        assert await connection.fetchval("SELECT current_setting('transaction_read_only')") == "on"
    async with database.connection() as connection:
        assert await connection.fetchval(show) == "auto"
    async with database.session_maker() as session:
        connection = await session.connection()
        assert (await connection.exec_driver_sql(show)).scalar() == "force_custom_plan"


def _principal(*roles: Role, department: str | None = None) -> Principal:
    return Principal(
        user_id=uuid.uuid4(),
        api_key_id=uuid.uuid4(),
        name="planner",
        roles=frozenset(roles),
        department_id=uuid.uuid4() if department else None,
        department=department,
        service_account=False,
    )


async def test_get_by_id_keeps_a_generic_plan_for_every_caller_shape(pool: Pool) -> None:
    """Get by id is not planned afresh on every request (issue 5): each visibility shape
    (everything; a department's handler; a handler without one; a reporter) is its own
    statement, with no switch
    parameters for a custom plan to fold, so PostgreSQL settles on the generic plan."""
    shapes = [
        _principal(Role.ADMIN),
        _principal(Role.HANDLER, department="IT"),
        _principal(Role.HANDLER),
        _principal(Role.REPORTER),
    ]
    statements = set()
    async with pool.acquire() as connection:
        for principal in shapes:
            for id_or_ref in (str(uuid.uuid4()), "EV-2026-999999"):
                sql, _ = get_query(id_or_ref, principal)
                statements.add(sql)
                for _ in range(8):
                    assert await get_visible(connection, id_or_ref, principal) is None
                plans = await connection.fetchrow(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement = $1",
                    sql,
                )
                assert plans is not None
                assert plans["generic_plans"] >= 3, (principal.roles, dict(plans))
    assert len(statements) == 8


async def test_the_app_serves_with_the_configured_collector(migrated_url: str) -> None:
    """The lifespan applies `GC_GEN0_THRESHOLD` while serving and restores it after."""
    app = create_app(Settings(DATABASE_URL=migrated_url, GC_GEN0_THRESHOLD=12_345))
    before = gc.get_threshold()
    async with app.router.lifespan_context(app):
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
