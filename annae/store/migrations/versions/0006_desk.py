"""Desk: teams, members, agents' presence and capacity, routing, private notes, saved replies, CSAT.

Revision ID: 0006_desk
Revises: 0002_service
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_desk"
down_revision = "0002_service"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("first_response_target_s", sa.Integer(), nullable=True),
        sa.Column("resolve_target_s", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_teams")),
    )
    op.create_index(op.f("ix_desk_teams_name"), "desk_teams", ["name"], unique=True)
    op.create_table(
        "desk_agents",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("presence", sa.String(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_desk_agents_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_desk_agents")),
    )
    op.create_table(
        "desk_saved_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shortcut", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("text_ko", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_desk_saved_replies_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["desk_teams.id"],
            name=op.f("fk_desk_saved_replies_team_id_desk_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_saved_replies")),
    )
    op.create_index(
        op.f("ix_desk_saved_replies_shortcut"), "desk_saved_replies", ["shortcut"], unique=False
    )
    op.create_table(
        "desk_team_members",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["desk_teams.id"],
            name=op.f("fk_desk_team_members_team_id_desk_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_desk_team_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_desk_team_members")),
    )
    op.create_index(
        op.f("ix_desk_team_members_user_id"), "desk_team_members", ["user_id"], unique=False
    )
    op.create_table(
        "desk_csat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_desk_csat_agent_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_desk_csat_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["desk_teams.id"],
            name=op.f("fk_desk_csat_team_id_desk_teams"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_csat")),
        sa.UniqueConstraint(
            "conversation_id", "resolved_at", name=op.f("uq_desk_csat_conversation_id")
        ),
    )
    op.create_index(
        op.f("ix_desk_csat_conversation_id"), "desk_csat", ["conversation_id"], unique=False
    )
    op.create_table(
        "desk_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("mentions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_desk_notes_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_desk_notes_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_notes")),
    )
    op.create_index(
        op.f("ix_desk_notes_conversation_id"), "desk_notes", ["conversation_id"], unique=False
    )
    op.create_table(
        "desk_routing",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_desk_routing_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["desk_teams.id"],
            name=op.f("fk_desk_routing_team_id_desk_teams"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_desk_routing")),
    )
    op.create_index(op.f("ix_desk_routing_team_id"), "desk_routing", ["team_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_desk_routing_team_id"), table_name="desk_routing")
    op.drop_table("desk_routing")
    op.drop_index(op.f("ix_desk_notes_conversation_id"), table_name="desk_notes")
    op.drop_table("desk_notes")
    op.drop_index(op.f("ix_desk_csat_conversation_id"), table_name="desk_csat")
    op.drop_table("desk_csat")
    op.drop_index(op.f("ix_desk_team_members_user_id"), table_name="desk_team_members")
    op.drop_table("desk_team_members")
    op.drop_index(op.f("ix_desk_saved_replies_shortcut"), table_name="desk_saved_replies")
    op.drop_table("desk_saved_replies")
    op.drop_table("desk_agents")
    op.drop_index(op.f("ix_desk_teams_name"), table_name="desk_teams")
    op.drop_table("desk_teams")
