"""Shaping event rows into API responses."""

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.preconditions import etag
from app.events.models import Event
from app.events.schemas import EventDetail, EventRead, EventReporterDetail, EventReporterRead
from app.rules import clocks
from app.rules.clocks import SlaView
from app.rules.views import EventView, event_view

# Computed, not read from a column.
_SHAPED = frozenset({"view", "reporter", "external_ref", "sla"})
_EVENT_FIELDS = frozenset(EventRead.model_fields) - _SHAPED
_REPORTER_FIELDS = frozenset(EventReporterRead.model_fields) - _SHAPED


def view_of(row: Mapping[Any, Any], principal: Principal) -> EventView:
    """The principal's view of an event row read with its visibility (rules.views): the row
    says whether a handler or head is `involved` (repository.get_query, list_query)."""
    return event_view(principal.roles, involved=bool(row.get("involved")))


def _common(row: Mapping[Any, Any], fields: frozenset[str] = _EVENT_FIELDS) -> dict[str, Any]:
    data = {k: row[k] for k in fields}
    data["reporter"] = {
        "name": row["reporter_name"],
        "email": row["reporter_email"],
        "phone": row["reporter_phone"],
        "external_id": row["reporter_external_id"],
        "user_id": row["reporter_user_id"],
    }
    data["external_ref"] = (
        {"system": row["external_system"], "id": row["external_id"]}
        if row["external_system"]
        else None
    )
    data["sla"] = sla_of(row, fields)
    return data


def sla_of(row: Mapping[Any, Any], fields: frozenset[str]) -> SlaView | None:
    """The running clock as the event shows it (R1.3.1): the stage of its status and that
    stage's due time, if the view shows that due time (the reporter view has no review_by)."""
    stage = clocks.stage_of(row["status"])
    column = None if stage is None else clocks.DUE_COLUMN[stage]
    if stage is None or column not in fields:
        return None
    return clocks.sla_view(stage, due_at=row[column], breached_at=None, now=utcnow())


def event_read(row: Mapping[Any, Any]) -> EventRead:
    return EventRead.model_validate(_common(row))


def event_detail(row: Mapping[Any, Any], steps: list[Any] | None = None) -> EventDetail:
    data = _common(row)
    # Validated with the event in one call: dicts (a row's JSON steps) or ORM plan steps.
    data["steps"] = steps if steps is not None else row.get("steps") or []
    data["plan_discussed_with"] = row["plan_discussed_with"]
    data["resolution"] = (
        {"result": row["resolution_result"], "measures": row["resolution_measures"]}
        if row["resolution_result"]
        else None
    )
    return EventDetail.model_validate(data)


def event_reporter_read(row: Mapping[Any, Any]) -> EventReporterRead:
    """The reporter view of a list row (issue 10, item 7)."""
    return EventReporterRead.model_validate(_common(row, _REPORTER_FIELDS))


def event_reporter_detail(row: Mapping[Any, Any]) -> EventReporterDetail:
    """The reporter view of one event: with the feedback given to them and their
    satisfaction, which the reading statement brings along (`reporter_feedback`,
    `satisfaction`; absent at intake, where there are none)."""
    data = _common(row, _REPORTER_FIELDS)
    data["feedback"] = row.get("reporter_feedback") or []
    data["satisfaction"] = row.get("satisfaction")
    return EventReporterDetail.model_validate(data)


def event_read_as(row: Mapping[Any, Any], view: EventView) -> EventRead | EventReporterRead:
    return event_read(row) if view is EventView.STAFF else event_reporter_read(row)


def event_values(row: Mapping[Any, Any], view: EventView) -> dict[str, Any]:
    """A list row's fields in a view as plain values, not validated into `EventRead` or
    `EventReporterRead` (the CSV export's millions of rows; tests/api/test_event_export.py
    holds them equal to the JSON list's)."""
    if view is EventView.STAFF:
        return {**_common(row), "view": view.value}
    return {**_common(row, _REPORTER_FIELDS), "view": view.value}


def event_detail_as(row: Mapping[Any, Any], view: EventView) -> EventDetail | EventReporterDetail:
    return event_detail(row) if view is EventView.STAFF else event_reporter_detail(row)


def orm_row(event: Event) -> dict[str, Any]:
    """An ORM event as the column mapping the views take."""
    return {c.key: getattr(event, c.key) for c in Event.__table__.columns}


def event_headers(event_id: uuid.UUID, version: int) -> dict[str, str]:
    return {"ETag": etag(version), "Location": f"/v1/events/{event_id}"}


_EVENT_JSON = TypeAdapter(EventDetail)
_REPORTER_JSON = TypeAdapter(EventReporterDetail)


def dump_event(event: EventDetail | EventReporterDetail) -> bytes:
    """An event in the caller's view as JSON (each view's own serialiser, no union to try)."""
    if isinstance(event, EventDetail):
        return _EVENT_JSON.dump_json(event)
    return _REPORTER_JSON.dump_json(event)


def message_head(event: Event) -> dict[str, Any]:
    """What every outbox message about an event starts with: which event, where it stands."""
    return {"id": event.id, "ref": event.ref, "status": event.status, "version": event.version}
