"""Settings from the environment (pydantic-settings)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    # Failed authentication (issue 15 item 7; app/core/abuse.py): a client address answered
    # 401 this many times within AUTH_FAILURE_WINDOW_SECONDS of its first failure gets 429 on
    # every request for that many seconds; 0 turns it off. Counted per process.
    auth_failure_limit: int = Field(default=20, ge=0, alias="AUTH_FAILURE_LIMIT")
    # Streamed CSV exports at once per process (each holds a pooled connection while it
    # streams; README, CSV exports), and how long one may wait on a client that stops reading.
    export_max_concurrent: int = Field(default=4, ge=1, alias="EXPORT_MAX_CONCURRENT")
    export_stall_seconds: int = Field(default=60, ge=1, alias="EXPORT_STALL_SECONDS")
    auth_failure_window_seconds: float = Field(
        default=60.0, gt=0, alias="AUTH_FAILURE_WINDOW_SECONDS"
    )
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # Issue 16 item 5: every line one JSON object (default), or `console` for people reading
    # a terminal in development (app/core/logging.py).
    log_format: Literal["json", "console"] = Field(default="json", alias="LOG_FORMAT")
    # GET /metrics (Prometheus; app/core/metrics.py): open like /healthz and /readyz unless
    # METRICS_TOKEN is set, then only with `Authorization: Bearer <METRICS_TOKEN>` (a
    # credential that reads metrics and nothing else, not an admin key in the scraper's
    # configuration); METRICS_ENABLED=false answers 404.
    metrics_enabled: bool = Field(default=True, alias="METRICS_ENABLED")
    metrics_token: str = Field(default="", alias="METRICS_TOKEN")
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
    # Sign-in for people (issue 16 item 1; app/core/oidc.py): bearer JWTs of the company's
    # identity provider beside API keys, on when OIDC_ISSUER is set (OIDC_AUDIENCE then too).
    # OIDC_JWKS_URL: empty, the `jwks_uri` of the issuer's discovery document. A token's user
    # is the directory user whose `oidc_subject` is the `sub` claim, or whose e-mail is the
    # claim OIDC_USER_CLAIM names (e.g. `email`); OIDC_AUTO_PROVISION adds unknown people as
    # reporters.
    oidc_issuer: str = Field(default="", alias="OIDC_ISSUER")
    oidc_audience: str = Field(default="", alias="OIDC_AUDIENCE")
    oidc_jwks_url: str = Field(default="", alias="OIDC_JWKS_URL")
    oidc_algorithms: str = Field(default="RS256,ES256", alias="OIDC_ALGORITHMS")
    oidc_user_claim: str = Field(default="sub", alias="OIDC_USER_CLAIM")
    oidc_auto_provision: bool = Field(default=False, alias="OIDC_AUTO_PROVISION")
    # The key set is refreshed in the background after this long, and at once (at most once
    # per OIDC_JWKS_MIN_REFRESH_SECONDS) for a token signed with a key id it does not hold.
    oidc_jwks_cache_seconds: float = Field(default=300.0, gt=0, alias="OIDC_JWKS_CACHE_SECONDS")
    oidc_jwks_min_refresh_seconds: float = Field(
        default=30.0, ge=0, alias="OIDC_JWKS_MIN_REFRESH_SECONDS"
    )
    # Browser apps on other origins (issue 16 item 2): comma-separated origins, none by default.
    cors_allow_origins: str = Field(default="", alias="CORS_ALLOW_ORIGINS")
    # The console's sign-in with the identity provider (issue 16 item 6, app/console): the
    # client id registered there for `<service>/console/` (a public client: authorization code
    # with PKCE); empty: the console offers API keys only. Needs OIDC_ISSUER.
    console_oidc_client_id: str = Field(default="", alias="CONSOLE_OIDC_CLIENT_ID")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
