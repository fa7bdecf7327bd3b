"""The event list as CSV (issue 14, item 6; R7.2: event data analysed for patterns and trends).

`GET /v1/events` with `format=csv` or `Accept: text/csv` answers every event the caller may see
that matches the filters, in the list's sort and in the caller's view (rules.views; R6.1,
R6.2): the same visibility, the same refused filters and the same item shapes as the JSON
list, one row per event, nested objects spread over columns (`reporter.name`, `sla.due_at`).

Read from PostgreSQL through a server-side cursor `EXPORT_BATCH` rows at a time on a
connection of its own (`Database.export_connection`: the request's own transaction has ended
when the body streams), so a million events never sit in memory; the connection goes back to
the pool when the stream ends or the client goes away. A CSV has no pages: `limit` and
`cursor` are refused with it (422), rather than ignored, so that nobody takes a page for the
whole list or the whole list for a page.
"""

import types
import typing
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel
from starlette.responses import StreamingResponse

from app.core.auth import Principal
from app.core.config import get_settings
from app.core.csv_export import csv_response
from app.core.db import Database
from app.core.errors import TooManyExports, Unprocessable
from app.events import repository
from app.events.reading import list_view
from app.events.repository import EventFilter
from app.events.schemas import EventRead, EventReporterRead
from app.events.views import event_values, view_of
from app.rules.views import EventView

# Rows per round trip of the export's cursor: large enough that round trips cost little,
# small enough that a batch of long descriptions stays a few megabytes.
EXPORT_BATCH: Final = 1000


class _Slots:
    """The exports this process streams now: each holds a pooled connection for as long as
    its client reads, so at most `EXPORT_MAX_CONCURRENT` at once (429 beyond)."""

    streaming = 0


def _take_slot() -> None:
    if _Slots.streaming >= get_settings().export_max_concurrent:
        raise TooManyExports()


# The list's paging parameters, which a CSV (every matching event) does not take.
PAGING: Final = ("limit", "cursor")

Column = tuple[str, str, str | None]  # header, field, field of the nested object


def _nested(annotation: Any) -> type[BaseModel] | None:
    """The response model of a field holding one (optional) nested object."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    for option in (annotation, *options):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def columns_of(model: type[BaseModel]) -> tuple[Column, ...]:
    """Every field of a list item, a nested object's fields as `field.subfield` columns."""
    columns: list[Column] = []
    for name, info in model.model_fields.items():
        nested = _nested(info.annotation)
        if nested is None:
            columns.append((name, name, None))
        else:
            columns.extend((f"{name}.{sub}", name, sub) for sub in nested.model_fields)
    return tuple(columns)


# The staff columns also serve handlers and heads, whose view differs per event: a row in the
# reporter view leaves the staff-only cells empty and says `view` = `reporter`.
STAFF_COLUMNS: Final = columns_of(EventRead)
REPORTER_COLUMNS: Final = columns_of(EventReporterRead)


def _cells(values: Mapping[str, Any], columns: Sequence[Column]) -> list[object]:
    cells: list[object] = []
    for _, name, sub in columns:
        value = values.get(name)
        if sub is not None and value is not None:
            value = value.get(sub) if isinstance(value, dict) else getattr(value, sub)
        cells.append(value)
    return cells


def export_events(
    database: Database,
    flt: EventFilter,
    *,
    actor: Principal,
    now: datetime,
    paging: Collection[str] = (),
) -> StreamingResponse:
    """Every event the caller may see matching `flt`, as a streamed CSV in their view; 422
    for a filter their view does not show (`reading.list_view`) or for paging parameters
    (`paging`: those of `PAGING` the request gave)."""
    refused = [name for name in PAGING if name in paging]
    if refused:
        raise Unprocessable(
            "A CSV holds every matching event and has no pages: leave out " + ", ".join(refused),
            errors=[
                {
                    "field": f"query.{name}",
                    "message": "not taken with format=csv or Accept: text/csv",
                    "code": "not_with_csv",
                }
                for name in refused
            ],
        )
    fixed = list_view(flt, actor)
    _take_slot()
    columns = REPORTER_COLUMNS if fixed is EventView.REPORTER else STAFF_COLUMNS
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return csv_response(
        [header for header, _, _ in columns],
        _rows(database, flt, actor=actor, now=now, fixed=fixed, columns=columns),
        filename=f"events-{stamp}.csv",
    )


async def _rows(
    database: Database,
    flt: EventFilter,
    *,
    actor: Principal,
    now: datetime,
    fixed: EventView | None,
    columns: Sequence[Column],
) -> AsyncIterator[list[object]]:
    """Each event as CSV cells, in the caller's view (the fields `reading.list_events` shows,
    as plain values: validating a million response models would cost more than the rest)."""
    _Slots.streaming += 1
    try:
        async with (
            database.export_connection() as connection,
            aclosing(
                repository.stream_visible(connection, actor, flt, now=now, batch=EXPORT_BATCH)
            ) as rows,
        ):
            async for row in rows:
                view = fixed or view_of(row, actor)
                yield _cells(event_values(row, view), columns)
    finally:
        _Slots.streaming -= 1
