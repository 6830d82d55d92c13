"""Recommendation tables: customers, products, interactions, KB entry ↔ product links, models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from annae.store.db import Base, utcnow


class RecCustomer(Base):
    """A customer known by the shop's own id (e.g. Online Retail's CustomerID)."""

    __tablename__ = "rec_customers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    country: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Until the privacy capability defines consent: a per-customer flag that defaults to no.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecProduct(Base):
    """A catalogue product (e.g. a StockCode); ``active=False`` means deleted, never recommended."""

    __tablename__ = "rec_products"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[float | None] = mapped_column(Float, nullable=True)
    category: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class RecInteraction(Base):
    """A customer's purchase, view, click or conversation mention of a product."""

    __tablename__ = "rec_interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("rec_customers.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[str] = mapped_column(
        ForeignKey("rec_products.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(20), default="purchase")
    source: Mapped[str] = mapped_column(String(200), default="", index=True)


class RecEntryProduct(Base):
    """A knowledge-base entry linked to a product (``entry_id`` is a KB id; no foreign key)."""

    __tablename__ = "rec_entry_products"
    __table_args__ = (UniqueConstraint("entry_id", "product_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(Integer, index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("rec_products.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecModel(Base):
    """A trained recommender saved under ``models/recommend/<version>``; one is live."""

    __tablename__ = "rec_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(50), unique=True)
    kind: Mapped[str] = mapped_column(String(50), default="hybrid")
    engine: Mapped[str] = mapped_column(String(20), default="local")
    path: Mapped[str] = mapped_column(String(1000))
    n_customers: Mapped[int] = mapped_column(Integer, default=0)
    n_products: Mapped[int] = mapped_column(Integer, default=0)
    n_interactions: Mapped[int] = mapped_column(Integer, default=0)
    fit_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    live: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
