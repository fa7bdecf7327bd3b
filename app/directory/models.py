"""Departments, users and API keys (product.md section 1)."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampMixin, uuid7
from app.rules.vocabulary import Role

ROLE_VALUES = tuple(r.value for r in Role)


class Department(TimestampMixin, Base):
    __tablename__ = "department"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str | None] = mapped_column(sa.String(50))
    head_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("app_user.id", use_alter=True, ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    __table_args__ = (sa.CheckConstraint("code ~ '^[A-Z][A-Z0-9_]{0,15}$'", name="code_format"),)


class User(TimestampMixin, Base):
    __tablename__ = "app_user"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("department.id"), index=True
    )
    roles: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(20)))
    service_account: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    # The `sub` claim of the person's OIDC tokens (issue 16 item 1): how a token finds them.
    oidc_subject: Mapped[str | None] = mapped_column(sa.String(255), unique=True)

    __table_args__ = (
        sa.CheckConstraint(
            "roles <@ ARRAY[" + ", ".join(f"'{r}'" for r in ROLE_VALUES) + "]::varchar[]",
            name="roles_known",
        ),
        sa.CheckConstraint("cardinality(roles) >= 1", name="roles_present"),
        sa.Index("uq_app_user_email_lower", sa.func.lower(sa.text("email")), unique=True),
    )


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
