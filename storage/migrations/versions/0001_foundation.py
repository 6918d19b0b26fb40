"""The foundation: LINE users, accepted events, deliveries, dialog state, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "line_users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("language", sa.String(16)),
        sa.Column("locale", sa.String(8), nullable=False, server_default="zh_TW"),
        sa.Column("role", sa.String(16)),
        sa.Column("followed", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("blocked_at", sa.DateTime(timezone=True)),
        sa.Column("consent_at", sa.DateTime(timezone=True)),
        sa.Column("consent_version", sa.String(32)),
        sa.Column("reminders_paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "accepted_events",
        sa.Column("webhook_event_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), index=True),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("event_timestamp", sa.BigInteger, nullable=False),
        sa.Column("is_redelivery", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "deliveries",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64)),
        sa.Column("reply_token", sa.String(255)),
        sa.Column("event_timestamp", sa.BigInteger, nullable=False),
        sa.Column("messages", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(8)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "dialog_states",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128)),
        sa.Column("detail", sa.Text),
    )


def downgrade():
    for table in ("audit_log", "dialog_states", "deliveries", "accepted_events", "line_users"):
        op.drop_table(table)
