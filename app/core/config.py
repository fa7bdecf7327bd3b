"""Settings from the environment (pydantic-settings)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings; every field can be set by an environment variable of the same name."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    app_data_dir: Path = Field(default=Path(".data"), alias="APP_DATA_DIR")
    # Per pool and worker: the ORM pool and the hot-path asyncpg pool each hold this many, so
    # a worker opens up to 2 x DB_POOL_SIZE connections. A steady pool: overflow connections
    # are closed and reopened under load (bench/README.md).
    db_pool_size: int = Field(default=16, ge=1, le=500, alias="DB_POOL_SIZE")
    db_max_overflow: int = Field(default=0, alias="DB_MAX_OVERFLOW")
    # Bounds on waiting for PostgreSQL (issue 10 item 3), so an outage answers 503 quickly
    # instead of hanging: opening a connection, waiting for a free pooled connection, and one
    # statement of a request (a guard against a hung server, far above the slowest statement:
    # a year's KPIs take well under a second, bench/README.md). Migrations have no command timeout.
    db_connect_timeout: float = Field(default=5.0, gt=0, alias="DB_CONNECT_TIMEOUT")
    db_pool_timeout: float = Field(default=5.0, gt=0, alias="DB_POOL_TIMEOUT")
    db_command_timeout: float = Field(default=10.0, gt=0, alias="DB_COMMAND_TIMEOUT")
    max_body_bytes: int = Field(default=1_048_576, alias="MAX_BODY_BYTES")
    principal_cache_seconds: float = Field(default=5.0, alias="PRINCIPAL_CACHE_SECONDS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # The young generation's collection threshold while serving (0: Python's default, 700);
    # the start-up heap is frozen too. See `app.core.gc_tuning`.
    gc_gen0_threshold: int = Field(default=20_000, ge=0, alias="GC_GEN0_THRESHOLD")
    # The background runner (app/runner): on in every `serve` worker unless RUN_WORKERS=false
    # (then run `python -m app worker`); each job polls every RUNNER_POLL_SECONDS.
    run_workers: bool = Field(default=True, alias="RUN_WORKERS")
    runner_poll_seconds: float = Field(default=15.0, gt=0, alias="RUNNER_POLL_SECONDS")
    # Where the service is reached from outside (`https://events.example.com`): the base of
    # links it hands out, such as a survey link, never the request's Host header (review of
    # issue 10, item 10); empty: paths only. The webhooks read the same variable.
    public_base_url: str = Field(default="", alias="PUBLIC_BASE_URL")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
