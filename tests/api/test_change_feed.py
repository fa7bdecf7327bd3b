"""The change feed and the clock filters of the event list (issue 13 item 6, issue 12 item 4).

`GET /v1/events?updated_since=…&sort=updated_at` pages oldest change first on a keyset of
(updated_at, id); `sort=due_at`, `due_before` and `breached` read the running stage clock."""

from datetime import timedelta
from typing import Any

import httpx

from app.rules.vocabulary import Status
from tests.api import flow
from tests.api.flow import BUSINESS_ISSUE, url
from tests.conftest import MakeActor


async def _pages(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/events", params=query, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("too many pages")


async def test_the_change_feed_pages_oldest_change_first_and_misses_no_change(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    first = await flow.intake(client, cast.reporter, BUSINESS_ISSUE)
    since = flow.at(first["updated_at"]) - timedelta(seconds=1)
    events = [first] + [await flow.intake(client, cast.reporter, BUSINESS_ISSUE) for _ in range(4)]

    feed = await _pages(
        client, cast.desk.headers, updated_since=since.isoformat(), sort="updated_at", limit=2
    )
    assert [e["id"] for e in feed] == [e["id"] for e in events]
    stamps = [flow.at(e["updated_at"]) for e in feed]
    assert stamps == sorted(stamps)

    # A change made after the sync read the event moves it to the end of the next sync.
    await flow.classify(client, cast.desk, first["id"], BUSINESS_ISSUE)
    resume = flow.at(feed[-1]["updated_at"])
    again = await _pages(
        client, cast.desk.headers, updated_since=resume.isoformat(), sort="updated_at"
    )
    assert again[-1]["id"] == first["id"]
    assert again[-1]["version"] == first["version"] + 1


async def test_a_cursor_belongs_to_its_sort(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    for _ in range(3):
        await flow.intake(client, cast.reporter, BUSINESS_ISSUE)
    page = await client.get(
        "/v1/events", params={"sort": "updated_at", "limit": 1}, headers=cast.desk.headers
    )
    cursor = page.json()["next_cursor"]
    assert cursor is not None
    other = await client.get("/v1/events", params={"cursor": cursor}, headers=cast.desk.headers)
    assert other.status_code == 400
    assert other.json()["type"].endswith("/invalid-cursor")


async def test_due_sort_and_clock_filters_read_the_running_clock(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    urgent = await flow.intake(client, cast.reporter, BUSINESS_ISSUE, urgent=True)
    normal = await flow.intake(client, cast.reporter, BUSINESS_ISSUE)
    closed = await flow.walk(client, cast, BUSINESS_ISSUE, Status.CLOSED)

    listed = await _pages(client, cast.desk.headers, sort="due_at")
    ids = [e["id"] for e in listed]
    assert ids.index(urgent["id"]) < ids.index(normal["id"])  # 30 minutes before 8 hours
    assert closed["id"] not in ids  # nothing is timed once closed
    dues = [flow.at(e["sla"]["due_at"]) for e in listed]
    assert dues == sorted(dues)

    soon = flow.at(urgent["sla"]["due_at"]) + timedelta(minutes=1)
    before = await _pages(client, cast.desk.headers, due_before=soon.isoformat())
    assert urgent["id"] in [e["id"] for e in before]
    assert normal["id"] not in [e["id"] for e in before]

    late = await _pages(client, cast.desk.headers, breached="true")
    assert urgent["id"] not in [e["id"] for e in late]
    on_time = await _pages(client, cast.desk.headers, breached="false")
    assert {urgent["id"], normal["id"]} <= {e["id"] for e in on_time}
    shown = await flow.call(client, "GET", url(urgent["id"]), cast.desk)
    assert shown["sla"]["stage"] == "respond"
    assert 0 < shown["sla"]["remaining_seconds"] <= 1800
