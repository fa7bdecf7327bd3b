"""Webhook settings from the environment (issue 13), read once per process."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    """Every field can be set by the environment variable named by its alias."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    # Item 5: loopback, private, link-local and metadata targets and plain http are refused
    # unless this is true (tests and local development).
    allow_private_targets: bool = Field(default=False, alias="WEBHOOK_ALLOW_PRIVATE_TARGETS")
    # Item 2: an attempt that has no answer after this long has failed.
    timeout_seconds: float = Field(default=10.0, gt=0, le=60, alias="WEBHOOK_TIMEOUT_SECONDS")
    # The delivery jobs' own poll: a message written now leaves within about two polls.
    poll_seconds: float = Field(default=0.2, gt=0, alias="WEBHOOK_POLL_SECONDS")
    # Messages sent per piece (one transaction), and at most this many at once to one endpoint
    # (as many kept-alive connections to it; 4 keeps a local receiver busy, bench/README.md).
    batch_size: int = Field(default=200, ge=1, le=5000, alias="WEBHOOK_BATCH_SIZE")
    endpoint_concurrency: int = Field(default=4, ge=1, le=256, alias="WEBHOOK_ENDPOINT_CONCURRENCY")
    # Item 7: delivered messages and the delivery log are kept this many days.
    retention_days: int = Field(default=30, ge=1, alias="OUTBOX_RETENTION_DAYS")
    # Where links in a payload point (`https://events.example.com`); empty: paths only.
    public_base_url: str = Field(default="", alias="PUBLIC_BASE_URL")


@lru_cache
def get_webhook_settings() -> WebhookSettings:
    """The process-wide webhook settings, read once."""
    return WebhookSettings()
