"""One transaction per request, shared by the Idempotency-Key layer (product.md section 4).

A pure ASGI middleware owns the request's session: it buffers the body (enforcing the size
limit), replays stored first responses for a known `Idempotency-Key`, runs the app, and commits
*before* the response is sent, so a failed commit becomes an error instead of a lie. Error
responses (status >= 400) roll back; only successful responses are stored for replay.
A request that opened no session by the time it answers (routes that use only the asyncpg
pool: intake, get by id, lists, KPIs) is passed straight through.
"""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.auth import Principal, authenticate
from app.core.clock import utcnow
from app.core.db import Database, RequestSession, driver_connection
from app.core.errors import (
    AppError,
    IdempotencyInFlight,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
    problem_body,
)
from app.core.idempotency import (
    MAX_KEY_LENGTH,
    WITHHOLD_STATE,
    IdempotencyClaim,
    lock_in_session,
    replay_headers,
    store,
    stored_response,
)
from app.core.json_body import body_problem
from app.core.outage import database_unavailable

NUL_DETAIL = "NUL characters (\\u0000) are not allowed: PostgreSQL text cannot store them"
# A JSON \u0000 escape that is not itself an escaped backslash followed by "u0000".
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# The request headers this layer reads (ASGI header names are lowercase bytes).
_READ_HEADERS = frozenset(
    (b"authorization", b"content-length", b"content-type", b"idempotency-key")
)

log = structlog.get_logger(__name__)


def _problem_message(exc: Any, path: str) -> tuple[int, bytes]:
    body = problem_body(
        status=exc.status,
        type_=exc.type,
        title=exc.title,
        detail=exc.detail,
        instance=path,
        **exc.extensions,
    )
    return exc.status, json.dumps(body).encode()


async def _send_simple(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_problem(
    send: Send, exc: Any, path: str, extra: Mapping[str, str] | None = None
) -> None:
    status, body = _problem_message(exc, path)
    headers = [(b"content-type", b"application/problem+json")]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await _send_simple(send, status, body, headers)


class TransactionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        database: Callable[[], Database],
        max_body_bytes: int,
        self_idempotent: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        """`self_idempotent`: (method, path) of routes that honour `Idempotency-Key` in their
        own single statement (intake); the claim is handed to them in `request.state`."""
        self.app = app
        self.database = database
        self.max_body_bytes = max_body_bytes
        self.self_idempotent = self_idempotent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers: dict[bytes, str] = {}
        for k, v in scope["headers"]:  # the first of repeated headers wins, as in Starlette
            if k in _READ_HEADERS and k not in headers:
                headers[k] = v.decode("latin-1")
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            await _send_problem(send, Unprocessable(NUL_DETAIL), path)
            return
        method: str = scope["method"]

        body = b""
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await _send_problem(
                    send, PayloadTooLarge(f"Limit is {self.max_body_bytes} bytes"), path
                )
                return
            chunks: list[bytes] = []
            size = 0
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    await _send_problem(
                        send, PayloadTooLarge(f"Limit is {self.max_body_bytes} bytes"), path
                    )
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            if b"\x00" in body or (b"\\u0000" in body and _JSON_NUL.search(body)):
                await _send_problem(send, Unprocessable(NUL_DETAIL), path)
                return
            problem = body_problem(headers.get(b"content-type"), body)  # 415, duplicate keys
            if problem is not None:
                await _send_problem(send, problem, path, problem.headers())
                return

        database = self.database()
        # The caller is resolved when a route asks (`auth.request_principal`), or here for a
        # keyed POST, whose stored answer belongs to the API key that sent it.
        authorization = headers.get(b"authorization", "")
        principal: Principal | None = None
        claim: IdempotencyClaim | None = None
        key = headers.get(b"idempotency-key") if method == "POST" else None
        if key is not None:
            if not key or len(key) > MAX_KEY_LENGTH:
                await _send_problem(
                    send,
                    Unprocessable(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"),
                    path,
                )
                return
            try:  # a revoked key or an inactive user gets no stored answer
                principal = await authenticate(database, authorization)
            except Unauthorized as exc:
                await _send_problem(send, exc, path, exc.headers())
                return
            request_hash = hashlib.sha256(
                method.encode() + b" " + path.encode() + b"\n" + body
            ).hexdigest()
            claim = IdempotencyClaim(str(principal.api_key_id), key, request_hash)

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        holder = RequestSession(database.session_maker)
        state = scope.setdefault("state", {})
        state.update(
            session=holder,
            authorization=authorization,
            principal=principal,
            auth_error=None,
            idempotency=None,
        )
        if claim is not None and (method, path) in self.self_idempotent:
            state["idempotency"] = claim
            claim = None
        try:
            await self._handle(scope, replay_receive, send, holder, claim)
        finally:
            if holder.session is not None:
                await holder.session.close()

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        holder: RequestSession,
        claim: IdempotencyClaim | None,
    ) -> None:
        path: str = scope["path"]
        if claim is not None and await self._replay(holder.get(), send, claim, path):
            return

        start: Message | None = None
        parts: list[bytes] = []
        streaming = passthrough = False

        async def capture(message: Message) -> None:
            nonlocal start, streaming, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                if claim is None and holder.session is None:
                    # No session was opened (the hot paths, which run their one statement on
                    # a pooled connection): nothing to commit or store, so nothing to wait for.
                    passthrough = True
                    await send(message)
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            if streaming:
                await send(message)
                return
            if message.get("more_body", False):
                # A streamed response (e.g. CSV export): finish the transaction, then stream.
                streaming = True
                await self._finish(holder.session, start["status"])
                await send(start)
                await send(
                    {"type": "http.response.body", "body": b"".join(parts), "more_body": True}
                )
                await send(message)
                return
            parts.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            if holder.session is not None:
                await holder.session.rollback()
            raise
        if passthrough:
            if holder.session is not None and holder.session.in_transaction():
                # Opened after the answer went out: nothing may be kept that the answer did
                # not vouch for. No route does this; a new one that did would show up here.
                log.error("session_opened_after_response", path=path)
                await holder.session.rollback()
            return
        if streaming or start is None:
            return
        status: int = start["status"]
        payload = b"".join(parts)
        if claim is not None and status < 400:
            withheld = bool(scope["state"].get(WITHHOLD_STATE))
            await store(
                await driver_connection(holder.get()),
                claim,
                status=status,
                headers=replay_headers(start["headers"], withheld=withheld),
                body=payload,
                now=utcnow(),
                withheld=withheld,
            )
        try:
            await self._finish(holder.session, status)
        except Exception as exc:
            if database_unavailable(exc) is not None:
                raise  # PostgreSQL went away: `OutageMiddleware` answers 503 in one log line
            log.exception("commit_failed", path=path)
            body_500 = json.dumps(
                problem_body(
                    status=500,
                    type_="commit-failed",
                    title="The change could not be saved",
                    detail="The transaction failed to commit; nothing was changed.",
                    instance=path,
                )
            ).encode()
            await _send_simple(
                send, 500, body_500, [(b"content-type", b"application/problem+json")]
            )
            return
        await send(start)
        await send({"type": "http.response.body", "body": payload})

    async def _finish(self, session: AsyncSession | None, status: int) -> None:
        if session is None or not session.in_transaction():
            return
        if status < 400:
            await session.commit()
        else:
            await session.rollback()

    async def _replay(
        self, session: AsyncSession, send: Send, claim: IdempotencyClaim, path: str
    ) -> bool:
        """Answer from a stored first response; True when the request was answered here."""
        if not await lock_in_session(session, claim):
            await session.rollback()
            await _send_problem(send, IdempotencyInFlight(), path)
            return True
        # A second statement on purpose: its snapshot is taken after the lock is held, so it
        # sees a record the previous holder committed just before releasing the lock.
        try:
            stored = await stored_response(await driver_connection(session), claim)
        except AppError as exc:  # the key reused with another request, or a withheld secret
            await session.rollback()
            await _send_problem(send, exc, path, exc.headers())
            return True
        if stored is None:
            return False
        await session.rollback()
        await _send_simple(send, stored.status, stored.body, stored.headers)
        return True
