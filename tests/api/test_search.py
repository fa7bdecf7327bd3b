"""Search that reads Chinese and English (issue 16 item 4), similar events and recurrence
(issue 14 item 4; R1.1, R5.4), through the app on a real PostgreSQL (README, Search)."""

# Chinese text is what these tests are about: its full-width punctuation is meant.
# ruff: noqa: RUF001, RUF002

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.auth import Principal
from app.core.db import driver_connection
from app.core.pagination import RANKED_SORT, Cursor
from app.core.search_text import DAY_BLOCK, search_day
from app.events import similar
from app.events.models import Event, SearchLexeme
from app.events.repository import hot
from app.rules import recurrence
from app.rules.policy import default_policy
from app.rules.vocabulary import Role, Status
from tests.api.conftest import Committed
from tests.api.flow import (
    BUSINESS_ISSUE,
    JSON,
    MakeActor,
    at,
    call,
    classification,
    make_cast,
    report,
    url,
    walk,
)
from tests.conftest import Actor


def _nonce() -> str:
    """A word no other test's event holds (the tests share one database)."""
    return "zq" + uuid.uuid4().hex[:10]


async def _ids(client: httpx.AsyncClient, actor: Actor, **params: Any) -> list[str]:
    response = await client.get("/v1/events", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["items"]]


async def _similar(
    client: httpx.AsyncClient, actor: Actor, event_id: str, **params: Any
) -> list[JSON]:
    page = await call(client, "GET", url(event_id, "/similar") + _query(params), actor)
    items: list[JSON] = page["items"]
    return items


def _query(params: dict[str, Any]) -> str:
    return "?" + str(httpx.QueryParams(params)) if params else ""


async def _classify(
    client: httpx.AsyncClient, desk: Actor, event_id: str, category: str, subcategory: str
) -> JSON:
    body = {"category": category, "subcategory": subcategory}
    return await call(client, "POST", url(event_id, "/classification"), desk, json=body)


# ---- q= ------------------------------------------------------------------------------------


async def test_a_two_character_chinese_word_is_found_inside_a_longer_run(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    """`q=快递` finds `客户投诉：快递延误两周`; a longer query is the phrase of its bigrams."""
    tag = _nonce()
    late = await report(client, desk, title="客户投诉：快递延误两周", description=f"编号 {tag}")
    other = await report(client, desk, title="打印机卡纸", description=f"编号 {tag}，递送单据")
    assert late["id"] in await _ids(client, desk, q="快递")
    assert late["id"] in await _ids(client, desk, q=f"延误两周 {tag}")
    assert await _ids(client, desk, q=f"快递 {tag}") == [late["id"]]
    # One character is a prefix: `递延` and `递送` both start with it.
    assert set(await _ids(client, desk, q=f"递 {tag}")) == {late["id"], other["id"]}
    # Characters that are not next to each other are no phrase, nor bigrams far apart.
    await report(client, desk, title="延误，误两，两周", description=f"编号 {tag}")
    assert await _ids(client, desk, q=f"延误两周 {tag}") == [late["id"]]
    assert await _ids(client, desk, q=f"快延 {tag}") == []
    assert await _ids(client, desk, q=f"投诉两周 {tag}") == []


async def test_english_words_match_by_prefix(client: httpx.AsyncClient, desk: Actor) -> None:
    """`fail` finds "fails"; every word of the query must match."""
    tag = _nonce()
    fails = await report(client, desk, title="Payment FAILS at checkout", description=tag)
    await report(client, desk, title="Printer offline", description=tag)
    assert await _ids(client, desk, q=f"fail {tag}") == [fails["id"]]
    assert await _ids(client, desk, q=f"pay check {tag}") == [fails["id"]]
    assert await _ids(client, desk, q=f"failure {tag}") == []
    # Full-width letters read as ASCII (NFKC).
    assert await _ids(client, desk, q=f"ｆａｉｌ {tag}") == [fails["id"]]


async def test_intake_lists_the_new_words_of_its_text_for_prefix_search(
    client: httpx.AsyncClient, desk: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """A prefix is spelled out as the words of `search_lexeme` (README, Search): intake's own
    statement adds the words of its text that its process does not know the table holds,
    numbers left out; the process then knows them, and an event with a new word is found by
    a prefix of it at once, in either order."""
    word = _nonce() + "ing"
    event = await report(client, desk, title=f"Turbine {word} 20261201", description="Cracked")
    async with session_maker() as session:
        found = await session.scalars(
            sa.select(SearchLexeme.lexeme).where(
                SearchLexeme.lexeme.in_([word, "20261201", "turbine", "cracked"])
            )
        )
        assert set(found) == {word, "turbine", "cracked"}
    assert hot.known_words.unknown(["cracked", "turbine", word]) == []
    assert await _ids(client, desk, q=word[:9]) == [event["id"]]
    assert await _ids(client, desk, q=word[:9], sort="relevance") == [event["id"]]
    assert await _ids(client, desk, q="2026120 " + word[:9]) == [event["id"]]


async def test_mixed_chinese_and_english_text(client: httpx.AsyncClient, desk: Actor) -> None:
    tag = _nonce()
    phone = await report(
        client, desk, title="iPhone15屏幕碎了", description=f"Screen cracked on delivery {tag}"
    )
    assert await _ids(client, desk, q=f"屏幕 screen {tag}") == [phone["id"]]
    assert await _ids(client, desk, q=f"iphone 碎了 {tag}") == [phone["id"]]
    assert await _ids(client, desk, q=f"屏幕 keyboard {tag}") == []


async def test_results_are_ranked_and_paged_in_rank_order(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    """`sort=relevance` ranks the matches of `q` (README, Search): the word in the title and
    often beats the word once in a long description; the default keeps newest first (every
    match, never a window); the relevance cursor walks every match once in rank order."""
    tag = _nonce()
    filler = " ".join(f"word{i}" for i in range(40))
    once = await report(client, desk, title=f"Note {tag}", description=f"{filler} 退款")
    title = await report(client, desk, title=f"退款 {tag}", description="客户要求退款，退款未到")
    middle = await report(client, desk, title=f"Refund {tag}", description="退款 请求")
    ranked = [title["id"], middle["id"], once["id"]]
    assert await _ids(client, desk, q=f"退款 {tag}", sort="relevance") == ranked
    newest = [middle["id"], title["id"], once["id"]]
    assert await _ids(client, desk, q=f"退款 {tag}", sort="created_at") == newest
    assert await _ids(client, desk, q=f"退款 {tag}") == newest
    assert await _relevance(client, desk, f"退款 {tag}", 1) == ranked  # a page at a time
    # A position in another order is no position in this one.
    by_time = await client.get(
        "/v1/events",
        params={"q": f"退款 {tag}", "limit": 1, "sort": "created_at"},
        headers=desk.headers,
    )
    mixed = await client.get(
        "/v1/events",
        params={"q": f"退款 {tag}", "sort": "relevance", "cursor": by_time.json()["next_cursor"]},
        headers=desk.headers,
    )
    assert mixed.status_code == 400
    refused = await client.get("/v1/events", params={"sort": "relevance"}, headers=desk.headers)
    assert refused.status_code == 422


async def test_a_query_with_nothing_to_search_finds_nothing(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    await report(client, desk, title="：：", description="……")
    assert await _ids(client, desk, q="：，。") == []


# ---- relevance: the newest matches, read a stretch of days at a time -----------------------


async def _relevance(
    client: httpx.AsyncClient, actor: Actor, q: str, limit: int, **filters: Any
) -> list[str]:
    """Every page of `q` in relevance order, through the cursor."""
    ids: list[str] = []
    params: dict[str, Any] = {"q": q, "sort": "relevance", "limit": limit, **filters}
    while True:
        response = await client.get("/v1/events", params=params, headers=actor.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            return ids
        params["cursor"] = page["next_cursor"]


async def test_relevance_ranks_the_newest_matches_of_a_frequent_word_only(
    client: httpx.AsyncClient, desk: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sort=relevance` ranks the newest SEARCH_CANDIDATES matches (README, Search), not every
    match: older events with the word in their title (which rank higher) are left out when
    enough newer ones hold it; the newer ones, ranked alike, come newest first. A word the
    older ones alone hold ranks them all; a prefix no word starts finds nothing."""
    monkeypatch.setattr(hot, "SEARCH_CANDIDATES", 12)
    tag = _nonce()
    older = [
        await report(client, desk, title=f"{tag} {tag}old", description=f"{tag} 退款")
        for _ in range(4)
    ]
    newer = []
    for n in range(16):
        if n % 3 == 0:
            await report(client, desk, title="Printer offline", description="Paper jam")
        newer.append(await report(client, desk, title="Note", description=f"Customer {tag}"))
    by_time = await _ids(client, desk, q=tag, limit=100)  # every match, newest first
    assert len(by_time) == 20
    ranked = await _relevance(client, desk, tag, limit=5)
    assert ranked == by_time[:12]
    # With filters (their parameters in every statement), one of the staff view's only.
    assert await _relevance(client, desk, tag, limit=5, status="reported") == ranked
    assert await _relevance(client, desk, tag, limit=5, urgent="false", severity="major") == []
    assert not {e["id"] for e in older} & set(ranked)
    # Ranking every match would have put the titles first.
    every = [e["id"] for e in older]
    assert set(await _relevance(client, desk, f"{tag}old", limit=5)) == set(every)
    assert await _relevance(client, desk, f"{tag[:-1]}", limit=5) == ranked
    assert await _relevance(client, desk, f"{tag}zz", limit=5) == []
    assert await _relevance(client, desk, f"{tag} 退款延误", limit=5) == []


def _principal(actor: Actor) -> Principal:
    return Principal(
        user_id=actor.id,
        api_key_id=None,
        name="Searcher",
        roles=frozenset(actor.roles),
        department_id=None,
        department=actor.department,
        service_account=False,
    )


async def _pages(
    connection: Any, actor: Actor, q: str, now: datetime, *, one_statement: bool
) -> list[str]:
    """Every page of `q` by relevance (3 rows a page): read by `hot.list_visible`, or by one
    statement over every match that keeps the newest SEARCH_CANDIDATES (`hot.list_query`)."""
    flt = hot.EventFilter(text=q, sort=RANKED_SORT)
    principal, cursor, ids = _principal(actor), None, []
    while True:
        if one_statement:
            sql, args = hot.list_query(principal, flt, cursor=cursor, limit=3, now=now)
            rows = [dict(r) for r in await connection.fetch(sql, *args)]
        else:
            rows = await hot.list_visible(
                connection, principal, flt, cursor=cursor, limit=3, now=now
            )
        ids += [str(r["id"]) for r in rows[:3]]
        if len(rows) <= 3:
            return ids
        last = rows[2]
        cursor = Cursor(last["sort_key"], last["id"], RANKED_SORT, last["rank"])


def _kind(sql: str) -> str:
    """What a statement of `hot.list_visible` reads: the newest events, days, or the rest."""
    if "event_search_days" in sql:
        return "days"
    return "rest" if "MATERIALIZED" in sql else "walk"


async def test_relevance_read_a_stretch_at_a_time_equals_one_statement_over_every_match(
    client: httpx.AsyncClient,
    desk: Actor,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`hot.list_visible` reads the newest events, then more of them or stretches of days
    before them, then the rest (README, Search); page by page it answers what one statement
    ranking the newest matches of every match answers: for a common word, a prefix of several
    words, a phrase, a word of one old event, words nobody wrote, as the desk, as a reporter
    who sees only their own events and as a handler (who sees the events they reported, in
    the reporter's view). Small sizes, so that every kind of read happens."""
    monkeypatch.setattr(hot, "SEARCH_WALK", 4)
    monkeypatch.setattr(hot, "SEARCH_CANDIDATES", 9)
    monkeypatch.setattr(hot, "SEARCH_DAYS", 80)
    tag, number = _nonce(), str(uuid.uuid4().int % 10**12 + 10**12)
    reporter = await make_actor(Role.REPORTER, department="SALES")
    handler = await make_actor(Role.HANDLER, department="IT")
    events = []
    for n in range(60):
        words = [tag] if n % 2 == 0 else []
        words += [f"{tag}x"] if n % 3 == 0 else []
        words += [f"{tag}r"] if n == 59 else []
        words += [f"{number}{n}"] if n % 6 == 1 else []  # numbers: read as prefixes
        title = f"{tag} 快递延误" if n % 7 == 0 else "Note"
        description = " ".join([*words, "快递延误两周" if n % 5 == 0 else "Paper jam"])
        author = reporter if n % 4 == 0 else handler if n % 4 == 1 else desk
        events.append(await report(client, author, title=title, description=description))
    now = datetime.now(UTC)
    async with session_maker() as session:
        for n, event in enumerate(events):  # newest first: a burst, then over 72 days
            moment = now - (
                timedelta(minutes=n) if n < 12 else timedelta(days=1.5 * (n - 11), hours=n % 5)
            )
            await session.execute(
                sa.update(Event).where(Event.id == uuid.UUID(event["id"])).values(created_at=moment)
            )
        await session.commit()
    async with session_maker() as session:
        connection = await driver_connection(session)
        for more in (50, 0):  # a longer walk when it finds enough, or days at once
            monkeypatch.setattr(hot, "SEARCH_WALK_MORE", more)
            for actor in (desk, reporter, handler):
                for q in (
                    *(tag, f"{tag}x", f"快递 {tag}", "延误两周", f"{tag}r", f"{tag}q", "误快"),
                    *(number, f"{number}1 {tag}", f"{number}3"),
                ):
                    expected = await _pages(connection, actor, q, now, one_statement=True)
                    assert await _pages(connection, actor, q, now, one_statement=False) == expected
            for actor in (desk, reporter):  # more matches than the newest 9
                assert len(await _pages(connection, actor, tag, now, one_statement=False)) == 9
        # Every kind of read happened: days through the search index, and the rest.
        for q, reads in ((tag, ["walk", "days"]), (f"{tag}r", ["walk", "days", "rest"])):
            trace: list[tuple[str, list[Any]]] = []
            flt = hot.EventFilter(text=q, sort=RANKED_SORT)
            await hot.list_visible(
                connection, _principal(desk), flt, cursor=None, limit=3, now=now, trace=trace
            )
            kinds = [_kind(sql) for sql, _ in trace]
            assert sorted(set(kinds), key=kinds.index) == reads, kinds
        # In the burst, walked on: the days of the index cannot tell its events apart.
        monkeypatch.setattr(hot, "SEARCH_WALK_MORE", 50)
        trace = []
        flt = hot.EventFilter(text=tag, sort=RANKED_SORT)
        await hot.list_visible(
            connection, _principal(desk), flt, cursor=None, limit=3, now=now, trace=trace
        )
        assert [_kind(sql) for sql, _ in trace] == ["walk", "walk"]


async def test_the_search_days_of_the_index_are_those_of_the_code(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """`event_search_days(created_at)`, the second key of the search index (migration
    4d9f2b6c7e14), is the day `search_day` counts and its block of DAY_BLOCK days."""
    moments = [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2026, 12, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 2, tzinfo=UTC),
        datetime(2026, 12, 2, 7, tzinfo=UTC) - timedelta(hours=9),
        datetime(1999, 12, 30, 12, tzinfo=UTC),
    ]
    async with session_maker() as session:
        for moment in moments:
            keys = await session.scalar(
                sa.text("SELECT event_search_days(CAST(:t AS timestamptz))"), {"t": moment}
            )
            day = search_day(moment)
            assert keys == [day, -1 - int(day / DAY_BLOCK)], moment


# ---- similar events ------------------------------------------------------------------------


async def test_similar_finds_the_chinese_pair_of_the_same_category(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    """`客户投诉：快递延误两周` finds the earlier `快递又延误了三天` with a score; an unrelated
    event, an event of another category and a later event are not suggested."""
    complaint, delivery = "customer_complaint", "delivery_time"
    earlier = await report(client, desk, title="快递又延误了三天", description="客户很不满意")
    await _classify(client, desk, earlier["id"], complaint, delivery)
    unrelated = await report(client, desk, title="服务态度差", description="前台接待不礼貌")
    await _classify(client, desk, unrelated["id"], complaint, "service_attitude")
    elsewhere = await report(client, desk, title="快递系统延误", description="系统慢")
    await _classify(client, desk, elsewhere["id"], "business_issue", "system_failure")
    event = await report(client, desk, title="客户投诉：快递延误两周", description="要求赔偿")
    classified = await _classify(client, desk, event["id"], complaint, delivery)
    later = await report(client, desk, title="快递延误两周", description="要求赔偿")
    await _classify(client, desk, later["id"], complaint, delivery)

    items = await _similar(client, desk, event["id"])
    found = {item["event_id"]: item for item in items}
    assert earlier["id"] in found
    assert 0 < found[earlier["id"]]["score"] < 1
    assert found[earlier["id"]]["ref"] == earlier["ref"]
    assert found[earlier["id"]]["recurrence"] is False  # not closed
    assert unrelated["id"] not in found
    assert elsewhere["id"] not in found
    assert later["id"] not in found
    assert event["id"] not in found
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    # The classification answered the same suggestions.
    assert earlier["id"] in {s["event_id"] for s in classified["suggestions"]}
    assert await _similar(client, desk, event["ref"], limit=1) == items[:1]


async def test_similar_shows_only_what_the_caller_may_see(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor
) -> None:
    """Visibility (README, visibility): a reporter is suggested only their own events, and a
    source they may not see is 404."""
    tag = _nonce()
    reporter = await make_actor(Role.REPORTER, department="SALES")
    others = await report(client, desk, title=f"仓库漏水 {tag}", description="屋顶漏水")
    mine = await report(client, reporter, title=f"仓库漏水严重 {tag}", description="屋顶漏水")
    source = await report(client, reporter, title=f"仓库又漏水 {tag}", description="屋顶漏水")
    as_desk = {i["event_id"] for i in await _similar(client, desk, source["id"])}
    assert {others["id"], mine["id"]} <= as_desk
    as_reporter = {i["event_id"] for i in await _similar(client, reporter, source["id"])}
    assert mine["id"] in as_reporter
    assert others["id"] not in as_reporter
    hidden = await client.get(url(others["id"], "/similar"), headers=reporter.headers)
    assert hidden.status_code == 404
    too_many = await client.get(url(source["id"], "/similar?limit=51"), headers=desk.headers)
    assert too_many.status_code == 422


async def test_intake_suggests_only_when_asked(client: httpx.AsyncClient, desk: Actor) -> None:
    tag = _nonce()
    first = await report(client, desk, title=f"Forklift brake failure {tag}")
    body = {
        "title": f"Forklift brake failure again {tag}",
        "description": "Same forklift",
        "channel": "hotline",
        "reporter": {"name": "Li Wei"},
    }
    plain = await call(client, "POST", "/v1/events", desk, json=body, expect=201)
    assert "suggestions" not in plain
    asked = await call(client, "POST", "/v1/events?suggest=true", desk, json=body, expect=201)
    assert first["id"] in {s["event_id"] for s in asked["suggestions"]}
    assert plain["id"] in {s["event_id"] for s in asked["suggestions"]}
    assert all({"event_id", "ref", "score", "recurrence"} <= set(s) for s in asked["suggestions"])
    # A malformed flag is refused before anything is written (core.query.CheckedRoute).
    odd = body | {"title": f"Forklift horn broken {tag}"}
    response = await client.post("/v1/events?suggest=yes", json=odd, headers=desk.headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["query.suggest"]
    assert await _ids(client, desk, q=f"horn {tag}") == []


async def test_similar_events_are_planned_with_the_sources_own_tokens(
    committed: Committed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the service's pool, where intake and get keep PostgreSQL's plan cache, a similar-
    events lookup (the route and intake's suggestions) runs with custom plans, in a read-only
    transaction (`Database.report_connection`): a generic plan of its prepared statement
    read every event that shares a token with the source (2.8 against 29 ms a lookup on
    50,000 events, bench/README.md)."""
    settings: list[tuple[str, str]] = []
    lookup = similar.similar_events

    async def observed(connection: Any, *args: Any, **kwargs: Any) -> Any:
        settings.append(
            (
                await connection.fetchval("SELECT current_setting('plan_cache_mode')"),
                await connection.fetchval("SELECT current_setting('transaction_read_only')"),
            )
        )
        return await lookup(connection, *args, **kwargs)

    monkeypatch.setattr(similar, "similar_events", observed)
    desk = await committed.actor(Role.INTAKE_AGENT, department="CS")
    tag = _nonce()
    async with committed.client() as client:
        first = await report(client, desk, title=f"Boiler pressure low {tag}")
        body = {
            "title": f"Boiler pressure low again {tag}",
            "description": "Same boiler",
            "channel": "hotline",
            "reporter": {"name": "Li Wei"},
        }
        asked = await call(client, "POST", "/v1/events?suggest=true", desk, json=body, expect=201)
        assert first["id"] in {s["event_id"] for s in asked["suggestions"]}
        found = await _similar(client, desk, asked["id"])
        assert first["id"] in {item["event_id"] for item in found}
    assert settings == [("force_custom_plan", "on")] * 2


# ---- recurrence ----------------------------------------------------------------------------


async def _set_text(
    maker: async_sessionmaker[AsyncSession], event_id: str, title: str, description: str
) -> None:
    from app.core.search_text import search_vector

    async with maker() as session:
        await session.execute(
            sa.update(Event)
            .where(Event.id == uuid.UUID(event_id))
            .values(
                title=title,
                description=description,
                search_vector=sa.cast(search_vector(title, description), Event.search_vector.type),
            )
        )
        await session.commit()


async def test_a_recurrence_is_matched_at_classification_and_counts_against_the_closer(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R1.1, R5.4: a new event of the same category whose text matches an event closed within
    the window is stored as its recurrence (`recurrence_match_id`, `recurrence_match_score`),
    suggested with `recurrence: true`, and counts against the original's lead department."""
    cast = await make_cast(make_actor, "IT")
    tag = _nonce()
    title, description = f"订单系统宕机 {tag}", "下单页面无法打开，全部订单失败"
    original = await walk(client, cast, BUSINESS_ISSUE, Status.CLOSED)
    await _set_text(session_maker, original["id"], title, description)
    assert original["lead_department"] == "IT"

    again = await report(client, cast.desk, title=f"订单系统又宕机 {tag}", description=description)
    classified = await call(
        client,
        "POST",
        url(again["id"], "/classification"),
        cast.desk,
        json=classification(BUSINESS_ISSUE),
    )
    assert classified["recurrence_match_id"] == original["id"]
    assert classified["recurrence_match_score"] >= default_policy().recurrence.similarity_threshold
    suggested = {s["event_id"]: s for s in classified["suggestions"]}
    assert suggested[original["id"]]["recurrence"] is True
    read = await call(client, "GET", url(again["id"]), cast.desk)
    assert read["recurrence_match_id"] == original["id"]
    entries = (await call(client, "GET", url(again["id"], "/timeline"), cast.desk))["items"]
    assert entries[-1]["after"]["recurrence_match"]["id"] == original["id"]

    closed = await call(client, "GET", url(original["id"]), cast.desk)
    charged = recurrence.charged_department(
        linked=None,
        matched=recurrence.Original(
            event_id=uuid.UUID(closed["id"]),
            category=closed["category"],
            closed_at=at(closed["closed_at"]),
            lead_department=closed["lead_department"],
        ),
        category=classified["category"],
        reported_at=at(classified["reported_at"]),
        policy=default_policy().recurrence,
    )
    assert charged == "IT"

    # Re-classified into another category: no longer a recurrence of it.
    other = classification(BUSINESS_ISSUE, category="internal_coordination", subcategory="other")
    moved = await call(client, "POST", url(again["id"], "/classification"), cast.desk, json=other)
    assert moved["recurrence_match_id"] is None
    assert moved["recurrence_match_score"] is None


async def test_an_original_closed_before_the_window_is_no_recurrence(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await make_cast(make_actor, "IT")
    tag = _nonce()
    title, description = f"Warehouse scanner crash {tag}", "Scanners reboot every hour"
    original = await walk(client, cast, BUSINESS_ISSUE, Status.CLOSED)
    await _set_text(session_maker, original["id"], title, description)
    window = timedelta(days=default_policy().recurrence.window_days)
    async with session_maker() as session:
        await session.execute(
            sa.update(Event)
            .where(Event.id == uuid.UUID(original["id"]))
            .values(closed_at=at(original["closed_at"]) - window - timedelta(days=1))
        )
        await session.commit()
    again = await report(client, cast.desk, title=title, description=description)
    classified = await call(
        client,
        "POST",
        url(again["id"], "/classification"),
        cast.desk,
        json=classification(BUSINESS_ISSUE),
    )
    assert classified["recurrence_match_id"] is None
    suggested = {s["event_id"]: s for s in classified["suggestions"]}
    assert suggested[original["id"]]["recurrence"] is False
    assert suggested[original["id"]]["score"] == 1.0


async def test_the_policy_shows_the_recurrence_section(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    policy = await call(client, "GET", "/v1/policy", admin)
    assert policy["document"]["recurrence"] == {"window_days": 90, "similarity_threshold": 0.6}
