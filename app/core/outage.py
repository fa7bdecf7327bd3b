"""PostgreSQL unreachable: a clean 503, never a 500 with tracebacks (issue 10, item 3).

When PostgreSQL is down, restarting or out of connections, every way into it (the ORM session
of `TransactionMiddleware`, the hot-path asyncpg pool, the caller's lookup) fails with one of a
handful of connection-class errors. `OutageMiddleware` sits outside `TransactionMiddleware`, so it
sees them wherever they are raised (a route, a dependency, the middleware's own idempotency and
authentication statements), and answers 503 `service-unavailable` problem+json with
`Retry-After`, logging one line without a traceback. Nothing is kept between requests: the
pools reconnect by themselves once PostgreSQL is back, so the service recovers without a restart.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ServiceUnavailable, raw_problem
from app.core.unavailable import database_unavailable as database_unavailable
from app.core.unavailable import log_unavailable, quiet_reconnect_log


def unavailable_response(path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the 503 `service-unavailable` problem."""
    return raw_problem(ServiceUnavailable(), path)


class OutageMiddleware:
    """Connection-class errors from anywhere inside become 503 problem+json (see module doc).

    Add it outside `TransactionMiddleware` and inside the access log, so the access log records
    the 503. Costs one wrapped `send` per request; nothing on the database.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        quiet_reconnect_log()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            cause = database_unavailable(exc)
            if cause is None:
                raise
            path: str = scope["path"]
            log_unavailable(path, cause)
            if started:
                # Part of the answer is out: nothing correct can follow; the server closes the
                # connection, which tells the client the answer is incomplete.
                return
            status, headers, body = unavailable_response(path)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
