"""Recommendations: customers, products, interactions, entry ↔ product links, models.

Revision ID: 0003_recommend
Revises: 0001_kb
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_recommend"
down_revision = "0001_kb"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rec_customers",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("country", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rec_customers"),
    )
    op.create_table(
        "rec_products",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("category", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rec_products"),
    )
    op.create_table(
        "rec_interactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("product_id", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["rec_customers.id"],
            ondelete="CASCADE",
            name="fk_rec_interactions_customer_id_rec_customers",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["rec_products.id"],
            ondelete="CASCADE",
            name="fk_rec_interactions_product_id_rec_products",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_rec_interactions"),
    )
    op.create_index("ix_rec_interactions_customer_id", "rec_interactions", ["customer_id"])
    op.create_index("ix_rec_interactions_product_id", "rec_interactions", ["product_id"])
    op.create_index("ix_rec_interactions_at", "rec_interactions", ["at"])
    op.create_index("ix_rec_interactions_source", "rec_interactions", ["source"])
    op.create_table(
        "rec_entry_products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["rec_products.id"],
            ondelete="CASCADE",
            name="fk_rec_entry_products_product_id_rec_products",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_rec_entry_products"),
        sa.UniqueConstraint("entry_id", "product_id", name="uq_rec_entry_products_entry_id"),
    )
    op.create_index("ix_rec_entry_products_entry_id", "rec_entry_products", ["entry_id"])
    op.create_table(
        "rec_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("engine", sa.String(20), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("n_customers", sa.Integer(), nullable=False),
        sa.Column("n_products", sa.Integer(), nullable=False),
        sa.Column("n_interactions", sa.Integer(), nullable=False),
        sa.Column("fit_seconds", sa.Float(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rec_models"),
        sa.UniqueConstraint("version", name="uq_rec_models_version"),
    )


def downgrade() -> None:
    op.drop_table("rec_models")
    op.drop_index("ix_rec_entry_products_entry_id", "rec_entry_products")
    op.drop_table("rec_entry_products")
    for col in ("source", "at", "product_id", "customer_id"):
        op.drop_index(f"ix_rec_interactions_{col}", "rec_interactions")
    op.drop_table("rec_interactions")
    op.drop_table("rec_products")
    op.drop_table("rec_customers")
