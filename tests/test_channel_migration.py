"""Migrations 0006_channels and 0007_desk_openings create exactly the tables the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from annae.store.db import Base, init_db

TABLES = {
    "channels",
    "channel_contacts",
    "channel_refs",
    "webhooks",
    "channel_outbox",
    "agent_alerts",
    "desk_openings",
}


def test_migration_matches_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if any(t in repr(d) for t in TABLES)]
    assert ours == []
    assert TABLES <= set(inspect(engine).get_table_names())


def test_openings_move_out_of_the_conversation_alerts(db_url):
    """A database from before 0007_desk_openings kept openings' alerts in agent_alerts under a
    made-up key; the upgrade drops those rows and keeps the conversations' own."""
    from alembic import command
    from sqlalchemy import text

    from annae.store.db import alembic_config, get_engine

    engine = get_engine(db_url)
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006_desk")  # the database as it was before
        assert "desk_openings" not in inspect(conn).get_table_names()
        conn.execute(
            text(
                "INSERT INTO agent_alerts (conversation_id, sent_at) VALUES "
                "('open:1:202612060900', CURRENT_TIMESTAMP), ('c0ffee', CURRENT_TIMESTAMP)"
            )
        )
    init_db(engine)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT conversation_id FROM agent_alerts")).scalars().all()
    assert kept == ["c0ffee"]
    assert "desk_openings" in inspect(engine).get_table_names()
