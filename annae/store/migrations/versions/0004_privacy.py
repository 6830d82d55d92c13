"""Privacy: consent events and the append-only audit log (with a trigger refusing changes).

Revision ID: 0004_privacy
Revises: 0001_kb
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_privacy"
down_revision = "0001_kb"
branch_labels = None
depends_on = None

APPEND_ONLY = "privacy_audit_log is append-only"


def upgrade() -> None:
    op.create_table(
        "privacy_consent_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("text_version", sa.String(100), nullable=True),
    )
    op.create_index(
        "ix_privacy_consent_events_customer_id", "privacy_consent_events", ["customer_id"]
    )
    op.create_table(
        "privacy_audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_privacy_audit_log_at", "privacy_audit_log", ["at"])
    op.create_index("ix_privacy_audit_log_action", "privacy_audit_log", ["action"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER privacy_audit_log_no_{verb.lower()} BEFORE {verb} "
                f"ON privacy_audit_log BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION privacy_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER privacy_audit_log_no_change BEFORE UPDATE OR DELETE "
            "ON privacy_audit_log FOR EACH ROW EXECUTE FUNCTION privacy_audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER privacy_audit_log_no_truncate BEFORE TRUNCATE "
            "ON privacy_audit_log FOR EACH STATEMENT EXECUTE FUNCTION privacy_audit_log_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS privacy_audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS privacy_audit_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS privacy_audit_log_no_truncate ON privacy_audit_log")
        op.execute("DROP TRIGGER IF EXISTS privacy_audit_log_no_change ON privacy_audit_log")
        op.execute("DROP FUNCTION IF EXISTS privacy_audit_log_append_only()")
    op.drop_index("ix_privacy_audit_log_action", "privacy_audit_log")
    op.drop_index("ix_privacy_audit_log_at", "privacy_audit_log")
    op.drop_table("privacy_audit_log")
    op.drop_index("ix_privacy_consent_events_customer_id", "privacy_consent_events")
    op.drop_table("privacy_consent_events")
