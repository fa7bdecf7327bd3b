"""Spot checks and rectification orders (R5.2, R5.3; product.md sections 4 and 8)."""

import uuid
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response

from app.core.context import ContextDep, RequestContext
from app.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, PageDep, next_link
from app.core.preconditions import etag
from app.core.query import ApiRouter
from app.core.responses import Created
from app.core.schemas import DeptCode
from app.rules.vocabulary import OrderStatus
from app.supervision import repository, service
from app.supervision import schemas as api

RESPONSES: dict[int | str, dict[str, str]] = {
    403: {"description": "Your role may not do this"},
    404: {"description": "No such resource, or you may not see it"},
    409: {
        "description": "Not everything is judged (`missing`) or the action is not allowed now "
        "(`allowed`)"
    },
    422: {"description": "The request is not valid"},
}
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match", max_length=64, description='The order\'s ETag, e.g. "v3"; 412 when stale'
    ),
]


async def _order_change(context: ContextDep, if_match: IfMatch = None) -> RequestContext:
    return context.matching(if_match)


# A change to one order: the request's context with its If-Match precondition.
OrderChange = Annotated[RequestContext, Depends(_order_change)]

spot_checks = ApiRouter(prefix="/v1/spot-checks", tags=["supervision"], responses=RESPONSES)
rectifications = ApiRouter(
    prefix="/v1/rectifications",
    tags=["supervision"],
    responses={**RESPONSES, 412: {"description": "If-Match names another version"}},
)


@spot_checks.post("", status_code=201)
async def create_spot_check(
    body: api.SpotCheckCreate, context: ContextDep, created: Created
) -> api.SpotCheckDetail:
    """Sample the events of a period for a spot check (R5.2, supervisors): stratified by
    department and severity, risky events weighted up, reproducible from `seed`; every
    sampled event comes with the three questions pre-filled from its facts."""
    return created(await service.create_spot_check(context, body))


@spot_checks.get("")
async def list_spot_checks(context: ContextDep, paging: PageDep) -> api.SpotCheckPage:
    """Spot checks, newest first (supervisors and admins)."""
    page = await service.list_spot_checks(context, cursor=paging.cursor, limit=paging.limit)
    paging.link(page.next_cursor)
    return page


@spot_checks.get("/{spot_check_id}")
async def get_spot_check(spot_check_id: uuid.UUID, context: ContextDep) -> api.SpotCheckDetail:
    """One spot check: how it was drawn, its items and their answers, the orders it issued."""
    return await service.get_spot_check(context, spot_check_id)


@spot_checks.patch("/{spot_check_id}/items/{item_id}")
async def judge_item(
    spot_check_id: uuid.UUID, item_id: uuid.UUID, body: api.ItemJudgement, context: ContextDep
) -> api.SpotCheckItemRead:
    """Confirm or overturn pre-filled answers (R5.2); overturning needs a `note` (422)."""
    return await service.judge_item(context, spot_check_id, item_id, body)


@spot_checks.post("/{spot_check_id}/complete")
async def complete_spot_check(spot_check_id: uuid.UUID, context: ContextDep) -> api.SpotCheckDetail:
    """Complete the check once every answer is judged (409 `missing` otherwise); each failed
    item becomes a rectification order on the responsible department (R5.3)."""
    return await service.complete(context, spot_check_id)


def _with_etag(response: Response, order: api.RectificationRead) -> api.RectificationRead:
    response.headers["ETag"] = etag(order.version)
    return order


@rectifications.post("", status_code=201)
async def create_rectification(
    body: api.RectificationCreate, context: ContextDep, created: Created
) -> api.RectificationRead:
    """Order a department to rectify by a deadline (R5.3, supervisors; default 14 days)."""
    return _with_etag(created.response, created(await service.create_order(context, body)))


@rectifications.get("")
async def list_rectifications(
    request: Request,
    response: Response,
    context: ContextDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    status: Annotated[list[OrderStatus] | None, Query(max_length=4)] = None,
    department: DeptCode | None = None,
    spot_check_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> api.RectificationPage:
    """Rectification orders newest first: all for supervisors and admins, a department's
    own for its staff (R5.3)."""
    flt = repository.OrderFilter(
        statuses=status or (),
        department=department,
        spot_check_id=spot_check_id,
        event_id=event_id,
    )
    page = await service.list_orders(context, flt, cursor=cursor, limit=limit)
    response.headers.update(next_link(request, page.next_cursor))
    return page


@rectifications.get("/{order_id}")
async def get_rectification(
    order_id: uuid.UUID, context: ContextDep, response: Response
) -> api.RectificationRead:
    """One rectification order with its `ETag` (404 for another department's)."""
    return _with_etag(response, await service.get_order(context, order_id))


@rectifications.get("/{order_id}/timeline")
async def get_rectification_timeline(
    order_id: uuid.UUID, context: ContextDep
) -> api.RectificationTimeline:
    """The append-only history of the order: who issued, answered, rejected, verified it."""
    return await service.timeline(context, order_id)


@rectifications.post("/{order_id}/response")
async def respond_to_rectification(
    order_id: uuid.UUID, body: api.RectificationResponseIn, change: OrderChange, response: Response
) -> api.RectificationRead:
    """The head of the order's department gives the cause and the measures (R5.3)."""
    return _with_etag(response, await service.respond(change, order_id, body))


@rectifications.post("/{order_id}/verification")
async def verify_rectification(
    order_id: uuid.UUID,
    body: api.RectificationVerificationIn,
    change: OrderChange,
    response: Response,
) -> api.RectificationRead:
    """A supervisor accepts the response (`verified`) or rejects it back to `issued` with a
    `note` (R5.3)."""
    return _with_etag(response, await service.verify(change, order_id, body))


@rectifications.post("/{order_id}/close")
async def close_rectification(
    order_id: uuid.UUID, change: OrderChange, response: Response
) -> api.RectificationRead:
    """A supervisor closes a verified order (R5.3)."""
    return _with_etag(response, await service.close(change, order_id))
