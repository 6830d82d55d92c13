"""Migration 0003_recommend creates exactly the tables the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from annae.store.db import Base


def test_migration_matches_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if "rec_" in repr(d)]
    assert ours == []
    names = set(inspect(engine).get_table_names())
    assert {
        "rec_customers",
        "rec_products",
        "rec_interactions",
        "rec_entry_products",
        "rec_models",
    } <= names
    fks = {fk["name"] for fk in inspect(engine).get_foreign_keys("rec_interactions")}
    if engine.dialect.name == "postgresql":
        assert fks == {
            "fk_rec_interactions_customer_id_rec_customers",
            "fk_rec_interactions_product_id_rec_products",
        }
