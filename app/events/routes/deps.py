"""Shared route parameters of the event endpoints."""

from typing import Annotated

from fastapi import Header, Path, Response

from app.events.schemas import EventDetail
from app.events.views import etag

EventRef = Annotated[
    str, Path(min_length=1, max_length=64, description="Event UUID or its ref (EV-2026-000123)")
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match", max_length=64, description='The event\'s ETag, e.g. "v3"; 412 when stale'
    ),
]

MUTATION_RESPONSES: dict[int | str, dict[str, str]] = {
    403: {"description": "Your role may not do this on this event"},
    404: {"description": "No such event, or you may not see it"},
    409: {
        "description": "A gate is not met (`missing`) or the action is not allowed now (`allowed`)"
    },
    412: {"description": "If-Match names another version"},
    422: {"description": "The request is not valid"},
}


def with_etag(response: Response, event: EventDetail) -> EventDetail:
    response.headers["ETag"] = etag(event.version)
    return event
