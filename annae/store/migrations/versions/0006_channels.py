"""Channels: Kakao and e-mail channels, their contacts and references, outbound webhooks, the
outbox of outbound calls, and agent-alert throttling.

Revision ID: 0006_channels
Revises: 0002_service
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_channels"
down_revision = "0002_service"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_channels"),
    )
    op.create_index("ix_channels_kind", "channels", ["kind"])
    op.create_index("ix_channels_name", "channels", ["name"], unique=True)
    op.create_index("ix_channels_secret_hash", "channels", ["secret_hash"], unique=True)
    op.create_table(
        "channel_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(320), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=True),
        sa.Column("delivered_upto", sa.Integer(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("callback_expires_at", TZ, nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name="fk_channel_contacts_channel_id_channels",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_channel_contacts"),
        sa.UniqueConstraint("channel_id", "external_id", name="uq_channel_contacts_channel_id"),
    )
    op.create_index("ix_channel_contacts_conversation_id", "channel_contacts", ["conversation_id"])
    op.create_table(
        "channel_refs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(998), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name="fk_channel_refs_channel_id_channels",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_channel_refs"),
        sa.UniqueConstraint("channel_id", "ref", name="uq_channel_refs_channel_id"),
    )
    op.create_index("ix_channel_refs_conversation_id", "channel_refs", ["conversation_id"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_table(
        "channel_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("ordering", sa.String(100), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_channel_outbox"),
    )
    for column, unique in (
        ("delivery_id", True),
        ("kind", False),
        ("target_id", False),
        ("ordering", False),
        ("status", False),
        ("next_attempt_at", False),
    ):
        op.create_index(f"ix_channel_outbox_{column}", "channel_outbox", [column], unique=unique)
    op.create_table(
        "agent_alerts",
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("sent_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_agent_alerts"),
    )


def downgrade() -> None:
    op.drop_table("agent_alerts")
    op.drop_table("channel_outbox")
    op.drop_table("webhooks")
    op.drop_table("channel_refs")
    op.drop_table("channel_contacts")
    op.drop_table("channels")
