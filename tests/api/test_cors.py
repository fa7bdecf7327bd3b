"""CORS for browser apps on other origins (issue 16 item 2; app/core/cors.py).

Off by default: an OPTIONS is a 405 like any unsupported method (tests/api/test_allow.py) and
no answer carries CORS headers. With `CORS_ALLOW_ORIGINS`, a preflight from an allowed origin
is answered with the CORS headers (not 405), one from any other origin gets none, and answers
to an allowed origin expose the headers scripts read.
"""

from collections.abc import AsyncGenerator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.cors import EXPOSE_HEADERS
from tests.conftest import Actor, build_app, intake_body

ALLOWED = "https://console.example.com"
OTHER = "https://evil.example.net"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key, if-match",
}


@pytest.fixture
async def cors_client(
    session_maker: async_sessionmaker[AsyncSession],
) -> AsyncGenerator[httpx.AsyncClient]:
    app = build_app(session_maker, CORS_ALLOW_ORIGINS=f"{ALLOWED}, https://other.example.com")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _exposed(response: httpx.Response) -> set[str]:
    header = response.headers.get("access-control-expose-headers", "")
    return {h.strip().lower() for h in header.split(",") if h.strip()}


async def test_a_preflight_from_an_allowed_origin_is_answered(
    cors_client: httpx.AsyncClient,
) -> None:
    for path in ("/v1/events", "/v1/events/EV-2026-000001/classification"):
        response = await cors_client.options(path, headers={"Origin": ALLOWED, **PREFLIGHT})
        assert response.status_code == 200, (path, response.text)
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert "POST" in response.headers["access-control-allow-methods"]
        allowed = response.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "idempotency-key", "if-match"):
            assert header in allowed


async def test_a_preflight_from_another_origin_gets_no_cors_headers(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options("/v1/events", headers={"Origin": OTHER, **PREFLIGHT})
    assert response.status_code != 200
    assert "access-control-allow-origin" not in response.headers


async def test_answers_to_an_allowed_origin_expose_the_headers_scripts_read(
    cors_client: httpx.AsyncClient, reporter: Actor
) -> None:
    response = await cors_client.post(
        "/v1/events", json=intake_body(), headers={"Origin": ALLOWED, **reporter.headers}
    )
    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = _exposed(response)
    assert {h.lower() for h in EXPOSE_HEADERS} <= exposed
    assert {"etag", "link", "location", "x-request-id", "idempotent-replayed"} <= exposed
    problem = await cors_client.get("/v1/me", headers={"Origin": ALLOWED})
    assert problem.status_code == 401
    assert problem.headers["access-control-allow-origin"] == ALLOWED  # errors are readable too


async def test_answers_to_another_origin_carry_no_cors_headers(
    cors_client: httpx.AsyncClient, reporter: Actor
) -> None:
    response = await cors_client.get("/v1/me", headers={"Origin": OTHER, **reporter.headers})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options("/v1/events", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers
    response = await client.get("/healthz", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in response.headers
