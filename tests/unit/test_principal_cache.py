"""The principal cache: one request refreshes a due entry while the others of that key go
on with it (no burst of lookups every few seconds under load)."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from app.core import auth
from app.core.clock import utcnow
from app.core.db import Database
from app.rules.vocabulary import Role


class Untouchable:
    """A database that must not be asked."""

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        raise AssertionError("the database was asked")
        yield  # pragma: no cover


def _principal() -> auth.Principal:
    return auth.Principal(
        user_id=uuid.uuid4(),
        api_key_id=uuid.uuid4(),
        name="bridge",
        roles=frozenset({Role.INTEGRATION}),
        department_id=None,
        department=None,
        service_account=True,
    )


@pytest.fixture
def token() -> str:
    return auth.new_token()


async def test_a_due_entry_being_refreshed_is_served_as_it_is(token: str) -> None:
    cache = auth.principal_cache
    known = _principal()
    cache._items[auth.hash_token(token)] = (0.0, known, utcnow())  # expired
    cache.refreshing.add(auth.hash_token(token))
    try:
        got = await auth.authenticate(cast(Database, Untouchable()), f"Bearer {token}")
    finally:
        cache.refreshing.clear()
        cache.clear()
    assert got == known


async def test_a_due_entry_nobody_refreshes_is_looked_up(token: str) -> None:
    cache = auth.principal_cache
    known = _principal()
    cache._items[auth.hash_token(token)] = (0.0, known, utcnow())  # expired
    try:
        with pytest.raises(AssertionError, match="database was asked"):
            await auth.authenticate(cast(Database, Untouchable()), f"Bearer {token}")
        assert not cache.refreshing  # the flag does not outlive a failed refresh
    finally:
        cache.clear()
