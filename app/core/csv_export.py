"""CSV answers of lists and reports (issue 14, item 6; R7.2; product.md section 4).

A client asks for CSV with `format=csv` or an `Accept` header that prefers `text/csv`
(`wants_csv`); `format=json` wins over the header. The answer (`csv_response`) is
`text/csv; charset=utf-8`, starts with a UTF-8 byte order mark (so that spreadsheet programs
read Chinese text as UTF-8 instead of the locale's code page), is offered as a download
(`Content-Disposition: attachment`) and is streamed in chunks of about `CHUNK_BYTES`: rows are
read from the iterable as the client takes them, never gathered into one body.

Cells (`cell`): None is empty; datetimes are ISO 8601 in UTC (`2026-12-01T09:30:00Z`, as the
JSON answers write them); dates and times ISO 8601; booleans `true`/`false`; numbers as
written (no exponent for decimals); UUIDs and enums their text; lists and dicts compact JSON
(UTF-8, not escaped). Rows end in CRLF (RFC 4180); quotes are doubled by `csv`.

Formula injection (OWASP, "CSV Injection"): a spreadsheet program runs a cell that starts
with `=`, `+`, `-` or `@` (or with a tab or carriage return before one) as a formula, so text
from users (a title, a reporter's name) could run commands or leak data when an export is
opened. Such a text cell is written with a leading single quote (`'=1+2`), which the program
shows as text; the quote is visible in the cell and in the file read back. Numbers are never
guarded: `-5` is a number, not a formula.
"""

import csv
import io
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Sequence,
)
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Final, Literal
from urllib.parse import quote

import anyio
from fastapi import Request
from pydantic_core import to_json
from starlette.responses import StreamingResponse
from starlette.types import Send

CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
BOM: Final = "\ufeff"
# The body goes out in chunks of at least this many characters (as many bytes of ASCII text,
# up to three times as many of Chinese); the last one may be smaller.
CHUNK_BYTES: Final = 64 * 1024
# OWASP's list of the characters a spreadsheet program reads a formula (or DDE call) from.
FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")
FORMAT_DESCRIPTION: Final = (
    "`csv` for a CSV download (the same as `Accept: text/csv`), `json` for JSON whatever "
    "the `Accept` header says"
)


def csv_openapi(description: str) -> dict[str, Any]:
    """The 200 answer of an operation that also answers CSV, for its `responses=` (merged
    with the JSON `response_model` by FastAPI): the `text/csv` content documented."""
    return {
        "description": description,
        "content": {
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": "UTF-8 CSV with a byte order mark, a header row, CRLF "
                    "line ends; formula-like text behind a single quote",
                }
            }
        },
    }


def wants_csv(request: Request, format: Literal["json", "csv"] | None) -> bool:
    """Whether to answer CSV: `format=csv`, or no `format` and an `Accept` header that
    prefers `text/csv`: named with a quality above 0 and above that of JSON, or equal to it
    when JSON is not named (so `text/csv, */*` is CSV; `application/json, text/csv` JSON)."""
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept")
    if not accept or "csv" not in accept.lower():
        return False
    ranges = _media_ranges(accept)
    csv_q = ranges.get("text/csv")
    if not csv_q:
        return False
    json_named = "application/json" in ranges
    json_q = _quality(ranges, "application", "json")
    return csv_q > json_q or (csv_q == json_q and not json_named)


def _media_ranges(accept: str) -> dict[str, float]:
    """The media ranges of an `Accept` header with their quality (RFC 9110 section 12.5.1);
    a malformed quality counts as 0."""
    ranges: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges[media.lower()] = max(q, ranges.get(media.lower(), 0.0))
    return ranges


def _quality(ranges: dict[str, float], kind: str, subtype: str) -> float:
    """The quality of a media type: from its most specific range (RFC 9110 section 12.5.1)."""
    for media in (f"{kind}/{subtype}", f"{kind}/*", "*/*"):
        if media in ranges:
            return ranges[media]
    return 0.0


def _text(value: str) -> str:
    return "'" + value if value[:1] in _FORMULA_STARTS else value


def _moment(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"  # without its "+00:00"


def _json(value: object) -> str:
    return to_json(value).decode()


_FORMULA_STARTS: Final = frozenset(FORMULA_PREFIXES)
# The format of each type met so far: an export writes millions of cells of a few types, so
# the type is looked up once instead of tried against every case (`_format_of`).
_FORMATS: Final[dict[type, Callable[[Any], str]]] = {
    str: _text,
    bool: lambda value: "true" if value else "false",
    int: str,
    float: str,
    datetime: _moment,
    date: date.isoformat,
    time: time.isoformat,
    Decimal: lambda value: format(value, "f"),
    list: _json,
    tuple: _json,
    dict: _json,
}


def _format_of(kind: type) -> Callable[[Any], str]:
    """The format of a type not met before (subclasses such as enums, UUIDs, sets)."""
    if issubclass(kind, Enum):
        return lambda value: cell(value.value)
    for base in (str, bool, int, float, datetime, date, time, Decimal, list, tuple, dict):
        if issubclass(kind, base):
            return _FORMATS[base]
    if issubclass(kind, set | frozenset):
        return _json
    return lambda value: _text(str(value))


def cell(value: object) -> str:
    """One CSV cell (the module's rules: UTC ISO 8601 times, empty None, JSON lists and
    dicts, a text that a spreadsheet would run as a formula behind a single quote)."""
    if value is None:
        return ""
    kind = type(value)
    format_ = _FORMATS.get(kind)
    if format_ is None:
        format_ = _FORMATS[kind] = _format_of(kind)
    return format_(value)


def content_disposition(filename: str) -> str:
    """`attachment` with the file name: a plain ASCII `filename` for every client and the
    exact name as `filename*` (RFC 6266, RFC 8187) when it is not plain ASCII."""
    safe = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    header = f'attachment; filename="{safe}"'
    if safe != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


class CsvStreamingResponse(StreamingResponse):
    """A streamed CSV that always closes its row source: when the client goes away mid-way,
    Starlette abandons the body iterator at a `yield`; closing it here (shielded from the
    cancellation) runs the source's `finally`, which gives back its database connection at
    once instead of whenever the garbage collector finalises it."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()


def csv_response(
    columns: Sequence[str],
    rows: AsyncIterable[Sequence[object]] | Iterable[Sequence[object]],
    *,
    filename: str,
) -> StreamingResponse:
    """A streamed CSV download: the byte order mark and the `columns` header row, then each
    row's cells (`cell`), in chunks of about `CHUNK_BYTES`. An async `rows` is read as the
    client takes the body (e.g. a database cursor); it is closed when the answer ends, also
    when the client disconnects."""
    return CsvStreamingResponse(
        _chunks(columns, rows),
        media_type=CSV_MEDIA_TYPE,
        # The same URL answers JSON or CSV by its `Accept` header (RFC 9110 section 12.5.5).
        headers={"Content-Disposition": content_disposition(filename), "Vary": "Accept"},
    )


async def _chunks(
    columns: Sequence[str],
    rows: AsyncIterable[Sequence[object]] | Iterable[Sequence[object]],
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([cell(c) for c in columns])

    def written(row: Sequence[object]) -> bytes | None:
        """The buffer's text once it holds a chunk's worth (then emptied), else None."""
        writer.writerow([cell(v) for v in row])
        # Characters, not bytes: a Chinese character is three bytes, so chunks of Chinese
        # text are up to three times CHUNK_BYTES. Cheap, and bounded all the same.
        if buffer.tell() < CHUNK_BYTES:
            return None
        chunk = buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        return chunk

    try:
        # Two loops rather than one over a wrapper: one generator less per row.
        if isinstance(rows, AsyncIterable):
            async for row in rows:
                if (chunk := written(row)) is not None:
                    yield chunk
        else:
            for row in rows:
                if (chunk := written(row)) is not None:
                    yield chunk
        if buffer.tell():
            yield buffer.getvalue().encode()
    finally:
        close = getattr(rows, "aclose", None)
        if close is not None:
            await close()
