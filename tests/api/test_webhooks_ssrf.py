"""Item 5 of issue 13: endpoint URLs that may not be called are refused unless
`WEBHOOK_ALLOW_PRIVATE_TARGETS=true` (plain http, loopback, private, link-local, metadata), and
the address is checked again on every connection the delivery client opens. Host names
resolve through `app.webhooks.ssrf.resolve`, replaced here (no real DNS)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.runner.job import Piece
from app.webhooks import ssrf
from app.webhooks.config import WebhookSettings, get_webhook_settings
from app.webhooks.delivery import Deliverer
from tests.api.flow import call, refused
from tests.conftest import Actor, intake_body

HOOKS = "/v1/webhook-endpoints"
PUBLIC = "93.184.215.14"
DNS: dict[str, list[str]] = {
    "hooks.example.com": [PUBLIC],
    "intranet.example.com": ["10.20.30.40"],
    "sneaky.example.com": [PUBLIC, "192.168.1.5"],
    "metadata.example.com": ["169.254.169.254"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
}


@pytest.fixture
def strict() -> WebhookSettings:
    return WebhookSettings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False)


@pytest.fixture(autouse=True)
def _strict_settings(
    app: FastAPI, strict: WebhookSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.dependency_overrides[get_webhook_settings] = lambda: strict

    async def resolve(host: str, _port: int) -> list[str]:
        if host not in DNS:
            raise OSError(f"unknown host {host}")
        return list(DNS[host])

    monkeypatch.setattr(ssrf, "resolve", resolve)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/hook", "https"),
        ("http://hooks.example.com/hook", "https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://metadata.example.com/x", "metadata"),
        ("https://intranet.example.com/hook", "private"),
        ("https://sneaky.example.com/hook", "private"),
        ("https://mapped.example.com/hook", "loopback"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://100.64.1.1/hook", "public"),
        ("https://nowhere.example.com/hook", "does not resolve"),
        ("https://user:pw@hooks.example.com/hook", "credentials"),
    ],
)
async def test_unsafe_targets_are_refused_without_the_setting(
    client: httpx.AsyncClient, admin: Actor, url: str, why: str
) -> None:
    problem = await refused(client, "POST", HOOKS, admin, json={"url": url}, status=422)
    assert problem["type"].endswith("/unsafe-webhook-target"), problem
    assert why in problem["detail"], problem


async def test_a_public_https_url_is_accepted_and_a_change_to_a_private_one_refused(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    created = await call(
        client, "POST", HOOKS, admin, json={"url": "https://hooks.example.com/x"}, expect=201
    )
    problem = await refused(
        client,
        "PATCH",
        f"{HOOKS}/{created['id']}",
        admin,
        json={"url": "https://intranet.example.com/x"},
        status=422,
    )
    assert problem["type"].endswith("/unsafe-webhook-target")


async def test_the_setting_allows_private_targets(
    client: httpx.AsyncClient, admin: Actor, app: FastAPI
) -> None:
    app.dependency_overrides[get_webhook_settings] = lambda: WebhookSettings(
        WEBHOOK_ALLOW_PRIVATE_TARGETS=True
    )
    for url in ("http://127.0.0.1:9/hook", "https://intranet.example.com/hook"):
        await call(client, "POST", HOOKS, admin, json={"url": url}, expect=201)


@pytest.fixture
async def deliverer(strict: WebhookSettings) -> AsyncIterator[Deliverer]:
    deliverer = Deliverer(strict, jitter=lambda _a, _b: 1.0)
    yield deliverer
    await deliverer.close()


async def test_the_address_is_checked_again_when_delivering(
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
) -> None:
    """A name that was public when the endpoint was registered and now resolves to a private
    address (DNS rebinding) is refused by the connection itself: no request leaves."""
    created = await call(
        client, "POST", HOOKS, admin, json={"url": "https://hooks.example.com/x"}, expect=201
    )
    DNS["hooks.example.com"] = ["10.0.0.7"]
    try:
        await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
        for work in (deliverer.fanout, deliverer.deliver):
            async with session_maker() as session, session.begin():
                await work(Piece(session=session, now=utcnow(), holder="test"))
    finally:
        DNS["hooks.example.com"] = [PUBLIC]
    log = await call(client, "GET", f"{HOOKS}/{created['id']}/deliveries", admin)
    [attempt] = log["items"]
    assert attempt["status_code"] is None
    assert attempt["outcome"] == "retrying"
    assert "refused" in attempt["error"]
    assert "10.0.0.7" in attempt["error"]
    assert "a private address" in attempt["error"]
