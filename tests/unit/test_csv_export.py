"""CSV answers (app/core/csv_export.py; issue 14, item 6): cells, chunks, the download name,
the choice between JSON and CSV."""

import csv
import io
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal

import pytest
from starlette.requests import Request

from app.core.csv_export import (
    BOM,
    CHUNK_BYTES,
    CSV_MEDIA_TYPE,
    cell,
    content_disposition,
    csv_response,
    wants_csv,
)
from app.rules.vocabulary import Severity

SHANGHAI = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-5, "-5"),  # a number, not a formula
        (2.5, "2.5"),
        (Decimal("1E+5"), "100000"),
        (Decimal("-12.50"), "-12.50"),
        (datetime(2026, 12, 1, 17, 30, tzinfo=SHANGHAI), "2026-12-01T09:30:00Z"),
        (datetime(2026, 12, 1, 9, 30, 0, 1500, tzinfo=UTC), "2026-12-01T09:30:00.001500Z"),
        (datetime(2026, 12, 1, 9, 30), "2026-12-01T09:30:00Z"),  # noqa: DTZ001 (naive: UTC)
        (date(2026, 12, 1), "2026-12-01"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Severity.MAJOR, "major"),
        (["IT", "物流"], '["IT","物流"]'),
        ({"score": 2, "评论": None}, '{"score":2,"评论":null}'),
        ("快递延误", "快递延误"),
        ("=1+2", "'=1+2"),
        ("+86 138", "'+86 138"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_cell(value: object, expected: str) -> None:
    assert cell(value) == expected


def test_content_disposition_keeps_a_chinese_name_for_clients_that_read_it() -> None:
    assert content_disposition("events.csv") == 'attachment; filename="events.csv"'
    assert content_disposition('a"b.csv') == (
        "attachment; filename=\"a_b.csv\"; filename*=UTF-8''a%22b.csv"
    )
    assert content_disposition("考核.csv") == (
        "attachment; filename=\"__.csv\"; filename*=UTF-8''%E8%80%83%E6%A0%B8.csv"
    )


async def _body(chunks: AsyncIterable[bytes | str | memoryview]) -> list[bytes]:
    return [bytes(c) if not isinstance(c, str) else c.encode() async for c in chunks]


async def test_rows_are_read_as_the_body_is_taken_in_chunks() -> None:
    """Streamed: the first chunk goes out after about CHUNK_BYTES of rows, not after all of
    them; every chunk but the last is at least CHUNK_BYTES; the BOM opens the first."""
    taken = 0

    def rows() -> Iterator[list[object]]:
        nonlocal taken
        for n in range(10_000):
            taken += 1
            yield [n, "投诉" * 10, None]

    response = csv_response(["n", "text", "empty"], rows(), filename="x.csv")
    assert response.media_type == CSV_MEDIA_TYPE
    assert response.headers["content-type"] == CSV_MEDIA_TYPE
    assert response.headers["vary"] == "Accept"
    iterator = response.body_iterator
    first = await anext(iterator)  # type: ignore[call-overload]
    assert taken < 10_000
    assert isinstance(first, bytes)
    assert first.startswith(BOM.encode() + b"n,text,empty\r\n0,")
    chunks = [first, *await _body(iterator)]
    assert len(chunks) > 2
    assert all(len(c) >= CHUNK_BYTES for c in chunks[:-1])
    text = b"".join(chunks).decode("utf-8-sig")
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert read[0] == ["n", "text", "empty"]
    assert len(read) == 10_001
    assert read[-1] == ["9999", "投诉" * 10, ""]


async def test_an_async_source_is_closed_when_the_stream_is_abandoned() -> None:
    """The row source's `finally` runs when the body is closed part-way (a client gone)."""
    closed = False

    async def rows() -> AsyncIterator[list[object]]:
        nonlocal closed
        try:
            for n in range(1_000_000):
                yield [n, "x" * 100]
        finally:
            closed = True

    response = csv_response(["n", "x"], rows(), filename="x.csv")
    iterator = response.body_iterator
    await anext(iterator)  # type: ignore[call-overload]
    assert not closed
    await iterator.aclose()  # type: ignore[attr-defined]
    assert closed


def _request(accept: str | None) -> Request:
    headers = [(b"accept", accept.encode())] if accept is not None else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@pytest.mark.parametrize(
    ("fmt", "accept", "expected"),
    [
        (None, None, False),
        ("csv", None, True),
        ("json", "text/csv", False),
        ("csv", "application/json", True),
        (None, "text/csv", True),
        (None, "TEXT/CSV; charset=utf-8", True),
        (None, "text/*", False),  # not named
        (None, "*/*", False),
        (None, "application/json, text/csv", False),
        (None, "text/csv, application/json;q=0.9", True),
        (None, "text/csv;q=0.5, */*", False),
        (None, "text/csv, */*;q=0.1", True),
        (None, "text/csv;q=0", False),
        (None, "text/csv;q=oops", False),
    ],
)
def test_wants_csv(fmt: Literal["json", "csv"] | None, accept: str | None, expected: bool) -> None:
    assert wants_csv(_request(accept), fmt) is expected
