"""A 數位共融 case's integrated service (附件二 二: 「共融案需說明整合性服務項目與內容」).

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("integrated_service", sa.Text, nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("integrated_service")
