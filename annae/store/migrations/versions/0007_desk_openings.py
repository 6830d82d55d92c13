"""Desk: the openings of teams' hours announced to the agents (one row each, so that several
processes announce an opening once).

Revision ID: 0007_desk_openings
Revises: 0006_desk
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_desk_openings"
down_revision = "0006_desk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_openings",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("assigned", sa.Integer(), nullable=False),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["desk_teams.id"],
            name=op.f("fk_desk_openings_team_id_desk_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "opened_at", name=op.f("pk_desk_openings")),
    )
    # the alerts of openings used to be kept among the per-conversation alerts under a made-up key
    # (that table comes from another branch, 0006_channels, which may run after this one)
    if "agent_alerts" in sa.inspect(op.get_bind()).get_table_names():
        op.execute("DELETE FROM agent_alerts WHERE conversation_id LIKE 'open:%'")


def downgrade() -> None:
    op.drop_table("desk_openings")
