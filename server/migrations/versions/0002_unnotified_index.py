"""Delivery rows no client waits to hear about are born notified, and the rows that wait
have an index of their own: the report loop's query no longer scans every final row.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

deliveries = sa.table(
    "deliveries", sa.column("notified", sa.Boolean()), sa.column("message_id", sa.String())
)
messages = sa.table("messages", sa.column("id", sa.String()), sa.column("dlr_url", sa.Text()))


def upgrade() -> None:
    op.execute(
        deliveries.update()
        .where(
            deliveries.c.notified == sa.false(),
            deliveries.c.message_id.in_(
                sa.select(messages.c.id).where(messages.c.dlr_url.is_(None))
            ),
        )
        .values(notified=True)
    )
    op.create_index(
        "ix_deliveries_unnotified",
        "deliveries",
        ["state"],
        sqlite_where=sa.text("notified = 0"),
        postgresql_where=sa.text("notified = false"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_unnotified", "deliveries")
