"""Privacy API: decision explanations, export, erasure, consent, the audit log.

* ``GET  /api/v1/decisions/{message_id}`` (admin): how the bot handled a message.
* ``GET  /api/v1/admin/privacy/customers/{id}`` (admin): everything held about a customer.
* ``DELETE /api/v1/admin/privacy/customers/{id}`` (admin): erase them (404 unknown, 409 already
  erased or a retrain is running).
* ``GET/POST /api/v1/admin/privacy/customers/{id}/consent`` (admin): read or record consent.
* ``POST /api/v1/conversations/{id}/consent`` (the conversation's own token): the chat widget
  records the customer's answer for the conversation's ``customer_id``.
* ``GET  /api/v1/admin/audit`` (admin): the audit log, newest first.

The errors of :mod:`annae.privacy` answer with their own status and code (``annae.errors``,
mapped in ``annae.web.app``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from annae.agents.users import Identity
from annae.privacy import audit, consent, rights
from annae.store.db import session_scope
from annae.web.auth import require_role
from annae.web.inputs import Id
from annae.web.routers.deps import ApiError, bearer_token, services

router = APIRouter(prefix="/api/v1", tags=["privacy"])
admin = require_role("admin")

Purpose = Literal["service", "training", "marketing"]


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Purpose
    granted: bool
    text_version: str | None = Field(None, min_length=1, max_length=100)
    source: str = Field("api", min_length=1, max_length=100)


def _record_consent(session, customer_id: str, body: ConsentIn, source: str) -> None:
    if body.granted:
        if not body.text_version:
            raise ApiError(422, "bad_request", "a grant needs text_version (the notice agreed to)")
        consent.grant(
            session, customer_id, body.purpose, text_version=body.text_version, source=source
        )
    else:
        consent.withdraw(
            session, customer_id, body.purpose, source=source, text_version=body.text_version
        )


@router.get("/decisions/{message_id}")
def decision(message_id: Id, request: Request, user: Identity = Depends(admin)) -> dict:
    """Explain a bot decision: entry, confidence, threshold, model version and its training data."""
    svc = services(request)
    with session_scope(svc.db) as session:
        return rights.explain(session, message_id, settings=svc.settings)


@router.get("/admin/privacy/customers/{customer_id}")
def export(customer_id: str, request: Request, user: Identity = Depends(admin)) -> dict:
    """Everything held about a customer (``found: false`` when nothing is)."""
    svc = services(request)
    with session_scope(svc.db) as session:
        data = rights.export_customer(session, customer_id, settings=svc.settings)
        ref = audit.customer_ref(customer_id, svc.settings.home)
        audit.record(session, user.username, "privacy.export", ref, {"found": data["found"]})
    return data


@router.delete("/admin/privacy/customers/{customer_id}")
def erase(
    customer_id: str,
    request: Request,
    retrain: bool = Query(True),
    user: Identity = Depends(admin),
) -> dict:
    """Erase a customer and retrain the models that learnt from them."""
    svc = services(request)
    if svc.holder.retrain.status == "running":
        raise ApiError(409, "conflict", "a retrain is running; erase when it has finished")
    report = rights.erase_customer(
        svc.db, customer_id, actor=user.username, settings=svc.settings, retrain=retrain
    )
    return report.to_dict()


@router.get("/admin/privacy/customers/{customer_id}/consent")
def consent_status(customer_id: str, request: Request, user: Identity = Depends(admin)) -> dict:
    with session_scope(services(request).db) as session:
        return {
            "customer_id": customer_id,
            "consent": consent.status(session, customer_id),
            "history": [consent.to_dict(e) for e in consent.history(session, customer_id)],
        }


@router.post("/admin/privacy/customers/{customer_id}/consent")
def consent_record(
    customer_id: str, body: ConsentIn, request: Request, user: Identity = Depends(admin)
) -> dict:
    svc = services(request)
    with session_scope(svc.db) as session:
        _record_consent(session, customer_id, body, body.source)
        action = "consent.grant" if body.granted else "consent.withdraw"
        ref = audit.customer_ref(customer_id, svc.settings.home)
        details = {"purpose": body.purpose, "source": body.source}
        audit.record(session, user.username, action, ref, details)
        return {"customer_id": customer_id, "consent": consent.status(session, customer_id)}


@router.post("/conversations/{conv_id}/consent")
def conversation_consent(conv_id: str, body: ConsentIn, request: Request) -> dict:
    """The customer answers a consent question in the chat (authorised by the conversation token)."""
    from annae.dialogue import conversations

    token = bearer_token(request)
    with session_scope(services(request).db) as session:
        conv = conversations.get(session, conv_id)
        if not conversations.token_matches(conv, token):
            raise ApiError(
                401,
                "unauthorized",
                "send this conversation's token as 'Authorization: Bearer <token>'",
            )
        if not conv.customer_id:
            raise ApiError(
                409, "conflict", "this conversation has no customer id to record consent for"
            )
        _record_consent(session, conv.customer_id, body, "widget")
        return {"consent": consent.status(session, conv.customer_id)}


@router.get("/admin/audit")
def audit_log(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    action: str | None = Query(None, max_length=100),
    actor: str | None = Query(None, max_length=200),
    user: Identity = Depends(admin),
) -> dict:
    with session_scope(services(request).db) as session:
        events = audit.query(session, action=action, actor=actor, limit=limit)
        return {"events": [audit.to_dict(e) for e in events]}
