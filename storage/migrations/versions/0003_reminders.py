"""Reminders: staff-added calendar events, every send (one per reminder and person), completions.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "reminder_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("edition", sa.Integer),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title_zh", sa.String(200), nullable=False),
        sa.Column("title_en", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True)),
        sa.Column("all_day", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("link", sa.String(1000)),
        sa.Column("audience", sa.String(64), nullable=False),
        sa.Column("lead_times", sa.String(100), nullable=False, server_default=""),
        sa.Column("note_zh", sa.Text),
        sa.Column("note_en", sa.Text),
        sa.Column("citation", sa.String(100)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "reminder_sends",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("reminder_key", sa.String(160), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False, server_default="zh_TW"),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("batch_key", sa.String(64), nullable=False),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("error", sa.String(200)),
        sa.UniqueConstraint("reminder_key", "user_id", name="uq_reminder_sends_key_user"),
    )
    op.create_index("ix_reminder_sends_batch_key", "reminder_sends", ["batch_key"])
    op.create_index("ix_reminder_sends_status_claimed", "reminder_sends", ["status", "claimed_at"])
    op.create_table(
        "completion_reports",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("user_id", sa.String(64)),
        sa.Column("tax_id", sa.String(8)),
        sa.Column("case_id", sa.String(64)),
        sa.Column("self_reported_at", sa.DateTime(timezone=True)),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("completed_on", sa.Date),
        sa.Column("source", sa.String(64)),
        sa.UniqueConstraint("kind", "subject", name="uq_completion_reports_kind_subject"),
    )
    op.create_index("ix_completion_reports_user_id", "completion_reports", ["user_id"])
    op.create_index("ix_completion_reports_tax_id", "completion_reports", ["tax_id"])


def downgrade():
    op.drop_table("completion_reports")
    op.drop_index("ix_reminder_sends_status_claimed", table_name="reminder_sends")
    op.drop_index("ix_reminder_sends_batch_key", table_name="reminder_sends")
    op.drop_table("reminder_sends")
    op.drop_table("reminder_events")
