"""Stored first responses of POST requests carrying an Idempotency-Key."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_record"

    # The id of the caller's API key: keys are scoped to the credential that sent them.
    scope: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    headers: Mapped[dict[str, Any]] = mapped_column(pg.JSONB)
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # The first response carried a secret (an API key's token): its body is not kept and a
    # replay answers 409 `idempotency-secret-withheld` instead (issue 10, item 2).
    secret_withheld: Mapped[bool] = mapped_column(server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    expires_at: Mapped[datetime] = mapped_column(index=True)
