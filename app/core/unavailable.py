"""Is this error "PostgreSQL cannot be reached"? (issue 10, item 3)

The classification behind `OutageMiddleware` (and the 500 handler's fallback): a handful of
connection-class errors, whether raised by asyncpg, by SQLAlchemy around it, or as a socket or
timeout error from the database layer. Logged as one line without SQL or parameters.
"""

import logging
import os
from types import TracebackType

import asyncpg
import sqlalchemy.exc
import structlog

log = structlog.get_logger("app.core.outage")

# SQLSTATEs that mean "PostgreSQL cannot serve now", not "this request is wrong":
# class 08 (connection exception), 57P01-57P05 (shutdown, crash, cannot connect now, database
# dropped, idle session timeout), 53300 (too many connections).
_UNAVAILABLE_PREFIXES = ("08", "57P0")
_UNAVAILABLE_STATES = frozenset({"53300"})
# asyncpg's InterfaceError is mostly misuse (a bug); only these mean the way in is gone.
_CLOSED_MESSAGES = ("connection is closed", "pool is closed", "pool is closing")
# asyncpg's InternalClientError on a connection whose protocol still waits for the end of an
# error the server sent as it shut down (state 2, "error consume"), or gave up on it: the
# connection is unusable, as a request in flight when PostgreSQL stops finds (issue 15 item 6).
_BROKEN_PROTOCOL_MESSAGES = ("another operation (2) is in progress", 'in the "failed" state')
# OSError and TimeoutError are connection failures only when raised by the database layer.
_DATABASE_SOURCES = (
    os.sep + "asyncpg" + os.sep,
    os.sep + "sqlalchemy" + os.sep,
    os.path.join("app", "core", "db.py"),
)
_MAX_CHAIN = 8


def _raised_by_database_layer(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if any(source in filename for source in _DATABASE_SOURCES):
            return True
        traceback = traceback.tb_next
    return False


def _is_unavailable(exc: BaseException, traceback: TracebackType | None) -> bool:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # the ORM pool's checkout timed out
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate.startswith(_UNAVAILABLE_PREFIXES) or sqlstate in _UNAVAILABLE_STATES
    ):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        return any(message in str(exc) for message in _CLOSED_MESSAGES)
    if isinstance(exc, asyncpg.InternalClientError):
        return any(message in str(exc) for message in _BROKEN_PROTOCOL_MESSAGES)
    if isinstance(exc, OSError | TimeoutError):
        # Connection refused or reset, socket missing, connect/acquire/command timeout.
        return _raised_by_database_layer(traceback)
    return False


def database_unavailable(exc: BaseException) -> BaseException | None:
    """The connection-class error behind `exc` (itself, a SQLAlchemy wrapper's `orig`, or a
    cause), or None when `exc` is not about reaching PostgreSQL. The innermost match is
    returned: SQLAlchemy's wrappers carry the statement and its parameters, so only the
    driver's own error is fit to be logged."""
    found: BaseException | None = None
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    # The outermost traceback holds every frame from the middleware down to the raise.
    traceback = exc.__traceback__
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _is_unavailable(current, current.__traceback__ or traceback):
            found = current
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return found


def _describe(cause: BaseException) -> str:
    if isinstance(cause, sqlalchemy.exc.SQLAlchemyError):
        return type(cause).__name__  # its text holds SQL and parameters: not for the log
    return f"{type(cause).__name__}: {str(cause)[:200]}"


def log_unavailable(path: str, cause: BaseException) -> None:
    """The one line a request that could not reach PostgreSQL leaves in the log."""
    log.warning("database_unavailable", path=path, error=_describe(cause))


class _ConciseReconnectLog(logging.Filter):
    """asyncpg's pool restores its connection floor in the background and logs every failed
    attempt with a traceback (backing off from 1 to 60 s); during an outage that is noise.
    A connection-class failure becomes one line with the error's name and message."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        cause = database_unavailable(exc) if exc is not None else None
        if cause is not None:
            record.msg = f"{record.getMessage()}: {_describe(cause)}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_RECONNECT_FILTER = _ConciseReconnectLog()


def quiet_reconnect_log() -> None:
    """Install the concise reconnect log on asyncpg's pool logger (once)."""
    logger = logging.getLogger("asyncpg.pool")
    if _RECONNECT_FILTER not in logger.filters:
        logger.addFilter(_RECONNECT_FILTER)
