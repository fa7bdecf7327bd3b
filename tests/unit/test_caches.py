"""The one cache facility (issue 11, item 6): TTL, one refresher per due entry while the others
use the value there is, invalidation on change, and one reset for every process-wide cache."""

import asyncio
import time
import uuid

import pytest

from app.core import auth, caches
from app.core.caches import RefreshingCache
from app.directory import service as directory
from app.policy import service as policy_service


class Loader:
    """Counts loads; each answers `value`, after `gate` is set."""

    def __init__(self, value: str | None = "v1") -> None:
        self.value = value
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, _current: str | None) -> str | None:
        self.calls += 1
        await self.gate.wait()
        return self.value


def _expire(cache: RefreshingCache[str, str], key: str) -> None:
    cache._entries[key].expires_at = time.monotonic() - 1


async def test_a_fresh_value_is_kept_for_its_ttl() -> None:
    cache: RefreshingCache[str, str] = RefreshingCache("t", ttl=60)
    load = Loader()
    assert await cache.get("k", load) == "v1"
    assert await cache.get("k", load) == "v1"
    assert cache.fresh("k") == "v1"
    assert load.calls == 1
    _expire(cache, "k")
    assert cache.fresh("k") is None
    load.value = "v2"
    assert await cache.get("k", load) == "v2"
    assert load.calls == 2


async def test_one_caller_refreshes_a_due_entry_while_the_others_use_it() -> None:
    cache: RefreshingCache[str, str] = RefreshingCache("t", ttl=60)
    load = Loader()
    await cache.get("k", load)
    _expire(cache, "k")
    load.value, load.gate = "v2", asyncio.Event()
    refresher = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    # A bounded wait: callers that loaded too would wait for the gate, not answer.
    others = await asyncio.wait_for(
        asyncio.gather(*(cache.get("k", load) for _ in range(10))), timeout=2
    )
    load.gate.set()
    assert await refresher == "v2"
    assert others == ["v1"] * 10
    assert load.calls == 2
    assert cache.fresh("k") == "v2"


async def test_without_a_value_every_caller_loads() -> None:
    cache: RefreshingCache[str, str] = RefreshingCache("t", ttl=60)
    load = Loader()
    load.gate.clear()
    callers = [asyncio.create_task(cache.get("k", load)) for _ in range(3)]
    await asyncio.sleep(0)
    load.gate.set()
    assert await asyncio.gather(*callers) == ["v1"] * 3
    assert load.calls == 3


async def test_due_by_predicate_hands_the_live_value_to_the_loader() -> None:
    cache: RefreshingCache[str, str] = RefreshingCache("t", ttl=60)
    seen: list[str | None] = []

    async def load(current: str | None) -> str:
        seen.append(current)
        return "stamped"

    cache.put("k", "old")
    assert await cache.get("k", load, due=lambda value: value == "old") == "stamped"
    assert seen == ["old"]
    _expire(cache, "k")
    await cache.get("k", load)
    assert seen == ["old", None]  # expired: nothing live to hand over


async def test_a_load_answering_none_forgets_the_key() -> None:
    cache: RefreshingCache[str, str] = RefreshingCache("t", ttl=60)
    cache.put("k", "v1")
    _expire(cache, "k")
    assert await cache.get("k", Loader(None)) is None
    assert "k" not in cache._entries


async def test_a_failed_load_leaves_nobody_refreshing() -> None:
    cache: RefreshingCache[str, str] = RefreshingCache("t", ttl=60)

    async def fail(_current: str | None) -> str:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        await cache.get("k", fail)
    assert not cache._refreshing


async def test_invalidation_forgets_and_does_not_keep_a_load_already_running() -> None:
    cache: RefreshingCache[str, str] = RefreshingCache("t", ttl=60)
    load = Loader("before the change")
    load.gate.clear()
    running = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    cache.invalidate()  # a change committed meanwhile
    load.gate.set()
    assert await running == "before the change"  # its caller gets it ...
    assert cache.fresh("k") is None  # ... but it is not kept


async def test_accept_refuses_values_that_predate_a_change() -> None:
    cache: RefreshingCache[str, int] = RefreshingCache("t", ttl=60)
    cache.invalidate(accept=lambda version: version >= 3)
    cache.put("k", 2)
    assert cache.fresh("k") is None
    cache.put("k", 3)
    assert cache.fresh("k") == 3
    cache.reset()
    cache.put("k", 1)
    assert cache.fresh("k") == 1


def test_the_least_recently_used_entry_leaves_first() -> None:
    cache: RefreshingCache[str, str] = RefreshingCache("t", ttl=60, maxsize=2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.fresh("a") == "1"
    cache.put("c", "3")
    assert (cache.fresh("a"), cache.fresh("b"), cache.fresh("c")) == ("1", None, "3")


def test_one_reset_empties_every_process_wide_cache() -> None:
    """tests/conftest.py starts each test cold with this one call."""
    reset_hook: list[str] = []
    caches.on_reset(lambda: reset_hook.append("reset"))
    try:
        _fill_and_reset(reset_hook)
    finally:
        caches._resets.pop()  # the hook of this test only


def _fill_and_reset(reset_hook: list[str]) -> None:
    principal = auth.Principal(
        user_id=uuid.uuid4(),
        api_key_id=uuid.uuid4(),
        name="x",
        roles=frozenset(),
        department_id=None,
        department=None,
        service_account=False,
    )
    auth.principal_cache.put("hash", auth.KnownKey(principal, None))
    directory._codes.put(directory._ALL_CODES, frozenset({"IT"}))
    policy_service._policies.invalidate(accept=lambda _policy: False)

    caches.reset_all()

    assert auth.principal_cache.fresh("hash") is None
    assert directory._codes.fresh(directory._ALL_CODES) is None
    assert policy_service._policies._accept is None
    assert reset_hook == ["reset"]
