"""The body of a message as an endpoint receives it (item 2): `{type, timestamp, data}`.

`data` is what the outbox message says about the change, with the event's summary: its `id`,
`ref`, `title`, `status` and `version` as of the change, and `links.self`, the event in the
API. An endpoint whose owner sees the event only as its reporter (an integration, app/rules/
views.py) receives the reporter view's fields only: no grading, routing, assignee or internal
work. A body never exceeds 20 kB: one that would is cut down to the summary.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from app.rules.views import REPORTER_EVENT_FIELDS, EventView

MAX_BODY_BYTES: Final = 20_000
SUMMARY_KEYS: Final = ("id", "ref", "title", "status", "version", "links")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One message to render for one endpoint."""

    type: str
    timestamp: str
    data: Mapping[str, Any]
    event_id: str | None
    event_ref: str | None
    event_title: str | None
    version: int
    view: EventView


def render(message: Outgoing, *, base_url: str = "") -> bytes:
    """The JSON body (compact, UTF-8), at most `MAX_BODY_BYTES`."""
    data: dict[str, Any] = dict(message.data)
    if message.event_id is not None:
        if message.view is EventView.REPORTER:
            data = {k: v for k, v in data.items() if k in REPORTER_EVENT_FIELDS}
        data["id"] = message.event_id
        if message.event_ref is not None:
            data["ref"] = message.event_ref
        if message.event_title is not None:
            data.setdefault("title", message.event_title)
        data["version"] = message.version
        data["links"] = {"self": f"{base_url}/v1/events/{message.event_id}"}
    body = {"type": message.type, "timestamp": message.timestamp, "data": data}
    raw = orjson.dumps(body)
    if len(raw) > MAX_BODY_BYTES:
        body["data"] = {k: data[k] for k in SUMMARY_KEYS if k in data} | {"truncated": True}
        raw = orjson.dumps(body)
    return raw
