"""Structured JSON logs (structlog) with the request id bound to every line."""

import logging
import re
import sys
import time
from contextvars import ContextVar

import orjson
import structlog
import uuid_utils
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) else mask_path(scope["path"])


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


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr. The access log is `RequestLogMiddleware`'s; `serve` turns
    uvicorn's own off."""
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_request_id,
            mask_secret_paths,
            structlog.processors.format_exc_info,
            # orjson to bytes: structlog's recipe for speed (one line per request at INFO).
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.BytesLoggerFactory(file=sys.stderr.buffer),
        cache_logger_on_first_use=True,
    )


class RequestLogMiddleware:
    """The request id and the access log, in one layer around every HTTP request.

    * `X-Request-ID`: the caller's when it is valid (`valid_request_id`), else a new random
      one; sent back on the response and bound to every log line of the request.
    * One structured JSON line per request: method, path, status, duration. The path is the
      route's template (`route_path`): path parameters such as a survey token are not logged.

    Our own code rather than asgi-correlation-id plus a second layer: one layer less on every
    request (bench/README.md).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("access")

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
        token = request_id.set(rid)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.log.info(
                ACCESS_EVENT,
                method=scope["method"],
                path=route_path(scope),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            request_id.reset(token)
