"""Supervision: spot checks and rectification orders

Revision ID: b7e2d4f6a813
Revises: c10c4e5a7b21
Create Date: 2026-12-04 09:00:00

Issue 14, items 1 and 2 (R5.2, R5.3): `spot_check` (how a sample was drawn), its frozen
population `spot_check_member`, the sampled `spot_check_item`s with their three
`spot_check_answer`s (pre-filled from the facts, then judged), the `rectification` orders and
their append-only history `rectification_entry`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b7e2d4f6a813"
down_revision: str | None = "c10c4e5a7b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(*values: str, name: str) -> sa.Enum:
    """A VARCHAR with a named CHECK (app/core/db.py `str_enum`)."""
    return sa.Enum(
        *values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(v) for v in values),
    )


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
        for name in ("created_at", "updated_at")
    ]


def upgrade() -> None:
    op.create_table(
        "spot_check",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", _enum("open", "completed", name="status"), nullable=False),
        sa.Column("period_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("population_filter", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("requested_size", sa.Integer(), nullable=True),
        sa.Column("requested_rate", sa.Double(), nullable=True),
        sa.Column("min_per_stratum", sa.Integer(), nullable=False),
        sa.Column("risk_weights", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("population_size", sa.Integer(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("strata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.Uuid(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["completed_by"], ["app_user.id"], name=op.f("fk_spot_check_completed_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_spot_check_created_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check")),
    )
    op.create_index("ix_spot_check_created_at_id", "spot_check", ["created_at", "id"])

    op.create_table(
        "spot_check_member",
        sa.Column("spot_check_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("department", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=True),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.Column("risk", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_spot_check_member_event_id_event")
        ),
        sa.ForeignKeyConstraint(
            ["spot_check_id"],
            ["spot_check.id"],
            name=op.f("fk_spot_check_member_spot_check_id_spot_check"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("spot_check_id", "event_id", name=op.f("pk_spot_check_member")),
    )

    op.create_table(
        "spot_check_item",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("spot_check_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.String(length=40), nullable=False),
        sa.Column("department", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=True),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.Column("risk", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_spot_check_item_event_id_event")
        ),
        sa.ForeignKeyConstraint(
            ["spot_check_id"],
            ["spot_check.id"],
            name=op.f("fk_spot_check_item_spot_check_id_spot_check"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_item")),
        sa.UniqueConstraint(
            "spot_check_id", "event_id", name=op.f("uq_spot_check_item_spot_check_id_event_id")
        ),
        sa.UniqueConstraint(
            "spot_check_id", "position", name=op.f("uq_spot_check_item_spot_check_id_position")
        ),
    )

    op.create_table(
        "spot_check_answer",
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column(
            "question",
            _enum("intake_timely", "process_followed", "result_effective", name="question"),
            nullable=False,
        ),
        sa.Column(
            "prefilled", _enum("pass", "fail", "not_applicable", name="prefilled"), nullable=False
        ),
        sa.Column("findings", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("facts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("answer", _enum("pass", "fail", "not_applicable", name="answer"), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("judged_by", sa.Uuid(), nullable=True),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["spot_check_item.id"],
            name=op.f("fk_spot_check_answer_item_id_spot_check_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["judged_by"], ["app_user.id"], name=op.f("fk_spot_check_answer_judged_by_app_user")
        ),
        sa.PrimaryKeyConstraint("item_id", "question", name=op.f("pk_spot_check_answer")),
    )

    op.create_table(
        "rectification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("spot_check_id", sa.Uuid(), nullable=True),
        sa.Column("item_id", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("department", sa.String(length=16), nullable=False),
        sa.Column("questions", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("demand", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            _enum("issued", "responded", "verified", "closed", name="status"),
            nullable=False,
        ),
        sa.Column("issued_by", sa.Uuid(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("measures", sa.Text(), nullable=True),
        sa.Column("responded_by", sa.Uuid(), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.Uuid(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verification_note", sa.String(length=2000), nullable=True),
        sa.Column("closed_by", sa.Uuid(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["app_user.id"], name=op.f("fk_rectification_closed_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_rectification_event_id_event")
        ),
        sa.ForeignKeyConstraint(
            ["issued_by"], ["app_user.id"], name=op.f("fk_rectification_issued_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["spot_check_item.id"],
            name=op.f("fk_rectification_item_id_spot_check_item"),
        ),
        sa.ForeignKeyConstraint(
            ["responded_by"], ["app_user.id"], name=op.f("fk_rectification_responded_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["spot_check_id"],
            ["spot_check.id"],
            name=op.f("fk_rectification_spot_check_id_spot_check"),
        ),
        sa.ForeignKeyConstraint(
            ["verified_by"], ["app_user.id"], name=op.f("fk_rectification_verified_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rectification")),
    )
    op.create_index("ix_rectification_created_at_id", "rectification", ["created_at", "id"])
    op.create_index(
        "ix_rectification_department_created_at", "rectification", ["department", "created_at"]
    )
    op.create_index("ix_rectification_spot_check_id", "rectification", ["spot_check_id"])

    op.create_table(
        "rectification_entry",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rectification_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["app_user.id"], name=op.f("fk_rectification_entry_actor_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["rectification_id"],
            ["rectification.id"],
            name=op.f("fk_rectification_entry_rectification_id_rectification"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rectification_entry")),
        sa.UniqueConstraint(
            "rectification_id", "seq", name=op.f("uq_rectification_entry_rectification_id_seq")
        ),
    )


def downgrade() -> None:
    op.drop_table("rectification_entry")
    op.drop_index("ix_rectification_spot_check_id", table_name="rectification")
    op.drop_index("ix_rectification_department_created_at", table_name="rectification")
    op.drop_index("ix_rectification_created_at_id", table_name="rectification")
    op.drop_table("rectification")
    op.drop_table("spot_check_answer")
    op.drop_table("spot_check_item")
    op.drop_table("spot_check_member")
    op.drop_index("ix_spot_check_created_at_id", table_name="spot_check")
    op.drop_table("spot_check")
