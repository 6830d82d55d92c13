"""Knowledge base: entries, examples, revisions.

Revision ID: 0001_kb
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_kb"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_kb_entries_key", "kb_entries", ["key"], unique=True)
    op.create_table(
        "kb_examples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "entry_id",
            sa.Integer(),
            sa.ForeignKey(
                "kb_entries.id", ondelete="CASCADE", name="fk_kb_examples_entry_id_kb_entries"
            ),
            nullable=True,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_kb_examples_entry_id", "kb_examples", ["entry_id"])
    op.create_table(
        "kb_revisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kb_revisions")
    op.drop_index("ix_kb_examples_entry_id", "kb_examples")
    op.drop_table("kb_examples")
    op.drop_index("ix_kb_entries_key", "kb_entries")
    op.drop_table("kb_entries")
