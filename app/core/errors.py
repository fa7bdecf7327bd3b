"""Errors as classes with a status and a stable `type`, rendered once as RFC 9457 problem+json."""

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import asyncpg
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.logging import route_path
from app.core.unavailable import database_unavailable, log_unavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://closed-loop-events.dev/problems/"

log = structlog.get_logger(__name__)


class AppError(Exception):
    """Base of every error the service answers on purpose."""

    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    def headers(self) -> Mapping[str, str]:
        return {}


class Temporary(AppError):
    """An error that passes: the client may send the request again after `retry_after`
    seconds, as the `Retry-After` header says."""

    retry_after: int = 5

    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unauthorized(AppError):
    status, type, title = 401, "unauthorized", "Missing or invalid API key"

    def headers(self) -> Mapping[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="closed-loop-events"'}


class Forbidden(AppError):
    status, type, title = 403, "forbidden", "Your role may not do this"


class NotFound(AppError):
    status, type, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, type, title = 409, "conflict", "Conflict"


class GateNotMet(AppError):
    status, type, title = 409, "gate-not-met", "Required steps are missing"

    def __init__(self, missing: Sequence[str], detail: str | None = None) -> None:
        super().__init__(detail or "Missing: " + ", ".join(missing), missing=list(missing))


class TransitionNotAllowedError(AppError):
    status, type, title = 409, "transition-not-allowed", "This action is not allowed now"

    def __init__(
        self, status: str, action: str, allowed: Sequence[str], *, what: str = "an event"
    ) -> None:
        # `what`: an event, a spot check, a rectification order (R5.2, R5.3).
        super().__init__(
            f"Cannot {action} {what} that is {status}",
            status_now=status,
            action=action,
            allowed=list(allowed),
        )


class PreconditionFailed(AppError):
    status, type, title = 412, "precondition-failed", "The event has changed (stale If-Match)"


class PayloadTooLarge(AppError):
    status, type, title = 413, "payload-too-large", "Request body too large"


class MalformedJson(AppError):
    """A body that is not I-JSON (RFC 7493), e.g. with a key twice in one object (issue 10
    item 12); the same problem type as a body that does not parse."""

    status, type, title = 400, "malformed-json", "Malformed JSON body"


class UnsupportedMediaType(AppError):
    """A request body that is not JSON (issue 10 item 12)."""

    status, type, title = 415, "unsupported-media-type", "Unsupported media type"


class LastAdmin(AppError):
    """Removing the last active admin would leave nobody to administer (issue 10 item 11)."""

    status, type, title = 409, "last-admin", "The last active admin cannot be removed"


class Unprocessable(AppError):
    status, type, title = 422, "validation-error", "The request is not valid"


class ExternalRefTaken(AppError):
    """An intake's `external_ref {system, id}` names an event the caller may not see: the
    pair is unique service-wide (product.md section 4: never a duplicate), so it is refused,
    saying nothing of that event (review of issue 10, item 11)."""

    status, type, title = 409, "external-ref-taken", "This external_ref is taken"


class IdempotencyKeyReused(AppError):
    status, type, title = (
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused with another request",
    )


class IdempotencyInFlight(AppError):
    status, type, title = (
        409,
        "idempotency-in-flight",
        "A request with this Idempotency-Key is running",
    )


class ServiceUnavailable(Temporary):
    """PostgreSQL cannot be reached now (issue 10 item 3); the client may retry after a while."""

    status, type, title = 503, "service-unavailable", "The service is temporarily unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "The database cannot be reached; retry later.")


class TooManyAuthFailures(Temporary):
    """This client address failed authentication too often; every request from it is refused
    until `Retry-After` (issue 15 item 7, `app.core.abuse`)."""

    status, type, title = 429, "too-many-auth-failures", "Too many failed authentications"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed authentications from this client; retry after {retry_after} seconds."
        )
        self.retry_after = retry_after


class TooManyExports(Temporary):
    """Every streamed export slot of this process is in use (`EXPORT_MAX_CONCURRENT`)."""

    status, type, title = 429, "too-many-exports", "Too many exports at once"

    def __init__(self) -> None:
        super().__init__("Every export slot is streaming; retry in a few seconds.")


class IdempotencySecretWithheld(AppError):
    """A replay of a request whose first answer carried a secret (never stored, issue 10)."""

    status, type, title = (
        409,
        "idempotency-secret-withheld",
        "The first response carried a secret and is not replayed",
    )

    def __init__(self, location: str | None = None, resource: dict[str, Any] | None = None) -> None:
        detail = (
            "The request with this Idempotency-Key succeeded; its response carried a secret "
            "that is shown once and never stored. "
        )
        # `resource`: the first response without its secret fields (review of issue 10, 3).
        extensions: dict[str, Any] = {"resource": resource} if resource is not None else {}
        if location:
            detail += f"The resource it created is at {location}."
            extensions["location"] = location
        super().__init__(detail.strip(), **extensions)
        self.location = location

    def headers(self) -> Mapping[str, str]:
        return {"Location": self.location} if self.location else {}


def problem_body(
    *, status: int, type_: str, title: str, detail: str, instance: str | None = None, **ext: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_ if type_ != "about:blank" else type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(ext)
    return body


def raw_problem(error: AppError, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, ASGI headers and body of `error` as problem+json, for the middlewares that
    answer by themselves (the 503 of an outage, the 429 of the failed-auth guard)."""
    body = json.dumps(
        problem_body(
            status=error.status,
            type_=error.type,
            title=error.title,
            detail=error.detail,
            instance=path,
        )
    ).encode()
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    headers.append((b"content-length", str(len(body)).encode()))
    return error.status, headers, body


def problem_response(
    body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        dict(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


# The problem of each HTTP error the framework raises (routing, body parsing): the one of the
# service's own error for that status, where it has one.
_HTTP_TYPES: Mapping[int, tuple[str, str]] = {
    **{
        error.status: (error.type, error.title)
        for error in (
            AppError,
            Unauthorized,
            Forbidden,
            NotFound,
            PayloadTooLarge,
            UnsupportedMediaType,
        )
    },
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
}


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        errors.append(
            {"field": ".".join(loc), "message": err.get("msg", ""), "code": err.get("type", "")}
        )
    return errors


def allowed_methods(request: Request) -> str:
    """`Allow` for a 405 (RFC 9110 section 10.2.1; issue 10, item 9): every method that some
    route serves at this path. The router answers 405 from the first route whose path matched,
    with that route's methods only, though a path is often served by several routes (GET and
    PATCH). Only on 405s: one regular-expression match per route."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


# The SQLSTATEs of class 22 that a caller's value causes (review of issue 10, item 5): too
# long for its column (22001), a number out of range (22003), a malformed or out-of-range time
# (22007, 22008), bad UTF-8 (22021), text that is not of its type (22P02), bytes PostgreSQL
# cannot store (22P05). Any other class-22 error (a division by zero, a bad regular
# expression...) is the service's own fault: a logged 500, not the caller's 422.
INPUT_DATA_STATES = frozenset({"22001", "22003", "22007", "22008", "22021", "22P02", "22P05"})


# A transaction PostgreSQL rolled back because another one got in its way (a deadlock,
# 40P01, e.g. on the reporting rollup's shared rows; a serialization failure, 40001): nothing
# was written, and the same request will very likely go through when sent again.
RETRY_STATES = frozenset({"40001", "40P01"})


def _sqlstate_in(exc: BaseException, states: frozenset[str]) -> str | None:
    """The SQLSTATE behind `exc` when it is one of `states`, else None."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and code in states:
            return code
    return None


def _input_data_state(exc: BaseException) -> str | None:
    """The SQLSTATE behind `exc` when it is one a caller's value causes, else None."""
    return _sqlstate_in(exc, INPUT_DATA_STATES)


class RetryLater(Temporary):
    """PostgreSQL rolled the change back because of a concurrent one; nothing was written."""

    status, type, title = 503, "retry-later", "A concurrent change got in the way"
    retry_after = 1

    def __init__(self) -> None:
        super().__init__("Nothing was written; send the same request again.")


def _input_data_problem(request: Request, exc: BaseException) -> JSONResponse | None:
    """422 for a value PostgreSQL cannot store, logged at warning with its SQLSTATE and the
    route's template (never the statement or the value); None for any other error."""
    sqlstate = _input_data_state(exc)
    if sqlstate is None:
        return None
    log.warning("database_refused_value", sqlstate=sqlstate, path=route_path(request.scope))
    return problem_response(_data_problem(request), 422)


def _data_problem(request: Request) -> dict[str, Any]:
    return problem_body(
        status=422,
        type_="validation-error",
        title="The request is not valid",
        detail="A value is outside what can be stored",
        instance=request.url.path,
    )


async def _app_error(request: Request, exc: AppError) -> JSONResponse:
    body = problem_body(
        status=exc.status,
        type_=exc.type,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        **exc.extensions,
    )
    return problem_response(body, exc.status, exc.headers())


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = _field_errors(exc)
    malformed = any(e["code"] == "json_invalid" for e in errors)
    body = problem_body(
        status=422 if not malformed else 400,
        type_="malformed-json" if malformed else "validation-error",
        title="Malformed JSON body" if malformed else "The request is not valid",
        detail="; ".join(f"{e['field']}: {e['message']}" for e in errors)[:2000],
        instance=request.url.path,
        errors=errors,
    )
    return problem_response(body, body["status"])


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    type_, title = _HTTP_TYPES.get(exc.status_code, ("about:blank", "HTTP error"))
    body = problem_body(
        status=exc.status_code,
        type_=type_,
        title=title,
        detail=str(exc.detail) if exc.detail else title,
        instance=request.url.path,
    )
    headers = getattr(exc, "headers", None)
    allowed = allowed_methods(request) if exc.status_code == 405 else ""
    if allowed:
        headers = {**(headers or {}), "Allow": allowed}
    return problem_response(body, exc.status_code, headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL cannot store (`INPUT_DATA_STATES`: the caller's input) is a 422
    answered here, inside the app, so the request ends cleanly on a kept connection;
    anything else goes on up (to `OutageMiddleware` or the 500 handler)."""
    retry = _sqlstate_in(exc, RETRY_STATES)
    if retry is not None:
        log.warning("database_retry_later", sqlstate=retry, path=route_path(request.scope))
        return await _app_error(request, RetryLater())
    answer = _input_data_problem(request, exc)
    if answer is None:
        raise exc
    return answer


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    cause = database_unavailable(exc)
    if cause is not None:
        # Normally answered by OutageMiddleware; this covers an app built without it.
        log_unavailable(request.url.path, cause)
        unavailable = ServiceUnavailable()
        return problem_response(
            problem_body(
                status=unavailable.status,
                type_=unavailable.type,
                title=unavailable.title,
                detail=unavailable.detail,
                instance=request.url.path,
            ),
            unavailable.status,
            unavailable.headers(),
        )
    answer = _input_data_problem(request, exc)  # normally answered by `_database_error`
    if answer is not None:
        return answer
    log.exception("unhandled_error", path=request.url.path)
    body = problem_body(
        status=500,
        type_="internal-error",
        title="Internal server error",
        detail="An unexpected error occurred; it has been logged.",
        instance=request.url.path,
    )
    return problem_response(body, 500)


def install_error_handlers(app: FastAPI) -> None:
    """Every error, including validation, 404, 405 and unexpected 500s, becomes problem+json."""
    app.exception_handler(AppError)(_app_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(sqlalchemy.exc.DBAPIError)(_database_error)
    app.exception_handler(asyncpg.DataError)(_database_error)
    app.exception_handler(Exception)(_unexpected)
