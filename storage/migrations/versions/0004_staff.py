"""The staff console: accounts, login attempts, imports, township groups.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "staff_login_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_staff_login_attempts_name", "staff_login_attempts", ["name"])
    op.create_index("ix_staff_login_attempts_ip", "staff_login_attempts", ["ip"])
    op.create_index("ix_staff_login_attempts_at", "staff_login_attempts", ["at"])
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("accepted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows", sa.Text, nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by", sa.String(128)),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_imports_sha256", "imports", ["sha256"])
    op.create_table(
        "township_groups",
        sa.Column("town_code", sa.String(8), primary_key=True),
        sa.Column("grp", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("township_groups")
    op.drop_index("ix_imports_sha256", table_name="imports")
    op.drop_table("imports")
    op.drop_index("ix_staff_login_attempts_at", table_name="staff_login_attempts")
    op.drop_index("ix_staff_login_attempts_ip", table_name="staff_login_attempts")
    op.drop_index("ix_staff_login_attempts_name", table_name="staff_login_attempts")
    op.drop_table("staff_login_attempts")
    op.drop_table("staff_accounts")
