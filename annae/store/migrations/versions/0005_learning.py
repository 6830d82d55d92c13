"""Learning: agents' labels of handed-off conversations and customers' ratings of answers.

Revision ID: 0005_learning
Revises: 0001_kb
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_learning"
down_revision = "0001_kb"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learning_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("example_id", sa.Integer(), nullable=True),
        sa.Column("bot_entry_id", sa.Integer(), nullable=True),
        sa.Column("agent", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_learning_labels"),
    )
    op.create_index(
        "ix_learning_labels_conversation_id", "learning_labels", ["conversation_id"], unique=True
    )
    op.create_index("ix_learning_labels_entry_id", "learning_labels", ["entry_id"])
    op.create_table(
        "learning_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("reviewed_by", sa.String(100), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_learning_ratings"),
    )
    op.create_index("ix_learning_ratings_conversation_id", "learning_ratings", ["conversation_id"])
    op.create_index(
        "ix_learning_ratings_message_id", "learning_ratings", ["message_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_learning_ratings_message_id", "learning_ratings")
    op.drop_index("ix_learning_ratings_conversation_id", "learning_ratings")
    op.drop_table("learning_ratings")
    op.drop_index("ix_learning_labels_entry_id", "learning_labels")
    op.drop_index("ix_learning_labels_conversation_id", "learning_labels")
    op.drop_table("learning_labels")
