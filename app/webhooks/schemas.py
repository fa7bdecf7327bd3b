"""Webhook endpoint request and response shapes (product.md section 8; issue 13)."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import MISSING, AfterValidator, Field, model_validator

from app.core.schemas import AwareDatetime, DeptCode, RequestModel, ResponseModel
from app.webhooks.audience import MESSAGE_TYPES


def _known_type(value: str) -> str:
    if value not in MESSAGE_TYPES:
        raise ValueError("unknown message type; one of: " + ", ".join(MESSAGE_TYPES))
    return value


MessageTypeName = Annotated[
    str,
    Field(max_length=60, json_schema_extra={"enum": list(MESSAGE_TYPES)}),
    AfterValidator(_known_type),
]
EndpointUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="Where messages are POSTed: https, a public host (item 5)",
        examples=["https://crm.example.com/hooks/closed-loop"],
    ),
]
Description = Annotated[str, Field(min_length=1, max_length=500)]
EventTypes = Annotated[
    list[MessageTypeName],
    Field(
        min_length=1,
        max_length=len(MESSAGE_TYPES),
        description="The message types to receive (null or absent: all)",
    ),
]
Departments = Annotated[
    list[DeptCode],
    Field(
        min_length=1,
        max_length=50,
        description="Only events these departments lead, cooperate on or were named as "
        "involved at intake (null or absent: all the owner may see)",
    ),
]


class WebhookEndpointCreate(RequestModel):
    url: EndpointUrl
    description: Description | None = None
    event_types: EventTypes | None = None
    departments: Departments | None = None


class WebhookEndpointUpdate(RequestModel):
    """Only the fields sent change; `description`, `event_types` and `departments` may be
    null (cleared: all types, all departments), `url` and `enabled` may not."""

    url: EndpointUrl | MISSING = MISSING
    description: Description | None = None
    event_types: EventTypes | None = None
    departments: Departments | None = None
    enabled: bool | MISSING = MISSING


class WebhookEndpointRead(ResponseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str] | None
    departments: list[str] | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the previous secret signs beside the current one"
    )
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    """The endpoint with its signing secret, shown only in this response."""

    secret: str = Field(description="`whsec_` + base64; shown once", examples=["whsec_…"])


class WebhookEndpointPage(ResponseModel):
    items: list[WebhookEndpointRead]
    next_cursor: str | None


class DeliveryRead(ResponseModel):
    """One attempt to deliver a message (item 4)."""

    id: uuid.UUID
    message_id: uuid.UUID = Field(description="Also the `webhook-id` header of the attempt")
    message_type: str
    attempt: int
    attempted_at: datetime
    outcome: str = Field(description="`delivered`, `retrying` (see `next_attempt_at`), `failed`")
    status_code: int | None
    duration_ms: int
    error: str | None
    next_attempt_at: datetime | None
    response_excerpt: str | None = Field(description="The first 1 kB of the response body")


class DeliveryPage(ResponseModel):
    items: list[DeliveryRead]
    next_cursor: str | None


class ReplayRequest(RequestModel):
    """Send again every message written in [since, until) that the endpoint is to receive."""

    since: AwareDatetime
    until: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> "ReplayRequest":
        if self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class Queued(ResponseModel):
    """Messages queued for the endpoint; they are sent within seconds."""

    queued: int
    message_ids: list[uuid.UUID] = Field(description="The `webhook-id` of each, oldest first")
