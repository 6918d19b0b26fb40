"""The queue's status column carries no planner statistics (PostgreSQL).

Statistics gathered while the queue was quiet say that no event is queued. During the next burst the planner
then took the queued events for one row and chose plans that read every queued event once for each candidate:
one reservation took 340 s with 10,000 events queued after 20,000 answered, and workers whose statements are cut
after 5 s could reserve nothing until the statistics were gathered again (bench/webhook/notes.md, third pass).
Without statistics for the column the planner assumes PostgreSQL's default share (0.5% of the table) and keeps
the plans the queue's statements were written for (about 1 ms in the same case). A statistics target of 0 keeps
ANALYZE from gathering them again; changing the column to its own type drops those already gathered.

Revision ID: 0010
Revises: 0006
Create Date: 2026-11-30
"""
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite plans without statistics unless ANALYZE is run, which the bot never does
    op.execute("ALTER TABLE accepted_events ALTER COLUMN status SET STATISTICS 0")
    op.execute("ALTER TABLE accepted_events ALTER COLUMN status TYPE varchar(16)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE accepted_events ALTER COLUMN status SET STATISTICS -1")
