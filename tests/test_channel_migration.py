"""Migration 0006_channels creates exactly the tables the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from annae.store.db import Base

TABLES = {
    "channels",
    "channel_contacts",
    "channel_refs",
    "webhooks",
    "channel_outbox",
    "agent_alerts",
}


def test_migration_matches_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if any(t in repr(d) for t in TABLES)]
    assert ours == []
    assert TABLES <= set(inspect(engine).get_table_names())
