"""The webhook API's own problems (RFC 9457, rendered by app/core/errors.py)."""

from app.core.errors import AppError


class UnsafeTarget(AppError):
    """Item 5: an endpoint URL that is not plain public https, or whose host resolves to a
    loopback, private, link-local or metadata address (allowed only with
    `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`)."""

    status, type, title = 422, "unsafe-webhook-target", "The webhook URL may not be called"


class EndpointDisabled(AppError):
    """A test, resend or replay on a disabled endpoint: enable it first (`PATCH enabled`)."""

    status, type, title = 409, "endpoint-disabled", "The webhook endpoint is disabled"


class ReplayTooLarge(AppError):
    """Item 4: a replay range holding more messages than one request may queue."""

    status, type, title = 422, "replay-too-large", "Too many messages in the replay range"
