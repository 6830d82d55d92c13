"""Product cards in the chat: cards after an answer, clicks, an agent's "suggest products",
and the admin's links between knowledge-base entries and products.

Every chat may get one row of cards after a bot answer about an entry linked to products (never
after a hand-off, so never on complaints or frustration; ``ANNAE_CHAT_PRODUCTS=false`` turns them
off). A conversation with a ``customer_id`` whose consent covers marketing gets ``personal``
cards; everyone else ``general`` ones computed without their data. Consent is checked on every
request, so a withdrawal takes effect at once; clicks and interest are recorded only for
consenting identified customers. Agent suggestions (personal only) are stored as a message of
type ``products`` whose ``options`` column holds the cards.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from annae.agents.users import Identity
from annae.channels import hooks
from annae.dialogue import conversations as convs
from annae.recommend import (
    CARDS,
    GENERAL,
    NO_CONSENT,
    PERSONAL,
    RecommendError,
    card,
    entry_products,
    has_entry_interest,
    has_marketing_consent,
    link_entry,
    products_by_id,
    recommend,
    recommend_for_entry,
    record_entry_interest,
    record_interaction,
    suggest_for_entry,
)
from annae.store.db import session_scope
from annae.web.auth import api_key_channel, require_role
from annae.web.inputs import Id
from annae.web.routers.conversations import authorize
from annae.web.routers.deps import ApiError, bearer_token, services

router = APIRouter(prefix="/api/v1", tags=["products"])
log = logging.getLogger("annae.web")
NO_CUSTOMER = "this conversation has no identified customer"
CARDS_OFF = "product cards are turned off for this deployment"
NOT_AFTER_ANSWER = "cards follow only the bot's latest answer about this entry"
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


def _customer_conv(request: Request, session: Session, conv_id: str):
    return authorize(request, session, conv_id, bearer_token(request), api_key_channel(request))[0]


def _consenting(session: Session, customer_id: str | None) -> tuple[bool, str | None]:
    if not customer_id:
        return False, NO_CUSTOMER
    if not has_marketing_consent(session, customer_id):
        return False, NO_CONSENT
    return True, None


def _after_answer(session: Session, conv, entry_id: int) -> bool:
    """Whether the bot's latest message is an answer about ``entry_id`` and no person is needed."""
    if conv.state != "bot":
        return False
    last = convs.last_bot_message(session, conv.id)
    return last is not None and last.type == "answer" and last.entry_id == entry_id


@router.get("/conversations/{conv_id}/products")
def entry_cards(conv_id: str, request: Request, entry_id: Id = Query()) -> dict:
    """One row of up to three product cards after the bot's answer about ``entry_id``: personal
    for a consenting identified customer, else general (``reason`` says why not personal)."""
    svc = services(request)
    with session_scope(svc.db) as session:
        conv = _customer_conv(request, session, conv_id)
        consent, reason = _consenting(session, conv.customer_id)
        out = {"entry_id": entry_id, "consent": consent, "kind": None, "reason": reason}
        if not svc.settings.chat_products:
            return {**out, "reason": CARDS_OFF, "items": []}
        if not _after_answer(session, conv, entry_id):
            return {**out, "reason": NOT_AFTER_ANSWER, "items": []}
        saved = _model(request)
        kind = PERSONAL if consent else GENERAL
        try:
            if consent:
                items = recommend_for_entry(session, saved, entry_id, conv.customer_id, CARDS)
            else:
                items = suggest_for_entry(session, saved, entry_id, CARDS)
        except RecommendError as exc:
            raise ApiError(422, "invalid", str(exc)) from exc
        if consent and items:
            _note_interest(session, conv, entry_id)
        return {**out, "kind": kind, "items": [card(i, kind) for i in items]}


def _note_interest(session: Session, conv, entry_id: int) -> None:
    """Record a consenting customer's interest in the entry once per conversation; an id the
    recommendation tables cannot hold (a channel's id over 100 characters) keeps its cards."""
    try:
        if not has_entry_interest(session, conv.customer_id, entry_id, conv.created_at):
            record_entry_interest(session, entry_id, conv.customer_id)  # checks the id first
    except RecommendError:
        log.warning("interest not recorded for conversation %s: customer id too long", conv.id)


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
            raise ApiError(409, "no_consent", reason or NO_CONSENT)
        assert conv.customer_id is not None  # _consenting said yes: there is a customer
        try:
            found = recommend(session, saved, conv.customer_id, CARDS)["items"]
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
def get_links(entry_id: Id, request: Request, _user: Identity = Depends(admin)) -> dict:
    """The products linked to a knowledge-base entry, in link order."""
    with session_scope(services(request).db) as session:
        _entry_or_404(session, entry_id)
        return _links(session, entry_id)


@router.put("/admin/entries/{entry_id}/products", tags=["admin"])
def put_links(
    entry_id: Id, body: LinksIn, request: Request, _user: Identity = Depends(admin)
) -> dict:
    """Replace an entry's linked products (an empty list removes them); unknown ids change nothing."""
    with session_scope(services(request).db) as session:
        _entry_or_404(session, entry_id)
        try:
            link_entry(session, entry_id, body.product_ids)
        except RecommendError as exc:
            raise ApiError(422, "invalid", str(exc)) from exc
        return _links(session, entry_id)
