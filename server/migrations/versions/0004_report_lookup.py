"""A provider's report names one recipient of an id that may stand for thousands (iSMS
and net2sms give one id to a whole multi-recipient send): the provider-id index carries
the recipient too, so each report reads its own row, not every row of the send.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PARTIAL = "provider_id IS NOT NULL"


def _provider_id_index(columns: list[str]) -> None:
    op.create_index(
        "ix_deliveries_provider_id",
        "deliveries",
        columns,
        sqlite_where=sa.text(PARTIAL),
        postgresql_where=sa.text(PARTIAL),
    )


def upgrade() -> None:
    op.drop_index("ix_deliveries_provider_id", "deliveries")
    _provider_id_index(["provider", "provider_id", "recipient"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_provider_id", "deliveries")
    _provider_id_index(["provider", "provider_id"])
