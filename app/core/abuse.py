"""Repeated failed authentication from one client is refused for a while (issue 15, item 7).

An API key is 256 random bits, so guessing one is hopeless; what this bounds is the cost of
trying (every unknown key is a database lookup) and the noise in the log. `RequestLogMiddleware`
counts the 401s it answers per client address: once a client has failed `limit` times within
`window` seconds of its first failure, every request from that address is answered 429
`too-many-auth-failures` problem+json with `Retry-After` for `window` seconds, a valid key
included (a client guessing keys must not learn which one worked).

The client address is the one uvicorn puts in the ASGI scope (behind a trusted proxy, the
forwarded one: `serve` runs uvicorn with `proxy_headers`). The counts live in this process
only: with several replicas or workers, each counts on its own. A request from a client that
is not refused costs one truthiness test, and one dict lookup while some client is refused.
"""

import math
import time
from collections.abc import Callable

from cachetools import TTLCache
from starlette.types import Send

from app.core.errors import TooManyAuthFailures, raw_problem

MAX_CLIENTS = 10_000  # addresses counted at once (memory bound); the oldest go first


class AuthFailureGuard:
    """Counts failed authentications per client address and refuses the clients over the limit.

    `blocked` (address -> monotonic time the refusal ends) is checked on every request; it is
    empty but for clients being refused, so the common check is `if guard.blocked`."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        # address -> [failures]: mutated in place, so the entry expires `window` seconds
        # after the first failure (a fixed window), not after the latest.
        self.failures: TTLCache[str, list[int]] = TTLCache(
            maxsize=max_clients, ttl=window, timer=clock
        )
        self.blocked: dict[str, float] = {}

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it is not refused."""
        until = self.blocked.get(client)
        if until is None:
            return None
        left = until - self.clock()
        if left > 0:
            return max(1, math.ceil(left))
        del self.blocked[client]
        return None

    def failed(self, client: str) -> None:
        """`client` was answered 401: count it, and refuse it once it reaches the limit."""
        entry = self.failures.get(client)
        if entry is None:
            self.failures[client] = [1]
            count = 1
        else:
            entry[0] += 1
            count = entry[0]
        if count < self.limit:
            return
        del self.failures[client]
        now = self.clock()
        if len(self.blocked) >= self.max_clients:
            self._forget_expired(now)
        self.blocked[client] = now + self.window

    def _forget_expired(self, now: float) -> None:
        for address in [a for a, until in self.blocked.items() if until <= now]:
            del self.blocked[address]
        while len(self.blocked) >= self.max_clients:  # still full: the oldest refusal goes
            del self.blocked[next(iter(self.blocked))]

    async def refuse(self, send: Send, path: str, retry_after: int) -> None:
        """Answer 429 `too-many-auth-failures` problem+json with `Retry-After`."""
        status, headers, body = raw_problem(TooManyAuthFailures(retry_after), path)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def auth_failure_guard(limit: int, window: float) -> AuthFailureGuard | None:
    """The guard for these settings; None when `limit` is 0 (turned off)."""
    return AuthFailureGuard(limit=limit, window=window) if limit > 0 else None
