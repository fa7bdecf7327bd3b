"""GET /metrics (issue 16, item 5): Prometheus' text format, parsed with prometheus_client's
own parser; a request counts under its route's template; who may read it (open, or
METRICS_TOKEN); the pool gauges. The runner's, the webhooks' and the stage clocks' metrics are
tested beside their own tests (test_runner.py, test_webhooks.py, test_clocks.py)."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asyncpg import Pool
from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import metrics
from tests.conftest import Actor, build_app

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape by name and labels (the parser refuses a malformed text)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_a_request_counts_under_its_route_template_method_and_status(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    before = await scrape(client)
    missing = uuid.uuid4()
    for _ in range(2):
        got = await client.get(f"/v1/events/{missing}", headers=admin.headers)
        assert got.status_code == 404
    secret_path = "/no/such/path/cle_" + "x" * 40
    assert (await client.get(secret_path)).status_code == 404
    text = (await client.get("/metrics")).text
    after = parse(text)

    route = {"route": "/v1/events/{event_id}", "method": "GET"}
    counted = value(after, "cle_http_requests_total", **route, status="404") - value(
        before, "cle_http_requests_total", **route, status="404"
    )
    assert counted == 2
    timed = value(after, "cle_http_request_duration_seconds_count", **route) - value(
        before, "cle_http_request_duration_seconds_count", **route
    )
    assert timed == 2
    unmatched = {"route": metrics.UNMATCHED, "method": "GET", "status": "404"}
    assert (
        value(after, "cle_http_requests_total", **unmatched)
        - value(before, "cle_http_requests_total", **unmatched)
        == 1
    )
    # No raw path, no id, no secret-looking segment: templates only.
    assert str(missing) not in text
    assert "cle_xxxx" not in text
    # The scrape before this one counted too.
    assert value(after, "cle_http_requests_total", route="/metrics", method="GET", status="200")


async def test_an_unknown_method_is_one_label_value(client: httpx.AsyncClient) -> None:
    """A client's made-up methods cannot grow the label set."""
    before = await scrape(client)
    for method in ("BREW", "WHEN", "PROPFIND"):
        assert (await client.request(method, "/healthz")).status_code == 405
    after = await scrape(client)
    other = {"route": "/healthz", "method": metrics.OTHER_METHOD, "status": "405"}
    assert (
        value(after, "cle_http_requests_total", **other)
        - value(before, "cle_http_requests_total", **other)
        == 3
    )
    assert not any(("BREW" in dict(labels).values()) for _name, labels in after)


@pytest.fixture
async def guarded(
    session_maker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(session_maker, METRICS_TOKEN="scrape-me-only")
    async with _client(app) as client:
        yield client


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_with_metrics_token_only_its_bearer_reads_metrics(
    guarded: httpx.AsyncClient, admin: Actor
) -> None:
    """METRICS_TOKEN: a credential that reads the metrics and nothing else; not even an
    admin's API key reads them (the scraper never holds one)."""
    for headers in ({}, {"Authorization": "Bearer wrong"}, admin.headers):
        refused = await guarded.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"].startswith("Bearer")
    allowed = await scrape(guarded, Authorization="Bearer scrape-me-only")
    assert any(name == "cle_http_requests_total" for name, _labels in allowed)
    # The token works for nothing else.
    me = await guarded.get("/v1/me", headers={"Authorization": "Bearer scrape-me-only"})
    assert me.status_code == 401


async def test_metrics_enabled_false_answers_404(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    async with _client(build_app(session_maker, METRICS_ENABLED=False)) as client:
        got = await client.get("/metrics")
    assert got.status_code == 404
    assert got.headers["content-type"] == "application/problem+json"


async def test_pool_gauges_show_the_hot_path_pool(
    session_maker: async_sessionmaker[AsyncSession], pool: Pool
) -> None:
    async with _client(build_app(session_maker, pool)) as client:
        samples = await scrape(client)
    size = value(samples, "cle_db_pool_size", pool="asyncpg")
    assert size == pool.get_max_size()
    in_use = value(samples, "cle_db_pool_connections", pool="asyncpg", state="in_use")
    idle = value(samples, "cle_db_pool_connections", pool="asyncpg", state="idle")
    assert in_use + idle == pool.get_size()
    assert value(samples, "cle_db_pool_waiting", pool="asyncpg") == 0


def test_every_metric_is_labelled() -> None:
    """A metric without labels makes its value (a file, in multiprocess mode) when it is
    defined, that is on import; `python -m app serve` empties PROMETHEUS_MULTIPROC_DIR after
    importing this module, which would unlink such a file under the serving process."""
    defined = [
        metric
        for metric in vars(metrics).values()
        if isinstance(metric, Counter | Gauge | Histogram)
    ]
    assert len(defined) >= 9
    assert all(metric._labelnames for metric in defined)


def test_a_dead_workers_live_gauges_are_forgotten(tmp_path: Path) -> None:
    """A worker killed without stopping leaves its pool gauges; the next scrape drops them."""
    dead_pid = 2**22 + 17  # above Linux's pid_max default: no such process
    live = tmp_path / f"gauge_livesum_{dead_pid}.db"
    mine = tmp_path / "gauge_livesum_1.db"  # init: alive
    counter = tmp_path / f"counter_{dead_pid}.db"  # a dead worker's counts still count
    for path in (live, mine, counter):
        path.write_bytes(b"")
    assert metrics.forget_dead_workers(str(tmp_path)) == [dead_pid]
    assert not live.exists()
    assert mine.exists()
    assert counter.exists()
