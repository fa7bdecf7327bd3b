"""The principal cache: one request refreshes a due entry while the others of that key go
on with it (no burst of lookups every few seconds under load)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

import pytest

from app.core import auth, caches
from app.core.clock import utcnow
from app.core.db import Database
from app.core.errors import Unauthorized
from app.rules.vocabulary import Role


class NoDatabase:
    """Hands out a dummy connection: the store below decides what a lookup answers."""

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        yield object()


DATABASE = cast(Database, NoDatabase())


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


class Store:
    """A principal store that counts lookups; `gate` holds each lookup until it is set."""

    def __init__(self, known: auth.KnownKey | None) -> None:
        self.known = known
        self.loads = 0
        self.stamps = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self, _connection: Any, _token_hash: str) -> auth.KnownKey | None:
        self.loads += 1
        await self.gate.wait()
        return self.known

    async def stamp(self, _connection: Any, _key_id: uuid.UUID, _at: datetime) -> None:
        self.stamps += 1

    @property
    def principals(self) -> auth.PrincipalStore:
        return auth.PrincipalStore(load=self.load, stamp=self.stamp)


@pytest.fixture
def token() -> str:
    caches.reset_all()
    return auth.new_token()


async def test_a_due_entry_being_refreshed_is_served_as_it_is(token: str) -> None:
    known = auth.KnownKey(_principal(), utcnow())
    store = Store(known)
    header = f"Bearer {token}"
    assert await auth.authenticate(DATABASE, store.principals, header) == known.principal
    auth.principal_cache.put(auth.hash_token(token), known)
    auth.principal_cache._entries[auth.hash_token(token)].expires_at = 0.0  # due
    store.gate.clear()
    first = asyncio.create_task(auth.authenticate(DATABASE, store.principals, header))
    await asyncio.sleep(0)  # the first request is now refreshing
    # A bounded wait: requests that looked the key up too would wait for the gate.
    others = await asyncio.wait_for(
        asyncio.gather(*(auth.authenticate(DATABASE, store.principals, header) for _ in range(5))),
        timeout=2,
    )
    store.gate.set()
    assert await first == known.principal
    assert others == [known.principal] * 5
    assert store.loads == 2  # the first lookup, then ONE refresh for six requests


async def test_a_due_entry_nobody_refreshes_is_looked_up(token: str) -> None:
    store = Store(auth.KnownKey(_principal(), utcnow()))
    header = f"Bearer {token}"
    await auth.authenticate(DATABASE, store.principals, header)
    auth.principal_cache._entries[auth.hash_token(token)].expires_at = 0.0  # due
    await auth.authenticate(DATABASE, store.principals, header)
    assert store.loads == 2


async def test_a_fresh_entry_is_not_looked_up_and_a_key_gone_is_401(token: str) -> None:
    known = auth.KnownKey(_principal(), utcnow())
    store = Store(known)
    header = f"Bearer {token}"
    for _ in range(3):
        assert await auth.authenticate(DATABASE, store.principals, header) == known.principal
    assert (store.loads, store.stamps) == (1, 0)  # used within the minute: no stamp
    auth.forget_principals()  # e.g. the key was revoked in this process
    store.known = None
    with pytest.raises(Unauthorized):
        await auth.authenticate(DATABASE, store.principals, header)
    assert auth.principal_cache.fresh(auth.hash_token(token)) is None


async def test_last_used_is_stamped_once_a_minute_without_a_new_lookup(token: str) -> None:
    store = Store(auth.KnownKey(_principal(), None))  # never used
    header = f"Bearer {token}"
    await auth.authenticate(DATABASE, store.principals, header)
    await auth.authenticate(DATABASE, store.principals, header)
    assert (store.loads, store.stamps) == (1, 1)
