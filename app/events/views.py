"""Shaping event rows into API responses."""

import uuid
from collections.abc import Mapping
from typing import Any

from app.events.models import Event
from app.events.schemas import EventDetail, EventRead

_EVENT_FIELDS = frozenset(EventRead.model_fields) - {"reporter", "external_ref"}


def _common(row: Mapping[Any, Any]) -> dict[str, Any]:
    data = {k: row[k] for k in _EVENT_FIELDS}
    data["reporter"] = {
        "name": row["reporter_name"],
        "email": row["reporter_email"],
        "phone": row["reporter_phone"],
        "external_id": row["reporter_external_id"],
    }
    data["external_ref"] = (
        {"system": row["external_system"], "id": row["external_id"]}
        if row["external_system"]
        else None
    )
    return data


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


def orm_row(event: Event) -> dict[str, Any]:
    """An ORM event as the column mapping the views take."""
    return {c.key: getattr(event, c.key) for c in Event.__table__.columns}


def etag(version: int) -> str:
    return f'"v{version}"'


def event_headers(event_id: uuid.UUID, version: int) -> dict[str, str]:
    return {"ETag": etag(version), "Location": f"/v1/events/{event_id}"}
