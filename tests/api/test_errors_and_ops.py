"""Problem+json for every error, request ids, health and readiness (issue 2, points 8-9)."""

import httpx
import sqlalchemy as sa
import structlog
from fastapi import BackgroundTasks, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from app.core.db import make_engine
from app.core.logging import RequestLogMiddleware, add_request_id, request_id
from app.core.migrations import head_revision
from app.directory import service as directory
from app.directory.schemas import DepartmentCreate
from tests.conftest import Actor, build_app, intake_body


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/not-found")


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient, desk: Actor) -> None:
    response = await client.delete("/v1/events", headers=desk.headers)
    assert response.status_code == 405
    assert response.json()["type"].endswith("/method-not-allowed")


async def test_unexpected_error_is_500_problem_without_trace(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    app: FastAPI = build_app(session_maker)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/internal-error")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) >= 16
    again = await client.get("/healthz")
    assert again.headers["x-request-id"] != made.headers["x-request-id"]


async def test_unusable_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    for bad in ("x" * 129, "tab\there"):
        response = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"] != bad
        assert len(response.headers["x-request-id"]) == 32


async def test_request_id_is_bound_while_handling_and_logged() -> None:
    seen: list[str | None] = []

    async def inner(_scope: Scope, _receive: Receive, send: Send) -> None:
        seen.append(request_id.get())
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = RequestLogMiddleware(inner)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        with structlog.testing.capture_logs(processors=[add_request_id]) as logs:
            response = await client.post("/v1/x", headers={"X-Request-ID": "req-7"})
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "req-7"
    assert seen == ["req-7"]
    assert request_id.get() is None  # reset after the request
    access = [e for e in logs if e["event"] == "request"]
    assert len(access) == 1
    assert access[0]["method"] == "POST"
    assert access[0]["path"] == "/v1/x"
    assert access[0]["status"] == 201
    assert access[0]["request_id"] == "req-7"  # the line is written while the id is bound
    assert access[0]["duration_ms"] >= 0


async def test_a_session_opened_after_the_answer_is_not_kept_and_is_reported(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """A response that went out before any session was opened is passed straight through; a
    write made after it (here by a background task) is not kept, and is logged as an error."""
    app: FastAPI = build_app(session_maker)

    @app.get("/late")
    async def late(request: Request, background: BackgroundTasks) -> dict[str, str]:
        async def write() -> None:
            session = request.state.session.get()
            await directory.create_department(session, DepartmentCreate(code="LATE", name="Late"))

        background.add_task(write)
        return {"status": "ok"}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        with structlog.testing.capture_logs() as logs:
            response = await client.get("/late")
    assert response.status_code == 200
    assert any(e["event"] == "session_opened_after_response" for e in logs)
    async with session_maker() as session:
        assert "LATE" not in await directory.known_department_codes(session)


async def test_healthz_and_readyz(
    client: httpx.AsyncClient, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """readyz reports the revision the database is really at and the code's head (issue 11,
    item 7: checked against both, read independently, not against each other)."""
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    async with session_maker() as session:
        stamped = await session.scalar(sa.text("SELECT version_num FROM alembic_version"))
    head = head_revision()
    assert stamped is not None
    assert head is not None
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "migrations": {"current": stamped, "head": head}}


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    """Nothing listens on port 1: the check answers 503 with Retry-After, not a 500."""
    engine = make_engine("postgresql://nobody@127.0.0.1:1/nothing", pool_size=1, max_overflow=0)
    try:
        app = build_app(async_sessionmaker(engine, expire_on_commit=False))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/readyz")
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}
    assert response.headers["retry-after"].isdigit()


async def test_readyz_is_503_when_migrations_are_behind(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    app = build_app(session_maker)
    app.state.head_revision = "a_newer_revision"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["migrations"]["head"] == "a_newer_revision"


async def test_nul_characters_are_422_not_500(client: httpx.AsyncClient, desk: Actor) -> None:
    """PostgreSQL text cannot hold NUL; it is refused before it reaches the database."""
    body = intake_body(title="a\u0000b")
    response = await client.post("/v1/events", json=body, headers=desk.headers)
    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]
    assert (await client.get("/v1/events/EV%00", headers=desk.headers)).status_code == 422
    query = await client.get("/v1/events", params={"q": "a\u0000"}, headers=desk.headers)
    assert query.status_code == 422
    escaped = intake_body(description="a literal \\u0000 in text is fine")
    assert (await client.post("/v1/events", json=escaped, headers=desk.headers)).status_code == 201


async def test_times_outside_the_supported_range_are_422(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    for moment in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"):
        response = await client.post(
            "/v1/events", json=intake_body(occurred_at=moment), headers=desk.headers
        )
        assert response.status_code == 422, moment
        listed = await client.get(
            "/v1/events", params={"created_from": moment}, headers=desk.headers
        )
        assert listed.status_code == 422, moment
    evaluate = await client.post(
        "/v1/policy/evaluate",
        json={
            "category": "business_issue",
            "subcategory": "workflow",
            "reported_at": "9999-12-31T20:00:00Z",
        },
        headers=desk.headers,
    )
    assert evaluate.status_code == 422


async def test_well_formed_but_foreign_cursor_is_400(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    import base64

    for payload in (b"[1]", b'{"i": 5}', b'{"v": 1, "t": 5, "i": "x"}', b"null"):
        cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        response = await client.get("/v1/events", params={"cursor": cursor}, headers=desk.headers)
        assert response.status_code == 400, payload


async def test_a_value_postgresql_cannot_store_is_a_clean_422(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """SQLSTATE class 22 raised by a statement is the caller's input: 422 problem+json answered
    inside the app, so no exception escapes to the server (which would log "Exception in ASGI
    application", count a 500 and drop the keep-alive connection; issue 10, item 5)."""
    from app.core.db import SessionDep

    app = build_app(session_maker)

    @app.get("/test-only/data-error")
    async def data_error(session: SessionDep) -> dict[str, int]:
        value = await session.scalar(sa.text("SELECT 'not a number'::int"))
        return {"value": int(value or 0)}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/test-only/data-error")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/validation-error")
