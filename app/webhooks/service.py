"""The webhook endpoint API's work (items 1 and 4): endpoints, secrets, test messages, the
delivery log, resend and replay. Never commits.

Admins manage every endpoint; an integration account manages its own (anyone else: 403). An
endpoint that is not the caller's answers 404, as one that does not exist.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.context import RequestContext
from app.core.errors import Forbidden, NotFound, Unprocessable
from app.core.pagination import Cursor, decode_cursor, page_of
from app.core.responses import from_row
from app.rules.views import EventView
from app.rules.webhooks import EndpointScope, endpoint_scope
from app.webhooks import repository
from app.webhooks import schemas as api
from app.webhooks.audience import TEST_TYPE, order_version, view_for
from app.webhooks.config import WebhookSettings
from app.webhooks.delivery import dispatch_row, message_row
from app.webhooks.errors import EndpointDisabled, ReplayTooLarge
from app.webhooks.models import WebhookEndpoint
from app.webhooks.signing import new_secret
from app.webhooks.ssrf import check_url

# Item 1: after a rotation the previous secret signs beside the new one this long.
ROTATION_OVERLAP: Final = timedelta(hours=24)
MAX_REPLAY: Final = 5000


def owner_scope(actor: Principal) -> uuid.UUID | None:
    """Whose endpoints the caller manages: everyone's (None) for admins, their own for an
    integration account; 403 for anyone else."""
    scope = endpoint_scope(actor.roles)
    if scope is EndpointScope.EVERYONES:
        return None
    if scope is EndpointScope.OWN:
        return actor.user_id
    raise Forbidden("Webhook endpoints are managed by admins and integration accounts")


async def _endpoint(
    context: RequestContext, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpoint:
    found = await repository.endpoint(
        context.session, endpoint_id, owner_id=owner_scope(context.actor), for_update=for_update
    )
    if found is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}")
    return found


async def _check_departments(session: AsyncSession, codes: Sequence[str] | None) -> None:
    if codes:
        unknown = await repository.unknown_departments(session, codes)
        if unknown:
            raise Unprocessable("Unknown departments: " + ", ".join(unknown))


def _list(values: Sequence[str] | None) -> list[str] | None:
    return sorted(set(values)) if values is not None else None


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> api.WebhookEndpointCreated:
    """The endpoint with its new signing secret, shown this once (item 1)."""
    return from_row(api.WebhookEndpointCreated, endpoint, secret=secret)


async def create_endpoint(
    context: RequestContext, data: api.WebhookEndpointCreate, *, settings: WebhookSettings
) -> api.WebhookEndpointCreated:
    """Item 1: a new endpoint owned by the caller, with a fresh secret (item 5's check)."""
    owner_scope(context.actor)
    await check_url(data.url, allow_private=settings.allow_private_targets)
    await _check_departments(context.session, data.departments)
    secret = new_secret()
    endpoint = await repository.add_endpoint(
        context.session,
        WebhookEndpoint(
            owner_id=context.actor.user_id,
            url=data.url,
            description=data.description,
            event_types=_list(data.event_types),
            departments=_list(data.departments),
            enabled=True,
            secret=secret,
            created_at=context.now,
            updated_at=context.now,
        ),
    )
    return _with_secret(endpoint, secret)


def _cursor(position: str | None) -> Cursor | None:
    return decode_cursor(position) if position is not None else None


async def list_endpoints(
    context: RequestContext, *, cursor: str | None, limit: int
) -> api.WebhookEndpointPage:
    """The caller's endpoints (an admin's: all), newest first, one keyset page."""
    position = _cursor(cursor)
    rows = await repository.endpoints(
        context.session, owner_id=owner_scope(context.actor), cursor=position, limit=limit
    )
    page, next_cursor = page_of(rows, limit, lambda r: Cursor(r.created_at, r.id))
    return api.WebhookEndpointPage(
        items=[api.WebhookEndpointRead.model_validate(r) for r in page], next_cursor=next_cursor
    )


async def get_endpoint(context: RequestContext, endpoint_id: uuid.UUID) -> api.WebhookEndpointRead:
    """Item 1: one of the caller's endpoints."""
    return api.WebhookEndpointRead.model_validate(await _endpoint(context, endpoint_id))


async def update_endpoint(
    context: RequestContext,
    endpoint_id: uuid.UUID,
    data: api.WebhookEndpointUpdate,
    *,
    settings: WebhookSettings,
) -> api.WebhookEndpointRead:
    """Item 1: change the URL (checked again), filters or `enabled`. Enabling a disabled
    endpoint clears its failure record and makes what waits for it due now."""
    changes = data.model_dump(exclude_unset=True)
    if "url" in changes:
        await check_url(changes["url"], allow_private=settings.allow_private_targets)
    await _check_departments(context.session, changes.get("departments"))
    endpoint = await _endpoint(context, endpoint_id, for_update=True)
    session, now = context.session, context.now
    for name in ("event_types", "departments"):
        if name in changes:
            changes[name] = _list(changes[name])
    enable = changes.pop("enabled", None)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if enable is True and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
        await repository.resume(session, endpoint.id, now)
    elif enable is False and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_reason = "disabled through the API"
        endpoint.disabled_at = now
        await repository.park(session, endpoint.id)
    endpoint.updated_at = now
    await session.flush()
    return api.WebhookEndpointRead.model_validate(endpoint)


async def delete_endpoint(context: RequestContext, endpoint_id: uuid.UUID) -> None:
    """The endpoint, what waits for it and its delivery log."""
    await repository.delete_endpoint(context.session, await _endpoint(context, endpoint_id))


async def rotate_secret(
    context: RequestContext, endpoint_id: uuid.UUID
) -> api.WebhookEndpointCreated:
    """Item 1: a new secret; the one it replaces signs beside it for 24 hours (a secret
    older than that is dropped)."""
    endpoint = await _endpoint(context, endpoint_id, for_update=True)
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = context.now + ROTATION_OVERLAP
    endpoint.secret = secret
    endpoint.updated_at = context.now
    await context.session.flush()
    return _with_secret(endpoint, secret)


async def send_test(context: RequestContext, endpoint_id: uuid.UUID) -> api.Queued:
    """Item 1: a `webhook.test` message to this endpoint only."""
    session, now = context.session, context.now
    endpoint = await _endpoint(context, endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled()
    row = message_row(
        TEST_TYPE,
        at=now,
        data={"endpoint_id": str(endpoint.id), "message": "A test message from closed-loop events"},
        published=True,
    )
    await repository.add_message(session, row)
    await repository.queue(
        session, [dispatch_row(endpoint.id, row["id"], None, 0, EventView.STAFF, now)]
    )
    return api.Queued(queued=1, message_ids=[row["id"]])


async def list_deliveries(
    context: RequestContext, endpoint_id: uuid.UUID, *, cursor: str | None, limit: int
) -> api.DeliveryPage:
    """Item 4: the endpoint's attempts, newest first, one keyset page."""
    endpoint = await _endpoint(context, endpoint_id)
    rows = await repository.deliveries(
        context.session, endpoint.id, cursor=_cursor(cursor), limit=limit
    )
    page, next_cursor = page_of(rows, limit, lambda r: Cursor(r.attempted_at, r.id))
    return api.DeliveryPage(
        items=[api.DeliveryRead.model_validate(r) for r in page], next_cursor=next_cursor
    )


async def _queue(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    messages: Sequence[repository.Message],
    now: datetime,
) -> api.Queued:
    """Queue `messages` for `endpoint` as the fan-out would (filters, the owner's sight of
    each event as it is now, its view); a message about no event only if it is a test or the
    owner is an admin."""
    if not endpoint.enabled:
        raise EndpointDisabled()
    found = await repository.receivers(session, endpoint.id)
    receiver = found[0] if found else None
    rows = []
    if receiver is not None:
        facts = await repository.event_facts(
            session, list({m.event_id for m in messages if m.event_id is not None})
        )
        for message in messages:
            fact = facts.get(message.event_id) if message.event_id is not None else None
            if message.event_id is not None and fact is None:
                continue
            view = (
                EventView.STAFF
                if message.type == TEST_TYPE
                else view_for(receiver, message.type, fact)
            )
            if view is None:
                continue
            version = order_version(message.type, message.data.get("version"), fact) if fact else 0
            rows.append(dispatch_row(endpoint.id, message.id, message.event_id, version, view, now))
    await repository.queue(session, rows)
    return api.Queued(queued=len(rows), message_ids=[r["message_id"] for r in rows])


async def resend(
    context: RequestContext, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> api.Queued:
    """Item 4: send the message of that attempt again (with its `webhook-id`)."""
    session = context.session
    endpoint = await _endpoint(context, endpoint_id)
    attempt = await repository.delivery(session, endpoint.id, delivery_id)
    found = await repository.message(session, attempt.message_id) if attempt else None
    if found is None:
        raise NotFound(f"No delivery {delivery_id} of this endpoint")
    return await _queue(session, endpoint, [found], context.now)


async def replay(
    context: RequestContext, endpoint_id: uuid.UUID, data: api.ReplayRequest
) -> api.Queued:
    """Item 4: send again every message written in [since, until) that the endpoint is to
    receive, oldest first (at most 5,000 messages in the range: 422 beyond)."""
    endpoint = await _endpoint(context, endpoint_id)
    messages = await repository.messages_between(
        context.session, data.since, data.until, limit=MAX_REPLAY + 1
    )
    if len(messages) > MAX_REPLAY:
        raise ReplayTooLarge(f"More than {MAX_REPLAY} messages in the range; replay a shorter one")
    return await _queue(context.session, endpoint, messages, context.now)
