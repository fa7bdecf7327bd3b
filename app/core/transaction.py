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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.auth import Principal, PrincipalStore, authenticate
from app.core.clock import utcnow
from app.core.db import Database, RequestSession, driver_connection
from app.core.errors import (
    AppError,
    IdempotencyInFlight,
    PayloadTooLarge,
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
from app.core.oidc import OidcVerifier
from app.core.unavailable import database_unavailable

NUL_DETAIL = "NUL characters (\\u0000) are not allowed: PostgreSQL text cannot store them"
# A JSON \u0000 escape that is not itself an escaped backslash followed by "u0000".
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# The request headers this layer reads (ASGI header names are lowercase bytes).
_READ_HEADERS = frozenset(
    (b"authorization", b"content-length", b"content-type", b"idempotency-key")
)
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))

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


def _request_headers(scope: Scope) -> dict[bytes, str]:
    """The headers this layer reads; the first of repeated headers wins, as in Starlette."""
    headers: dict[bytes, str] = {}
    for k, v in scope["headers"]:
        if k in _READ_HEADERS and k not in headers:
            headers[k] = v.decode("latin-1")
    return headers


class _Disconnected(Exception):
    """The client went away while sending the body: nothing to answer."""


async def _read_body(receive: Receive, headers: Mapping[bytes, str], limit: int) -> bytes:
    """The whole request body; AppError (413, 415, 422, malformed JSON) when it is refused."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Limit is {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    if b"\x00" in body or (b"\\u0000" in body and _JSON_NUL.search(body)):
        raise Unprocessable(NUL_DETAIL)
    problem = body_problem(headers.get(b"content-type"), body)  # 415, duplicate keys
    if problem is not None:
        raise problem
    return body


class _Capture:
    """The app's `send` while the transaction is open: holds the response until it can be
    committed (and stored for replay), or passes it straight through when nothing was
    opened; a streamed response finishes the transaction, then streams."""

    def __init__(
        self,
        send: Send,
        holder: RequestSession,
        *,
        keyed: bool,
        finish: Callable[[AsyncSession | None, int], Awaitable[None]],
    ) -> None:
        self.send = send
        self.holder = holder
        self.keyed = keyed
        self.finish = finish
        self.start: Message | None = None
        self.parts: list[bytes] = []
        self.streaming = self.passthrough = False

    async def __call__(self, message: Message) -> None:
        if self.passthrough or self.streaming:
            await self.send(message)
            return
        if message["type"] == "http.response.start":
            if not self.keyed and self.holder.session is None:
                # No session was opened (the hot paths, which run their one statement on a
                # pooled connection): nothing to commit or store, so nothing to wait for.
                self.passthrough = True
                await self.send(message)
                return
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        if message.get("more_body", False):
            # A streamed response (e.g. CSV export): finish the transaction, then stream.
            self.streaming = True
            await self.finish(self.holder.session, self.start["status"])
            await self.send(self.start)
            await self.send(
                {"type": "http.response.body", "body": b"".join(self.parts), "more_body": True}
            )
            await self.send(message)
            return
        self.parts.append(message.get("body", b""))


async def _discard(session: AsyncSession, exc: BaseException) -> None:
    """End a failed request's transaction. After a connection-class error (a command timeout
    on a hung server, a dropped connection) the session is invalidated: its connection is
    closed at once, where a rollback would wait on it for another command timeout before the
    503 could go out (review of issue 10, item 8)."""
    if database_unavailable(exc) is not None:
        await session.invalidate()
    else:
        await session.rollback()


class TransactionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        database: Callable[[], Database],
        principals: PrincipalStore,
        max_body_bytes: int,
        self_idempotent: frozenset[tuple[str, str]] = frozenset(),
        login_free: tuple[str, ...] = (),
        oidc: OidcVerifier | None = None,
    ) -> None:
        """`principals`: where a keyed POST's caller is looked up. `self_idempotent`: (method,
        path) of routes that honour `Idempotency-Key` in their own single statement (intake);
        the claim is handed to them in `request.state`. `login_free`: path prefixes answered
        without an API key (a survey link), where a key is scoped to the path instead.
        `oidc`: people's bearer tokens beside API keys (a keyed POST's key is the person's)."""
        self.app = app
        self.database = database
        self.principals = principals
        self.max_body_bytes = max_body_bytes
        self.self_idempotent = self_idempotent
        self.login_free = login_free
        self.oidc = oidc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        headers = _request_headers(scope)
        database = self.database()
        try:
            if "\x00" in path or b"%00" in scope.get("query_string", b""):
                raise Unprocessable(NUL_DETAIL)
            body = b""
            if method in _BODY_METHODS:
                body = await _read_body(receive, headers, self.max_body_bytes)
            # The caller is resolved when a route asks (`auth.request_principal`), or here for
            # a keyed POST, whose stored answer belongs to the API key that sent it.
            principal, claim = await self._claim(database, method, path, headers, body)
        except _Disconnected:
            return
        except AppError as exc:
            await _send_problem(send, exc, path, exc.headers())
            return

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
            authorization=headers.get(b"authorization", ""),
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

    async def _claim(
        self,
        database: Database,
        method: str,
        path: str,
        headers: Mapping[bytes, str],
        body: bytes,
    ) -> tuple[Principal | None, IdempotencyClaim | None]:
        """A keyed POST's caller and claim (none for other requests); 422 for a key of the
        wrong length, 401 for a revoked key or an inactive user (they get no stored answer)."""
        key = headers.get(b"idempotency-key") if method == "POST" else None
        if key is None:
            return None, None
        if not key or len(key) > MAX_KEY_LENGTH:
            raise Unprocessable(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
        request_hash = hashlib.sha256(
            method.encode() + b" " + path.encode() + b"\n" + body
        ).hexdigest()
        if path.startswith(self.login_free):
            # No caller to scope the key to: the path's hash, which holds the link's secret
            # token, scopes it (review of issue 10, item 10); the token is not stored.
            scope = hashlib.sha256(path.encode()).hexdigest()
            return None, IdempotencyClaim(scope, key, request_hash)
        principal = await authenticate(
            database, self.principals, headers.get(b"authorization", ""), self.oidc
        )
        # A person signed in with OIDC has no API key: their keys are scoped to them.
        owner = principal.api_key_id or f"user:{principal.user_id}"
        return principal, IdempotencyClaim(str(owner), key, request_hash)

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
        capture = _Capture(send, holder, keyed=claim is not None, finish=self._finish)
        try:
            await self.app(scope, receive, capture)
        except BaseException as exc:
            if holder.session is not None:
                await _discard(holder.session, exc)
            raise
        if capture.passthrough:
            if holder.session is not None and holder.session.in_transaction():
                # Opened after the answer went out: nothing may be kept that the answer did
                # not vouch for. No route does this; a new one that did would show up here.
                log.error("session_opened_after_response", path=path)
                await holder.session.rollback()
            return
        if capture.streaming or capture.start is None:
            return
        await self._commit_and_send(scope, send, holder, claim, capture.start, capture.parts)

    async def _commit_and_send(
        self,
        scope: Scope,
        send: Send,
        holder: RequestSession,
        claim: IdempotencyClaim | None,
        start: Message,
        parts: list[bytes],
    ) -> None:
        """Store a keyed success for replay, commit (roll back an error), then answer; a
        failed commit answers 500 `commit-failed` instead of the response it would belie."""
        path: str = scope["path"]
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
                await _discard(holder.get(), exc)
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
