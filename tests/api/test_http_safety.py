"""HTTP details of issue 15: a 500 carries `X-Request-ID` (item 3); every answer carries the
basic security headers, and repeated failed authentication from one client address is refused
with 429 and `Retry-After` (item 7)."""

import asyncio
import uuid

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import errors
from app.core.logging import add_request_id
from app.core.security_headers import API_CSP
from tests.conftest import Actor, build_app, intake_body

BAD_KEY = {"Authorization": "Bearer cle_" + "x" * 43}


def _client(app: FastAPI, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == API_CSP
    assert "frame-ancestors 'none'" in API_CSP
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"]


async def test_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    """Successes (a hot path, answered without a session, included), errors raised in the app
    and answers of the middleware layers (a 413 before routing) alike."""
    answers = [
        await client.get("/healthz"),
        await client.get("/v1/me", headers=desk.headers),
        await client.get("/v1/events", headers=desk.headers),
        await client.get("/v1/me"),
        await client.get("/v1/nothing-here", headers=desk.headers),
        await client.post(
            "/v1/events", content=b"x" * 2_000_000, headers=desk.headers | {"Idempotency-Key": "k"}
        ),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 401, 404, 413]
    for answer in answers:
        assert_security_headers(answer)


async def test_an_unexpected_error_answers_500_with_the_request_id(
    monkeypatch: pytest.MonkeyPatch, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """The 500 problem+json carries the caller's `X-Request-ID` (and the security headers),
    and the line that logs the error carries the same id."""
    monkeypatch.setattr(errors, "log", structlog.get_logger(errors.__name__))  # not cached
    app = build_app(session_maker)

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("internals: password=hunter2")

    async with _client(app) as client:
        with structlog.testing.capture_logs(processors=[add_request_id]) as logs:
            given = await client.get("/test-only/boom", headers={"X-Request-ID": "trace-500"})
            made = await client.get("/test-only/boom")
    assert given.status_code == made.status_code == 500
    assert given.headers["content-type"] == "application/problem+json"
    assert given.json()["type"].endswith("/internal-error")
    assert "hunter2" not in given.text
    assert given.headers["x-request-id"] == "trace-500"
    assert len(made.headers["x-request-id"]) == 32
    assert_security_headers(given)
    failures = [e for e in logs if e["event"] == "unhandled_error"]
    assert [e["request_id"] for e in failures] == ["trace-500", made.headers["x-request-id"]]
    access = [e for e in logs if e["event"] == "request"]
    assert [(e["status"], e["request_id"]) for e in access] == [
        (500, "trace-500"),
        (500, made.headers["x-request-id"]),
    ]


async def test_repeated_failed_authentication_is_refused_for_a_while(
    session_maker: async_sessionmaker[AsyncSession], desk: Actor
) -> None:
    """Three 401s from one address (a read and a keyed POST, which authenticates in the
    transaction layer): every request from it is 429 problem+json with `Retry-After`, a valid
    key included, until the window is over; other addresses are not affected."""
    app = build_app(session_maker, AUTH_FAILURE_LIMIT=3, AUTH_FAILURE_WINDOW_SECONDS=1)
    async with _client(app, "203.0.113.7") as guesser, _client(app, "198.51.100.2") as other:
        keyed = BAD_KEY | {"Idempotency-Key": str(uuid.uuid4())}
        failures = [
            await guesser.get("/v1/me", headers=BAD_KEY),
            await guesser.get("/v1/events", headers=BAD_KEY),
            await guesser.post("/v1/events", json=intake_body(), headers=keyed),
        ]
        assert [f.status_code for f in failures] == [401, 401, 401]
        refused = await guesser.get("/v1/me", headers=desk.headers)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/too-many-auth-failures")
        assert refused.headers["retry-after"] == "1"
        assert_security_headers(refused)
        assert (await guesser.get("/healthz")).status_code == 429

        assert (await other.get("/v1/me", headers=desk.headers)).status_code == 200
        assert (await other.get("/v1/me", headers=BAD_KEY)).status_code == 401

        await asyncio.sleep(1.05)
        assert (await guesser.get("/v1/me", headers=desk.headers)).status_code == 200


async def test_successes_do_not_count_toward_the_limit(
    session_maker: async_sessionmaker[AsyncSession], desk: Actor
) -> None:
    app = build_app(session_maker, AUTH_FAILURE_LIMIT=3)
    async with _client(app) as client:
        for _ in range(5):
            assert (await client.get("/v1/me", headers=desk.headers)).status_code == 200
            assert (await client.get("/v1/nothing", headers=desk.headers)).status_code == 404
        assert (await client.get("/v1/me", headers=BAD_KEY)).status_code == 401
        assert (await client.get("/v1/me", headers=BAD_KEY)).status_code == 401
        assert (await client.get("/v1/me", headers=desk.headers)).status_code == 200


async def test_a_limit_of_zero_never_refuses(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    app = build_app(session_maker, AUTH_FAILURE_LIMIT=0)
    async with _client(app) as client:
        for _ in range(30):
            assert (await client.get("/v1/me", headers=BAD_KEY)).status_code == 401
