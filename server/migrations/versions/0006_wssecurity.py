"""WS-Security: an account's encrypted secret for PasswordDigest tokens, and the nonces
seen within the freshness window (smsxml.server.wssecurity).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("wss_secret", sa.Text(), nullable=True))
    op.create_table(
        "wss_nonces",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_wss_nonces_expires_at", "wss_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_table("wss_nonces")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("wss_secret")
