"""Cases, case members, letters of intent and their versions, consents, previous programs, code attempts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("edition", sa.Integer, nullable=False, index=True),
        sa.Column("proposer_name", sa.String(200), nullable=False),
        sa.Column("plan_name", sa.String(200), nullable=False),
        sa.Column("case_type", sa.String(16), nullable=False),
        sa.Column("theme", sa.String(32)),
        sa.Column("vendor_name", sa.String(200), nullable=False),
        sa.Column("solution_name", sa.String(200), nullable=False),
        sa.Column("solution_content", sa.Text, nullable=False),
        sa.Column("sla", sa.Text, nullable=False),
        sa.Column("period", sa.String(200), nullable=False),
        sa.Column("other_content", sa.Text, nullable=False),
        sa.Column("planned_count", sa.Integer, nullable=False),
        sa.Column("proposer_code", sa.String(20), nullable=False, unique=True),
        sa.Column("owner_code", sa.String(20), nullable=False, unique=True),
        sa.Column("proposer_code_revoked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("owner_code_revoked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "case_members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("case_id", "user_id", "role", name="uq_case_member"),
    )
    op.create_table(
        "letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("company_name", sa.String(200)),
        sa.Column("business_number", sa.String(8), index=True),
        sa.Column("company_type", sa.Integer),
        sa.Column("employees", sa.Integer),
        sa.Column("county_code", sa.String(5)),
        sa.Column("town_code", sa.String(8)),
        sa.Column("products", sa.String(300)),
        sa.Column("other_programs", sa.Boolean),
        sa.Column("other_program_names", sa.String(300)),
        sa.Column("contact_name", sa.String(100)),
        sa.Column("mobile", sa.String(20)),
        sa.Column("phone", sa.String(20)),
        sa.Column("phone_ext", sa.String(10)),
        sa.Column("email", sa.String(254)),
        sa.Column("representative", sa.String(100)),
        sa.Column("address", sa.String(300)),
        sa.Column("undertakings", sa.Text),
        sa.Column("undertakings_at", sa.DateTime(timezone=True)),
        sa.Column("flag_over_nine", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("flag_conflict", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("flag_previous_program", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("flag_duplicate", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("screening", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("case_id", "user_id", name="uq_letter_case_user"),
    )
    op.create_table(
        "letter_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("letter_id", sa.Integer, sa.ForeignKey("letters.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("notice_version", sa.String(32), nullable=False),
        sa.Column("agreed", sa.Boolean, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "previous_programs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("business_number", sa.String(8), nullable=False, index=True),
        sa.Column("program_name", sa.String(200), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "code_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade():
    for table in ("code_attempts", "previous_programs", "consents", "letter_versions", "letters", "case_members",
                  "cases"):
        op.drop_table(table)
