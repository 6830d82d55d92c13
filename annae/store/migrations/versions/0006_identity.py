"""Service: signed customer identity on conversations (verified flag, name and e-mail for agents).

Revision ID: 0006_identity
Revises: 0002_service
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_identity"
down_revision = "0002_service"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("customer_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("customer_email", sa.String(320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("customer_email")
        batch.drop_column("customer_name")
        batch.drop_column("verified")
