"""The webhook queue and delivery log without foreign keys

Revision ID: 6f3b8d0e2a47
Revises: 5e2a7c9d1f36
Create Date: 2026-12-11 09:00:00

Issue 13 (intake with delivery on >= 85 % of off). Every message delivered wrote a
`webhook_dispatch` row and a `webhook_delivery` row, each checked against `webhook_endpoint`
and `outbox_message` by a foreign key: four checks a message, each an index lookup and a row
lock (FOR KEY SHARE) written to the referenced row, the endpoint's row shared by every
transaction that queues or records for it. On 1,000,000 events (PostgreSQL 15,
`bench/inproc_webhooks.py`, pg_stat_statements) the two inserts took 47 and 41 us a message
with the keys and 14 and 7 without, and the database's CPU per message delivered went from
0.19-0.21 to 0.14-0.16 ms.

What the cascades did, the code now does (app/webhooks/repository.py): deleting an endpoint
deletes its queued rows and its log; the retention purge deletes the log of the messages it
purges, and queued rows whose endpoint or message is gone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6f3b8d0e2a47"
down_revision: str | None = "5e2a7c9d1f36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = (
    ("webhook_dispatch", "endpoint_id", "webhook_endpoint"),
    ("webhook_dispatch", "message_id", "outbox_message"),
    ("webhook_delivery", "endpoint_id", "webhook_endpoint"),
    ("webhook_delivery", "message_id", "outbox_message"),
)


def upgrade() -> None:
    for table, column, referred in _KEYS:
        op.drop_constraint(f"fk_{table}_{column}_{referred}", table, type_="foreignkey")


def downgrade() -> None:
    # Rows whose endpoint or message is gone (possible without the keys) go first.
    for table, column, referred in _KEYS:
        op.execute(
            f"DELETE FROM {table} t WHERE NOT EXISTS "
            f"(SELECT 1 FROM {referred} r WHERE r.id = t.{column})"
        )
        op.create_foreign_key(
            f"fk_{table}_{column}_{referred}",
            table,
            referred,
            [column],
            ["id"],
            ondelete="CASCADE",
        )
