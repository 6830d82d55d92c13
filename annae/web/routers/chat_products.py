"""Product cards in the chat: cards after an answer, clicks, an agent's "suggest products",
and the admin's links between knowledge-base entries and products.

Cards are shown only for a conversation with a ``customer_id`` whose consent covers marketing
(checked on every request, so a withdrawal takes effect at once). Agent suggestions are stored as
a message of type ``products`` whose ``options`` column holds the cards.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from annae.agents.users import Identity
from annae.channels import hooks
from annae.dialogue import conversations as convs
from annae.recommend import service
from annae.recommend.store import (
    RecommendError,
    entry_products,
    has_marketing_consent,
    link_entry,
    products_by_id,
    record_interaction,
)
from annae.store.db import session_scope
from annae.web.auth import api_key_channel, require_role
from annae.web.routers.conversations import authorize
from annae.web.routers.deps import ApiError, bearer_token, services

router = APIRouter(prefix="/api/v1", tags=["products"])
log = logging.getLogger("annae.web")
CARDS = 3
NO_CUSTOMER = "this conversation has no identified customer"
SUGGEST_TEXT = {"en": "Products you may like", "ko": "추천 상품"}
agent = require_role("agent")
admin = require_role("admin")


class LinksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_ids: list[str] = Field(max_length=50)


def _model(request: Request):
    """The live recommender (None when none is trained or it cannot be loaded)."""
    return recommender(services(request).settings)


def recommender(settings):
    """The live recommender for ``settings`` (None when none is trained or it cannot be loaded)."""
    from annae.recommend.registry import registry_for

    try:
        return registry_for(settings.models_dir).load_live(threads=settings.threads)
    except Exception:  # a broken model folder must not break the chat
        log.exception("could not load the recommender")
        return None


def card(item: dict) -> dict:
    """What the chat shows of a recommended product."""
    return {
        "product_id": item["product_id"],
        "name": item["name"],
        "price": item["price"],
        "reason": item["reason"],
    }


def _customer_conv(request: Request, session: Session, conv_id: str):
    return authorize(request, session, conv_id, bearer_token(request), api_key_channel(request))[0]


def _consenting(session: Session, customer_id: str | None) -> tuple[bool, str | None]:
    if not customer_id:
        return False, NO_CUSTOMER
    if not has_marketing_consent(session, customer_id):
        return False, service.NO_CONSENT
    return True, None


@router.get("/conversations/{conv_id}/products")
def entry_cards(conv_id: str, request: Request, entry_id: int = Query(ge=1, le=2**31 - 1)) -> dict:
    """Up to three product cards after an answer about ``entry_id`` (empty without consent)."""
    saved = _model(request)
    with session_scope(services(request).db) as session:
        conv = _customer_conv(request, session, conv_id)
        consent, reason = _consenting(session, conv.customer_id)
        items: list[dict] = []
        if consent:
            try:
                items = service.recommend_for_entry(
                    session, saved, entry_id, conv.customer_id, CARDS
                )
            except RecommendError as exc:
                raise ApiError(422, "invalid", str(exc)) from exc
        return {
            "entry_id": entry_id,
            "consent": consent,
            "reason": reason,
            "items": [card(i) for i in items],
        }


@router.post("/conversations/{conv_id}/products/{product_id}/click", status_code=204)
def click(
    conv_id: str, request: Request, product_id: str = Path(min_length=1, max_length=100)
) -> Response:
    """Record a click on a card (only for a consenting identified customer); 404 for unknown or
    deleted products."""
    with session_scope(services(request).db) as session:
        conv = _customer_conv(request, session, conv_id)
        product = products_by_id(session, [product_id]).get(product_id)
        if product is None or not product.active:
            raise ApiError(404, "not_found", f"no product with id {product_id!r}")
        if _consenting(session, conv.customer_id)[0]:
            record_interaction(session, conv.customer_id, product.id, kind="click", source="chat")
    return Response(status_code=204)


@router.post("/conversations/{conv_id}/suggest-products", tags=["agent"])
def suggest_products(conv_id: str, request: Request, user: Identity = Depends(agent)) -> dict:
    """Post up to three recommended products into the conversation as an agent message."""
    svc = services(request)
    saved = _model(request)
    with session_scope(svc.db) as session:
        conv = convs.get(session, conv_id)
        if conv.state == "resolved":
            raise ApiError(409, "conflict", f"conversation {conv.id} is resolved")
        consent, reason = _consenting(session, conv.customer_id)
        if not consent:
            raise ApiError(409, "no_consent", reason or service.NO_CONSENT)
        try:
            found = service.recommend(session, saved, conv.customer_id, CARDS)["items"]
        except RecommendError as exc:
            raise ApiError(422, "invalid", str(exc)) from exc
        if not found:
            raise ApiError(409, "no_products", "there are no products to suggest")
        text = SUGGEST_TEXT.get(conv.language or "en", SUGGEST_TEXT["en"])
        msg = convs.add_message(
            session,
            conv,
            "agent",
            "products",
            text,
            options=[card(i) for i in found],
            agent_id=user.id,
        )
        conv.updated_at = msg.created_at
        events = convs.message_events(conv, [msg], user.username)
        hooks.record(session, events)
        out = convs.message_dict(msg, user.username)
    svc.broker.publish_many(events)
    return out


def _entry_or_404(session: Session, entry_id: int) -> None:
    from annae.kb.entries import KBError, get_entry

    try:
        get_entry(session, entry_id)
    except KBError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


def _links(session: Session, entry_id: int) -> dict:
    ids = entry_products(session, entry_id)
    found = products_by_id(session, ids)
    return {
        "entry_id": entry_id,
        "products": [
            {
                "product_id": p,
                "name": found[p].name if p in found else None,
                "price": found[p].price if p in found else None,
                "active": bool(found[p].active) if p in found else False,
            }
            for p in ids
        ],
    }


@router.get("/admin/entries/{entry_id}/products", tags=["admin"])
def get_links(entry_id: int, request: Request, _user: Identity = Depends(admin)) -> dict:
    """The products linked to a knowledge-base entry, in link order."""
    with session_scope(services(request).db) as session:
        _entry_or_404(session, entry_id)
        return _links(session, entry_id)


@router.put("/admin/entries/{entry_id}/products", tags=["admin"])
def put_links(
    entry_id: int, body: LinksIn, request: Request, _user: Identity = Depends(admin)
) -> dict:
    """Replace an entry's linked products (an empty list removes them); unknown ids change nothing."""
    with session_scope(services(request).db) as session:
        _entry_or_404(session, entry_id)
        try:
            link_entry(session, entry_id, body.product_ids)
        except RecommendError as exc:
            raise ApiError(422, "invalid", str(exc)) from exc
        return _links(session, entry_id)
