"""Reading events: list with filters and keyset pages, one event, its timeline."""

import uuid
from typing import Annotated, Literal

from fastapi import Query, Request, Response
from pydantic import TypeAdapter

from app.core.auth import CurrentPrincipal, request_principal
from app.core.clock import utcnow
from app.core.csv_export import FORMAT_DESCRIPTION, csv_openapi, wants_csv
from app.core.db import SessionDep
from app.core.errors import Unprocessable
from app.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, next_link
from app.core.preconditions import etag
from app.core.query import ApiRouter, QueryBool
from app.core.schemas import AwareDatetime, DeptCode
from app.events import clocks, reading, similar
from app.events.clock_schemas import QueueRead
from app.events.export import PAGING, export_events
from app.events.repository import EventFilter
from app.events.routes.deps import EventRef, add_event_routes, read
from app.events.schemas import AnyEventDetail, EventPage
from app.events.similar_schemas import SimilarEvents
from app.events.views import dump_event
from app.policy.service import policy_in_force
from app.rules.vocabulary import Category, Severity, Status

router = ApiRouter(prefix="/v1/events", tags=["events"])


SortQuery = Annotated[
    Literal["created_at", "updated_at", "due_at", "relevance"] | None,
    Query(
        description="`created_at`: newest first (the default; with `q`, every match). "
        "`updated_at`: oldest change first, the change feed (README, Sync). `due_at`: "
        "soonest due first, only events whose stage clock runs. `relevance` (only with "
        "`q`, asked for): the newest 200 matches of `q`, best match first (README, Search)."
    ),
]


@router.get(
    "",
    response_model=EventPage,
    responses={200: csv_openapi("A page of events (JSON), or every matching event (CSV)")},
)
async def list_events(
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    status: Annotated[list[Status] | None, Query(max_length=9)] = None,
    category: Annotated[list[Category] | None, Query(max_length=4)] = None,
    severity: Annotated[list[Severity] | None, Query(max_length=3)] = None,
    department: Annotated[
        DeptCode | None, Query(description="Lead or cooperating department")
    ] = None,
    assignee_id: uuid.UUID | None = None,
    urgent: QueryBool | None = None,
    overdue: Annotated[
        QueryBool | None, Query(description="An open stage deadline has passed")
    ] = None,
    created_from: Annotated[AwareDatetime | None, Query()] = None,
    created_to: Annotated[AwareDatetime | None, Query()] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description="Text search")] = None,
    external_system: Annotated[str | None, Query(max_length=100)] = None,
    updated_since: Annotated[
        AwareDatetime | None,
        Query(description="Changed at or after this time (the change feed: `sort=updated_at`)"),
    ] = None,
    due_before: Annotated[
        AwareDatetime | None, Query(description="The running stage clock is due before this")
    ] = None,
    breached: Annotated[
        QueryBool | None, Query(description="The running stage clock is past its due time")
    ] = None,
    sort: SortQuery = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description=FORMAT_DESCRIPTION)] = None,
) -> Response:
    """Events the caller may see in the chosen `sort`, one keyset page (`next_cursor`, `Link`);
    each in the caller's view (`view`: `staff`, or `reporter` for an event seen only as its
    reporter). With `sort=updated_at` and `updated_since`, the change feed.

    CSV (`format=csv`, or `Accept: text/csv` without `format`): every matching event in one
    streamed `text/csv` download (UTF-8 with a byte order mark), nested fields as columns
    (`reporter.name`, `sla.due_at`); `limit` and `cursor` are refused with it (422), as a CSV
    has no pages (README, CSV exports)."""
    # A hot path: one statement on a pooled connection, the page serialised once.
    actor, db = await request_principal(request), request.app.state.db
    if created_from and created_to and created_from >= created_to:
        raise Unprocessable("created_from must be before created_to")
    if sort == "relevance" and not q:
        raise Unprocessable("sort=relevance ranks the matches of q: give q")
    flt = EventFilter(
        status=status or (),
        category=category or (),
        severity=severity or (),
        department=department,
        assignee_id=assignee_id,
        urgent=urgent,
        overdue=overdue,
        created_from=created_from,
        created_to=created_to,
        text=q,
        external_system=external_system,
        updated_since=updated_since,
        due_before=due_before,
        breached=breached,
        sort=sort or "created_at",
    )
    if wants_csv(request, format):
        paging = [name for name in PAGING if name in request.query_params]
        return export_events(db, flt, actor=actor, now=utcnow(), paging=paging)
    async with db.report_connection() as connection:
        page = await reading.list_events(
            connection, flt, actor=actor, cursor=cursor, limit=limit, now=utcnow()
        )
    return Response(
        _PAGE_JSON.dump_json(page),
        media_type="application/json",
        headers={**next_link(request, page.next_cursor), "Vary": "Accept"},
    )


_PAGE_JSON = TypeAdapter(EventPage)


@router.get("/{event_id}", response_model=AnyEventDetail)
async def get_event(event_id: EventRef, request: Request) -> Response:
    """One event by UUID or ref, with its `ETag` (404 when you may not see it). `view` says
    which shape: `staff`, or `reporter` for whoever sees the event only as its reporter (their
    report, status, public due dates, the feedback given to them, their satisfaction)."""
    # A hot path: one statement on a pooled connection, the event serialised once.
    actor = await request_principal(request)
    async with request.app.state.db.connection() as connection:
        event = await reading.get(connection, event_id, actor=actor)
    return Response(
        dump_event(event),
        media_type="application/json",
        headers={"ETag": etag(event.version)},
    )


add_event_routes(
    router,
    read("/{event_id}/timeline", reading.get_timeline),
    read("/{event_id}/sla", reading.get_sla),
)


@router.get("/{event_id}/similar", responses={404: {"description": "No such event, or hidden"}})
async def similar_events(
    event_id: EventRef,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=50, description="How many, most similar first")] = 10,
) -> SimilarEvents:
    """Earlier events of the event's category (of any category before it is classified) whose
    text is like its own, with a `score` from 0 to 1, among those you may see (R1.1, R5.4;
    README, Search). Link one with `recurrence_of`; `recurrence` says it would count."""
    actor, database = await request_principal(request), request.app.state.db
    policy = await policy_in_force(database)
    # Planned with the source's own tokens and dates: a generic plan of the prepared
    # statement scans every match of the tokens (bench/README.md, similar events).
    async with database.report_connection() as connection:
        return await similar.similar_events(
            connection, event_id, actor=actor, policy=policy, limit=limit
        )


queue_router = ApiRouter(prefix="/v1/me", tags=["queue"])


@queue_router.get("/queue")
async def my_queue(session: SessionDep, actor: CurrentPrincipal) -> QueueRead:
    """What the caller must do now, soonest due first, with the action each item waits for:
    as assignee, plan step owner, improvement action department, head of a lead department
    with an escalated event, or intake desk (R1.3.1, R3.3.2, R4.1)."""
    return await clocks.queue_of(session, actor, now=utcnow())
