"""`/v1/webhook-endpoints`: endpoints, secrets, test messages, the delivery log, resend and
replay (issue 13, items 1 and 4; product.md section 8)."""

import uuid
from typing import Annotated

from fastapi import Depends, Response

from app.core.context import ContextDep
from app.core.idempotency import withhold_from_replay
from app.core.pagination import PageDep
from app.core.query import ApiRouter
from app.core.responses import Created
from app.webhooks import schemas as api
from app.webhooks import service
from app.webhooks.config import WebhookSettings, get_webhook_settings

router = ApiRouter(
    prefix="/v1/webhook-endpoints",
    tags=["webhooks"],
    responses={403: {"description": "Only admins and integration accounts manage endpoints"}},
)
Settings = Annotated[WebhookSettings, Depends(get_webhook_settings)]


@router.post("", status_code=201, dependencies=[Depends(withhold_from_replay)])
async def create_endpoint(
    body: api.WebhookEndpointCreate, context: ContextDep, settings: Settings, created: Created
) -> api.WebhookEndpointCreated:
    """Register a webhook endpoint (admins; integrations for themselves); the signing
    `secret` is shown once, in this response only."""
    return created(await service.create_endpoint(context, body, settings=settings))


@router.get("")
async def list_endpoints(context: ContextDep, paging: PageDep) -> api.WebhookEndpointPage:
    """The caller's webhook endpoints (an admin's: all), newest first."""
    return await service.list_endpoints(context, cursor=paging.cursor, limit=paging.limit)


@router.get("/{endpoint_id}")
async def get_endpoint(endpoint_id: uuid.UUID, context: ContextDep) -> api.WebhookEndpointRead:
    """One webhook endpoint (never its secret)."""
    return await service.get_endpoint(context, endpoint_id)


@router.patch("/{endpoint_id}")
async def update_endpoint(
    endpoint_id: uuid.UUID, body: api.WebhookEndpointUpdate, context: ContextDep, settings: Settings
) -> api.WebhookEndpointRead:
    """Change the URL, description, filters, or `enabled` (enabling resumes what waits)."""
    return await service.update_endpoint(context, endpoint_id, body, settings=settings)


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: uuid.UUID, context: ContextDep) -> Response:
    """Delete a webhook endpoint with its queue and delivery log."""
    await service.delete_endpoint(context, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", dependencies=[Depends(withhold_from_replay)])
async def rotate_secret(endpoint_id: uuid.UUID, context: ContextDep) -> api.WebhookEndpointCreated:
    """A new signing secret, shown once; the previous one keeps signing beside it for 24 h."""
    return await service.rotate_secret(context, endpoint_id)


@router.post("/{endpoint_id}/test", status_code=202)
async def send_test(endpoint_id: uuid.UUID, context: ContextDep) -> api.Queued:
    """Queue a `webhook.test` message for this endpoint."""
    return await service.send_test(context, endpoint_id)


@router.get("/{endpoint_id}/deliveries")
async def list_deliveries(
    endpoint_id: uuid.UUID, context: ContextDep, paging: PageDep
) -> api.DeliveryPage:
    """Every attempt to deliver to this endpoint, newest first: time, status code, duration,
    error, next retry and the first 1 kB of the response."""
    return await service.list_deliveries(
        context, endpoint_id, cursor=paging.cursor, limit=paging.limit
    )


@router.post("/{endpoint_id}/deliveries/{delivery_id}/resend", status_code=202)
async def resend(endpoint_id: uuid.UUID, delivery_id: uuid.UUID, context: ContextDep) -> api.Queued:
    """Send the message of that attempt again, with the same `webhook-id`."""
    return await service.resend(context, endpoint_id, delivery_id)


@router.post("/{endpoint_id}/replay", status_code=202)
async def replay(
    endpoint_id: uuid.UUID, body: api.ReplayRequest, context: ContextDep
) -> api.Queued:
    """Send again every message written in [since, until) that this endpoint is to receive."""
    return await service.replay(context, endpoint_id, body)
