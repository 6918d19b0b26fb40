"""One database transaction per event: the queue, the outbox and the dialog state in the database.

accepted_events becomes the queue on every backend (PostgreSQL in production, SQLite on the
embedded default): each user's oldest queued event is taken under a row lock, processed and
marked done in one transaction with the dialog's writes, the new state and the answer (a row
of deliveries, the outbox). Failed attempts back off; an event that keeps failing is
dead-lettered with a reason that names no person. The state carries a version that fences a
worker that lost its turn.

Revision ID: 0006
Revises: 0003, 0004, 0005
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = ("0003", "0004", "0005")
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("accepted_events") as t:
        t.add_column(sa.Column("user_key", sa.String(64), nullable=False, server_default=""))
        t.add_column(sa.Column("ripe_at", sa.BigInteger, nullable=False, server_default="0"))
        t.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        t.add_column(sa.Column("next_attempt_at", sa.BigInteger, nullable=False, server_default="0"))
        t.add_column(sa.Column("reason", sa.String(200)))
        t.add_column(sa.Column("reserved_by", sa.String(64)))
        t.add_column(sa.Column("reserved_until", sa.BigInteger, nullable=False, server_default="0"))
    op.execute("UPDATE accepted_events SET user_key = COALESCE(user_id, webhook_event_id)")
    op.create_index("ix_accepted_events_queued", "accepted_events", ["user_key", "event_timestamp"],
                    postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))
    op.create_index("ix_accepted_events_turn", "accepted_events", ["event_timestamp", "received_at"],
                    postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))
    with op.batch_alter_table("deliveries") as t:
        t.add_column(sa.Column("claim", sa.String(32)))
        t.add_column(sa.Column("claimed_until", sa.BigInteger, nullable=False, server_default="0"))
        t.add_column(sa.Column("phase", sa.String(8), nullable=False, server_default="reply"))
        t.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        t.add_column(sa.Column("next_attempt_at", sa.BigInteger, nullable=False, server_default="0"))
        t.add_column(sa.Column("reason", sa.String(200)))
    op.create_index("ix_deliveries_open", "deliveries", ["user_id"],
                    postgresql_where=sa.text("status IN ('pending', 'sending')"),
                    sqlite_where=sa.text("status IN ('pending', 'sending')"))
    op.create_index("ix_deliveries_status", "deliveries", ["status", "next_attempt_at"])
    with op.batch_alter_table("dialog_states") as t:
        t.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("dialog_states") as t:
        t.drop_column("version")
    op.drop_index("ix_deliveries_status", "deliveries")
    op.drop_index("ix_deliveries_open", "deliveries")
    with op.batch_alter_table("deliveries") as t:
        for name in ("reason", "next_attempt_at", "attempts", "phase", "claimed_until", "claim"):
            t.drop_column(name)
    op.drop_index("ix_accepted_events_turn", "accepted_events")
    op.drop_index("ix_accepted_events_queued", "accepted_events")
    with op.batch_alter_table("accepted_events") as t:
        for name in ("reserved_until", "reserved_by", "reason", "next_attempt_at", "attempts", "ripe_at", "user_key"):
            t.drop_column(name)
