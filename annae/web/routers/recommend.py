"""Recommendation API: ``/api/v1/customers/{id}/recommendations``, ``/api/v1/products/{id}/similar``,
product cards for a knowledge-base entry, and interaction recording (clicks on cards).

Every endpoint needs a logged-in agent/admin or an ``X-API-Key`` (see :func:`authorize`).
A customer without marketing consent gets ``200`` with ``consent: false``, no items and the
reason, so that callers need no special error path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from annae.recommend import service
from annae.recommend.registry import SavedModel, registry_for
from annae.recommend.store import RecommendError, record_interaction
from annae.store.db import get_engine, session_scope
from annae.web.inputs import Id

router = APIRouter(prefix="/api/v1", tags=["recommendations"])


def get_db() -> Engine:
    """The database engine (from settings); tests override this dependency."""
    return get_engine()


def get_model() -> SavedModel | None:
    """The live recommender, loaded once per process and reloaded when a new one goes live."""
    from annae.settings import get_settings

    settings = get_settings()
    return registry_for(settings.models_dir).load_live(threads=settings.threads)


def authorize(request: Request) -> str:
    """An agent/admin (bearer token or session cookie) or a channel's API key; else 401."""
    from annae.web.auth import api_key_channel, staff_identity
    from annae.web.routers.deps import ApiError

    try:
        # a browser session (cookie) on an unsafe method must echo the CSRF cookie
        identity = staff_identity(request, check_csrf_for=request)
        if identity is not None:
            return f"user:{identity.username}"
        channel = api_key_channel(request)
    except ApiError as exc:  # answered the same way with or without the service's handlers
        raise HTTPException(exc.status, exc.message) from exc
    if channel is not None:
        return f"channel:{channel}"
    raise HTTPException(401, "log in or send an X-API-Key to read recommendations")


@contextmanager
def _session(db: Engine) -> Iterator[Session]:
    """A transaction whose RecommendError answers with its status: this router is also mounted
    alone (without the service's handlers), so it maps its errors here."""
    try:
        with session_scope(db) as session:
            yield session
    except RecommendError as exc:
        raise HTTPException(exc.status, str(exc)) from exc


@router.get("/customers/{customer_id}/recommendations")
def customer_recommendations(
    customer_id: str,
    k: int = Query(10, ge=1, le=service.MAX_K),
    list_: Literal["mixed", "buy_again", "also_like"] = Query("mixed", alias="list"),
    db: Engine = Depends(get_db),
    model: SavedModel | None = Depends(get_model),
    _caller: str = Depends(authorize),
) -> dict:
    """Products for one customer, each with a reason; unknown customers get popular products."""
    with _session(db) as session:
        return service.recommend(session, model, customer_id, k, list_)


@router.get("/products/{product_id}/similar")
def similar_products(
    product_id: str,
    k: int = Query(10, ge=1, le=service.MAX_K),
    db: Engine = Depends(get_db),
    model: SavedModel | None = Depends(get_model),
    _caller: str = Depends(authorize),
) -> dict:
    """Products bought by the customers who bought this one (or with a similar description)."""
    with _session(db) as session:
        return service.similar(session, model, product_id, k)


@router.get("/entries/{entry_id}/products")
def entry_cards(
    entry_id: Id,
    customer_id: str | None = None,
    k: int = Query(3, ge=1, le=10),
    db: Engine = Depends(get_db),
    model: SavedModel | None = Depends(get_model),
    _caller: str = Depends(authorize),
) -> dict:
    """Up to k product cards for the chat after an answer about this entry (consent respected)."""
    with _session(db) as session:
        cards = service.recommend_for_entry(session, model, entry_id, customer_id, k)
    return {"entry_id": entry_id, "customer_id": customer_id, "items": cards}


class InteractionIn(BaseModel):
    product_id: str = Field(min_length=1, max_length=100)
    kind: Literal["click", "view", "conversation", "purchase"] = "click"
    quantity: int = Field(1, ge=1, le=100_000)


@router.post("/customers/{customer_id}/interactions", status_code=201)
def add_interaction(
    customer_id: str,
    body: InteractionIn,
    db: Engine = Depends(get_db),
    _caller: str = Depends(authorize),
) -> dict:
    """Record a click on a product card (or a view / conversation mention) for the next training."""
    with _session(db) as session:
        row = record_interaction(
            session,
            customer_id,
            body.product_id,
            kind=body.kind,
            quantity=body.quantity,
            source="api",
        )
        return {
            "id": row.id,
            "customer_id": row.customer_id,
            "product_id": row.product_id,
            "kind": row.kind,
            "at": row.at.isoformat(),
        }
