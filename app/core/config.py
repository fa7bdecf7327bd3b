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
    # were measured being closed and reopened under load.
    db_pool_size: int = Field(default=16, ge=1, le=500, alias="DB_POOL_SIZE")
    db_max_overflow: int = Field(default=0, alias="DB_MAX_OVERFLOW")
    max_body_bytes: int = Field(default=1_048_576, alias="MAX_BODY_BYTES")
    principal_cache_seconds: float = Field(default=5.0, alias="PRINCIPAL_CACHE_SECONDS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # The young generation's collection threshold while serving (0: Python's default, 700);
    # the start-up heap is frozen too. See `app.core.gc_tuning`.
    gc_gen0_threshold: int = Field(default=20_000, ge=0, alias="GC_GEN0_THRESHOLD")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
