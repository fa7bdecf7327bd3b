"""The two ways into PostgreSQL (`app.core.db.Database`) and how each is planned."""

from asyncpg import Pool
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.core.db import Database


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
