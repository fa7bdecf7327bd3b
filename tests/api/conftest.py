"""Fixtures of the API tests that need real, committed transactions."""

import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import httpx
import pytest
import sqlalchemy as sa
from asyncpg import Pool
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.directory.models import ApiKey, User
from app.events.models import Event
from app.rules.vocabulary import Role
from tests.api import flow
from tests.api.flow import Cast
from tests.conftest import Actor, build_app


@dataclass
class Committed:
    """An app on real transactions, and everything made through it (deleted afterwards)."""

    maker: async_sessionmaker[AsyncSession]
    app: FastAPI
    users: list[uuid.UUID] = field(default_factory=list)

    async def actor(self, *roles: Role, department: str | None = None) -> Actor:
        actor = await flow.create_actor(self.maker, *roles, department=department)
        self.users.append(actor.id)
        return actor

    async def cast(self, lead: str) -> Cast:
        return Cast(
            desk=await self.actor(Role.INTAKE_AGENT, department="CS"),
            handler=await self.actor(Role.HANDLER, department=lead),
            head=await self.actor(Role.DEPT_HEAD, department=lead),
            supervisor=await self.actor(Role.SUPERVISOR, department="SUP"),
            reporter=await self.actor(Role.REPORTER, department="SALES"),
        )

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def committed(engine: AsyncEngine, pool: Pool) -> AsyncGenerator[Committed]:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    world = Committed(maker=maker, app=build_app(maker, pool))
    try:
        yield world
    finally:
        if world.users:
            async with maker() as session, session.begin():
                # Deleting the event cascades to its timeline (the append-only trigger allows
                # only that), steps, feedback, actions and outbox messages.
                await session.execute(
                    sa.delete(Event).where(
                        sa.or_(
                            Event.created_by.in_(world.users),
                            Event.assignee_id.in_(world.users),
                        )
                    )
                )
                await session.execute(sa.delete(ApiKey).where(ApiKey.user_id.in_(world.users)))
                await session.execute(sa.delete(User).where(User.id.in_(world.users)))
