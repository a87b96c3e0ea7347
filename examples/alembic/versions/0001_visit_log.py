"""A visit log beside the site table: a first migration to show the mechanism.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("extra", postgresql.JSONB, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("visit_log_site", "visit_log", ["site_id"])


def downgrade() -> None:
    op.drop_index("visit_log_site", table_name="visit_log")
    op.drop_table("visit_log")
