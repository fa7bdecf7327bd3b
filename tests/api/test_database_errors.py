"""What a failing statement answers (review of issue 10, items 5 and 8).

* Item 5: only the SQLSTATEs of class 22 that a caller's value causes are a 422, logged at
  warning with the SQLSTATE and the route's template; any other class-22 error (a division by
  zero, a bad regular expression in our own SQL) is the service's fault: a logged 500.
* Item 8: after a statement times out on a hung server, the request's session is thrown away
  (invalidated) instead of rolled back, which would wait on the dead connection for another
  command timeout before the 503 could go out.
"""

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import errors
from app.core.db import SessionDep, driver_connection, make_engine
from tests.api.test_logging import capture_stderr, lines
from tests.conftest import build_app

STATEMENTS = {
    "text-as-int": "SELECT 'not a number'::int",  # 22P02: the caller's value
    "int-overflow": "SELECT 2147483647::int + 1",  # 22003
    "division": "SELECT 1 / 0",  # 22012: our own SQL's fault
    "regex": "SELECT 'a' ~ '('",  # 2201B
}


@pytest.mark.parametrize(
    ("case", "sqlstate", "status"),
    [
        ("text-as-int", "22P02", 422),
        ("int-overflow", "22003", 422),
        ("division", "22012", 500),
        ("regex", "2201B", 500),
    ],
)
async def test_only_input_caused_data_errors_are_422_and_each_is_logged(
    monkeypatch: pytest.MonkeyPatch,
    session_maker: async_sessionmaker[AsyncSession],
    case: str,
    sqlstate: str,
    status: int,
) -> None:
    written = capture_stderr(monkeypatch)
    app = build_app(session_maker)
    # A fresh logger on the captured stderr (module loggers are cached on first use).
    monkeypatch.setattr(errors, "log", structlog.get_logger(errors.__name__))

    @app.get("/test-only/data-error/{case}")
    async def data_error(case: str, session: SessionDep) -> dict[str, str]:
        await session.execute(sa.text(STATEMENTS[case]))
        return {}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(f"/test-only/data-error/{case}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    logged = [e for e in lines(written) if e["event"] != "request"]
    if status == 422:
        assert response.json()["type"].endswith("/validation-error")
        [line] = logged
        assert line["event"] == "database_refused_value"
        assert (line["level"], line["sqlstate"]) == ("warning", sqlstate)
        assert line["path"] == "/test-only/data-error/{case}"
    else:
        assert response.json()["type"].endswith("/internal-error")
        assert "unhandled_error" in [e["event"] for e in logged]
        assert sqlstate not in response.text


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_a_deadlock_or_serialization_failure_is_a_503_to_retry(
    monkeypatch: pytest.MonkeyPatch,
    session_maker: async_sessionmaker[AsyncSession],
    sqlstate: str,
) -> None:
    """A transaction PostgreSQL rolled back for a concurrent one (e.g. two changes meeting on
    the reporting rollup's shared rows) wrote nothing: 503 `retry-later` with `Retry-After`,
    logged at warning, never a 500. PostgreSQL itself raises the SQLSTATE here."""
    written = capture_stderr(monkeypatch)
    app = build_app(session_maker)
    monkeypatch.setattr(errors, "log", structlog.get_logger(errors.__name__))

    @app.get("/test-only/rolled-back")
    async def rolled_back(session: SessionDep) -> dict[str, str]:
        await session.execute(
            sa.text(
                f"DO $$ BEGIN RAISE EXCEPTION 'in the way' USING ERRCODE = '{sqlstate}'; END $$"
            )
        )
        return {}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/test-only/rolled-back")
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("/retry-later")
    assert response.headers["retry-after"] == "1"
    logged = [e for e in lines(written) if e["event"] != "request"]
    assert [(e["event"], e["sqlstate"]) for e in logged] == [("database_retry_later", sqlstate)]


class HangingProxy:
    """A TCP proxy in front of the test PostgreSQL that can hang: from `hang()` on it forwards
    nothing either way and holds new connections unanswered, as a hung server or a network
    that drops packets does."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.url = parsed
        socket_dir = parsed.query.get("host")
        self.socket: str | None = None
        if isinstance(socket_dir, str) and socket_dir.startswith("/"):
            [self.socket] = [
                str(p) for p in Path(socket_dir).glob(".s.PGSQL.*") if p.suffix != ".lock"
            ]
        self.hung = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"postgresql://{self.url.username}:@127.0.0.1:{port}/{self.url.database}"

    def hang(self) -> None:
        self.hung.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        if self.hung.is_set():
            return  # held open, never answered
        if self.socket is not None:
            up_reader, up_writer = await asyncio.open_unix_connection(self.socket)
        else:
            up_reader, up_writer = await asyncio.open_connection(self.url.host, self.url.port)
        self.writers.append(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self.tasks.add(task)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if self.hung.is_set():
                await asyncio.Event().wait()  # swallow: nothing goes through any more
            sink.write(data)
            await sink.drain()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.transport.abort()
        if self.server is not None:
            self.server.close()


COMMAND_TIMEOUT = 1.0


@pytest.mark.parametrize("through", ["orm", "driver"])
async def test_a_request_on_a_hung_server_ends_within_one_command_timeout(
    migrated_url: str, through: str
) -> None:
    """Item 8: the statement times out after `DB_COMMAND_TIMEOUT`; then the connection is
    closed at once instead of rolled back or closed gracefully on the hung server, either of
    which waited for another timeout. The request answers 503. Both ways a request runs SQL:
    through the ORM session, or a plain statement on its driver connection (as reads do)."""
    proxy = HangingProxy(migrated_url)
    engine = make_engine(
        await proxy.start(), pool_size=1, max_overflow=0, command_timeout=COMMAND_TIMEOUT
    )
    app = build_app(async_sessionmaker(engine, expire_on_commit=False))

    @app.get("/test-only/hang")
    async def hang(session: SessionDep) -> dict[str, str]:
        await session.execute(sa.text("SELECT 1"))
        proxy.hang()
        if through == "orm":
            await session.execute(sa.text("SELECT 2"))
        else:
            await (await driver_connection(session)).fetchval("SELECT 2")
        return {}

    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            started = time.monotonic()
            response = await client.get("/test-only/hang")
            elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("/service-unavailable")
        # The defect waited out a second timeout (2.0 s or more); one timeout plus a loaded
        # machine's delays stays under 1.9 (1.6 was exceeded once by 2 ms under load).
        assert elapsed < COMMAND_TIMEOUT * 1.9, elapsed
    finally:
        await proxy.close()
        await engine.dispose()
