"""Pollers ask about due Pending rows through an index of their own (no scan of every
row a provider was ever sent), and live dispatchers register, so that rate limits can be
shared across nodes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_polling",
        "deliveries",
        ["provider", "next_attempt_at"],
        sqlite_where=sa.text("state = 'Pending'"),
        postgresql_where=sa.text("state = 'Pending'"),
    )
    op.create_table(
        "dispatchers",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dispatchers")
    op.drop_index("ix_deliveries_polling", "deliveries")
