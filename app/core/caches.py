"""Process-wide caches: one small facility and one reset (issue 11, item 6).

Every value a process keeps between requests lives in a `RefreshingCache` made here (the
caller behind an API key, the policy in force, the known department codes), so they all behave
alike and tests start each one cold with ONE call, `reset_all()`:

* an entry is fresh for `ttl` seconds after it was stored;
* when it is due, ONE caller refreshes it while callers arriving meanwhile go on with the value
  they have (a client sending 64 requests at once does not send 64 lookups every few seconds);
  with no value at all, each caller loads;
* a change made in this process invalidates the entry at once. A load that started before the
  invalidation is not kept, and `invalidate(accept=...)` refuses values that predate a change
  still being committed (a policy version older than the one just written);
* at most `maxsize` entries, the least recently used leaving first (`cachetools.LRUCache`).

Other process-wide state that tests must start cold (such as a block of numbers taken ahead)
joins the same reset with `on_reset`.
"""

import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAXSIZE: Final = 10_000


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    expires_at: float


class RefreshingCache(Generic[K, V]):
    """A TTL cache whose due entries are refreshed by one caller at a time (see the module)."""

    def __init__(self, name: str, *, ttl: float, maxsize: int = DEFAULT_MAXSIZE) -> None:
        self.name = name
        self.ttl = ttl
        self._entries: LRUCache[K, _Entry[V]] = LRUCache(maxsize)
        self._refreshing: set[K] = set()
        self._accept: Callable[[V], bool] | None = None
        self._generation = 0

    def _entry(self, key: K) -> _Entry[V] | None:
        try:  # not `.get`: MutableMapping.get doubles the cost of a hit (hot paths)
            return self._entries[key]
        except KeyError:
            return None

    def fresh(self, key: K) -> V | None:
        """The value of `key` while its TTL runs; None when there is none or it is due."""
        entry = self._entry(key)
        if entry is None or entry.expires_at < time.monotonic():
            return None
        return entry.value

    async def get(
        self,
        key: K,
        load: Callable[[V | None], Awaitable[V | None]],
        *,
        due: Callable[[V], bool] | None = None,
    ) -> V | None:
        """The value of `key`, loading it when due.

        Fresh (TTL running and not `due(value)`): returned as it is. Otherwise one caller runs
        `load(current)`, where `current` is the value if only `due` made it due (its TTL still
        runs) and else None, and keeps what it returns (None: the key is forgotten); callers
        arriving while it runs get the value there is, or load too when there is none."""
        entry = self._entry(key)
        live = False
        if entry is not None:
            live = entry.expires_at >= time.monotonic()
            if live and (due is None or not due(entry.value)):
                return entry.value
            if key in self._refreshing:
                return entry.value
        generation = self._generation
        self._refreshing.add(key)
        try:
            value = await load(entry.value if entry is not None and live else None)
        finally:
            self._refreshing.discard(key)
        if value is None:
            self._entries.pop(key, None)
        elif generation == self._generation:
            self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` for `ttl` seconds (unless an invalidation's `accept` refuses it)."""
        if self._accept is not None and not self._accept(value):
            return
        self._entries[key] = _Entry(value, time.monotonic() + self.ttl)

    def invalidate(
        self, key: K | None = None, *, accept: Callable[[V], bool] | None = None
    ) -> None:
        """Forget `key` (None: every key) after a change; loads already running are not kept.
        `accept`: from now on only values it accepts are kept (until the next reset)."""
        self._generation += 1
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
        if accept is not None:
            self._accept = accept

    def reset(self) -> None:
        """Empty, as at process start (tests)."""
        self.invalidate()
        self._refreshing.clear()
        self._accept = None


_resets: list[Callable[[], None]] = []


def cache(name: str, *, ttl: float, maxsize: int = DEFAULT_MAXSIZE) -> RefreshingCache[K, V]:
    """A new process-wide cache, emptied by `reset_all()`."""
    made: RefreshingCache[K, V] = RefreshingCache(name, ttl=ttl, maxsize=maxsize)
    _resets.append(made.reset)
    return made


def on_reset(reset: Callable[[], None]) -> None:
    """Have `reset_all()` also call `reset` (other process-wide state tests start cold)."""
    _resets.append(reset)


def reset_all() -> None:
    """Empty every process-wide cache (tests: each test starts cold)."""
    for reset in _resets:
        reset()
