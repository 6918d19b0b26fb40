"""Security: server-side staff sessions, the code each member joined with, guess limits without user ids.

- ``staff_sessions``: one row per signed-in staff browser (the cookie holds a random token; the
  row is keyed on its SHA-256). Ending a session deletes its row, so a copied cookie is dead.
- ``case_members.joined_code``: the code a proposer or owner joined with, so that revoking a code
  can offer to unlink exactly those who used it.
- ``code_attempts.user_id`` becomes ``user_hash``: a one-way hash of the LINE user id, so the
  invite-code guess limit holds no personal data and survives 刪除我的資料.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
import hashlib

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _hash(user_id: str) -> str:
    return hashlib.sha256(("gonghao:code-attempt:" + user_id).encode()).hexdigest()


def upgrade():
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("staff_id", sa.Integer, nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("agent", sa.String(200), nullable=False, server_default=""),
    )
    with op.batch_alter_table("case_members") as t:
        t.add_column(sa.Column("joined_code", sa.String(20)))
    op.execute("UPDATE case_members SET joined_code = (SELECT CASE WHEN case_members.role = 'proposer' "
               "THEN cases.proposer_code ELSE cases.owner_code END FROM cases WHERE cases.id = case_members.case_id)")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, user_id FROM code_attempts")).all()
    op.drop_index("ix_code_attempts_user_id", "code_attempts")
    with op.batch_alter_table("code_attempts") as t:
        t.alter_column("user_id", new_column_name="user_hash", existing_type=sa.String(64), existing_nullable=False)
    for row_id, user_id in rows:
        bind.execute(sa.text("UPDATE code_attempts SET user_hash = :h WHERE id = :i"),
                     {"h": _hash(user_id), "i": row_id})
    op.create_index("ix_code_attempts_user_hash", "code_attempts", ["user_hash"])


def downgrade():
    op.drop_index("ix_code_attempts_user_hash", "code_attempts")
    op.execute("DELETE FROM code_attempts")  # a hash cannot be turned back into a user id
    with op.batch_alter_table("code_attempts") as t:
        t.alter_column("user_hash", new_column_name="user_id", existing_type=sa.String(64), existing_nullable=False)
    op.create_index("ix_code_attempts_user_id", "code_attempts", ["user_id"])
    with op.batch_alter_table("case_members") as t:
        t.drop_column("joined_code")
    op.drop_table("staff_sessions")
