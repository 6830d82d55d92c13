"""The customer API: create a conversation, post and read messages, and its WebSocket."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter, Query, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from annae.agents import desk, routing, users
from annae.agents.users import Identity
from annae.dialogue import conversations as convs
from annae.dialogue.conversations import ConversationError
from annae.store.db import session_scope
from annae.store.tables.service import Conversation
from annae.web import metrics
from annae.web.auth import SESSION_COOKIE, api_key_channel, check_csrf
from annae.web.routers.deps import ApiError, bearer_token, client_ip, is_unsafe, limit, services
from annae.web.routers.sockets import close, error_frame, pump

router = APIRouter(prefix="/api/v1", tags=["customer"])
log = logging.getLogger("annae.web")


class CreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    language: Literal["ko", "en"] | None = None
    customer_id: str | None = Field(None, min_length=1, max_length=200)


class MessageIn(BaseModel):
    """Exactly one of ``text``, ``choice`` (an entry id offered by the last clarify) or ``handoff``."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, max_length=convs.MAX_TEXT)
    choice: int | None = None
    handoff: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> MessageIn:
        if self.text is not None:
            self.text = self.text.strip()
            if not self.text:
                raise ValueError("text is empty")
        given = (self.text is not None) + (self.choice is not None) + bool(self.handoff)
        if given != 1:
            raise ValueError("send exactly one of text, choice or handoff")
        return self


@dataclass(frozen=True)
class Access:
    """How the caller may use a conversation: as its ``customer``, a ``channel`` (API key) or ``staff``."""

    kind: str
    staff: Identity | None = None
    channel: str | None = None


def authorize(
    conn: HTTPConnection, session: Session, conv_id: str, token: str | None, channel: str | None
) -> tuple[Conversation, Access]:
    """404 for unknown ids, 401 without valid credentials, 403 for another conversation's token."""
    conv = convs.get(session, conv_id)
    if channel:
        return conv, Access("channel", channel=channel)
    if token:
        if convs.token_matches(conv, token):
            return conv, Access("customer")
        staff = users.identity_for_token(session, token, ("bearer",))
        if staff is not None:
            return conv, Access("staff", staff=staff)
        hashed = users.hash_secret(token)
        if (
            session.scalar(select(Conversation.id).where(Conversation.token_hash == hashed))
            is not None
        ):
            raise ApiError(403, "forbidden", "this token belongs to another conversation")
        raise ApiError(401, "unauthorized", "wrong token")
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie:
        staff = users.identity_for_token(session, cookie, ("session",))
        if staff is not None:
            if isinstance(conn, Request) and is_unsafe(conn):
                check_csrf(conn)
            return conv, Access("staff", staff=staff)
    raise ApiError(
        401, "unauthorized", "send the conversation token as 'Authorization: Bearer <token>'"
    )


def _entry_answer(session: Session, entry_id: int) -> str | None:
    from annae.kb.entries import KBError, get_entry

    try:
        entry = get_entry(session, entry_id)
    except KBError:
        return None
    return entry.answer if entry.active else None


async def customer_turn(
    conn: HTTPConnection, conv_id: str, body: MessageIn, token: str | None, channel: str | None
) -> dict:
    """Authorize, rate-limit, store the turn and the bot's reply; publish events after commit.

    On the event loop: the question waits for its batch (before the transaction) without
    holding a worker thread; only the database work (and a Redis rate limit) runs in one."""
    svc = services(conn)
    if svc.limiter.blocks("ip"):
        await run_in_threadpool(limit, conn, "ip", client_ip(conn))
    else:
        limit(conn, "ip", client_ip(conn))
    decision, failure = None, "no_model"
    engine = svc.holder.get() if body.text is not None else None
    if engine is not None:
        try:
            decision = await svc.decider.decide_async(engine, body.text)
        except Exception:
            log.exception("the engine failed on a customer message")
            failure = "engine_error"
    return await run_in_threadpool(
        store_turn, conn, conv_id, body, token, channel, decision, failure
    )


def store_turn(
    conn: HTTPConnection,
    conv_id: str,
    body: MessageIn,
    token: str | None,
    channel: str | None,
    decision,
    failure: str,
) -> dict:
    """The turn's one transaction (authorize, rate-limit the conversation, store), then events."""
    svc = services(conn)
    try:
        with session_scope(svc.db) as session:
            conv, access = authorize(conn, session, conv_id, token, channel)
            if access.kind == "staff":
                raise ApiError(
                    403, "forbidden", "agents reply with POST /api/v1/conversations/{id}/replies"
                )
            limit(conn, "conversation", conv.id)
            handoff = routing.Handoff(session, conv, decision)
            outcome = convs.post_customer(
                session,
                conv,
                text=body.text,
                choice=body.choice,
                handoff=body.handoff,
                entry_answer=_entry_answer,
                decision=decision,
                no_decision=failure,
                handoff_message=handoff.message,
            )
            handoff.finish(outcome)
    except ConversationError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    svc.broker.publish_many(outcome.events)
    kind = outcome.reply["type"]
    metrics.observe_decision(kind, outcome.reply.get("reason") if kind == "handoff" else None)
    return outcome.reply


@router.post("/conversations", status_code=201)
def create_conversation(request: Request, body: CreateIn | None = None) -> dict:
    """Start a conversation; the returned token is the customer's only key to it."""
    body = body or CreateIn()
    svc = services(request)
    channel = api_key_channel(request)
    if body.customer_id and not channel:
        raise ApiError(403, "forbidden", "customer_id needs an X-API-Key")
    limit(request, "ip", client_ip(request))
    with session_scope(svc.db) as session:
        conv, token = convs.create(
            session, language=body.language, customer_id=body.customer_id, channel=channel or "web"
        )
        out = {"id": conv.id, "token": token, "state": conv.state}
    return out


@router.post("/conversations/{conv_id}/messages")
async def post_message(conv_id: str, body: MessageIn, request: Request) -> dict:
    """A customer turn: a question, a clarify choice, or asking for a person → the bot's reply."""
    return await customer_turn(
        request, conv_id, body, bearer_token(request), api_key_channel(request)
    )


@router.get("/conversations/{conv_id}/messages")
def get_messages(conv_id: str, request: Request, after: int | None = Query(None, ge=0)) -> dict:
    """The transcript, oldest first (``after``: only messages with a larger id)."""
    svc = services(request)
    with session_scope(svc.db) as session:
        conv, access = authorize(
            request, session, conv_id, bearer_token(request), api_key_channel(request)
        )
        msgs = convs.messages(session, conv.id, after=after, with_decision=access.kind == "staff")
        return {"id": conv.id, "state": conv.state, "reason": conv.handoff_reason, "messages": msgs}


@router.get("/conversations/{conv_id}", tags=["agent"])
def get_conversation(conv_id: str, request: Request) -> dict:
    """Customers see the state; agents also get the transcript and the bot's suggestions."""
    svc = services(request)
    with session_scope(svc.db) as session:
        conv, access = authorize(
            request, session, conv_id, bearer_token(request), api_key_channel(request)
        )
        if access.kind == "staff":
            return desk.detail(session, conv.id)
        return convs.public_dict(conv)


@router.websocket("/conversations/{conv_id}/ws")
async def conversation_ws(ws: WebSocket, conv_id: str) -> None:
    """Pushes this conversation's new messages and state changes; takes the same bodies as POST."""
    svc = services(ws)
    await ws.accept()
    token = ws.query_params.get("token")

    def check() -> tuple[str, str, str | None]:
        channel = api_key_channel(ws)
        with session_scope(svc.db) as session:
            conv, access = authorize(ws, session, conv_id, token, channel)
            return conv.state, access.kind, channel

    try:
        state, kind, channel = await run_in_threadpool(check)
    except (ApiError, ConversationError) as exc:
        status = getattr(exc, "status", 400)
        await close(ws, 4000 + status, str(exc))
        return

    async def handle(frame: dict) -> dict:
        started = time.perf_counter()
        try:
            body = MessageIn.model_validate(frame)
        except ValidationError as exc:
            return error_frame("invalid", "; ".join(e["msg"] for e in exc.errors()))
        if kind == "staff":
            return error_frame(
                "forbidden", "agents reply with POST /api/v1/conversations/{id}/replies"
            )
        try:
            reply = await customer_turn(ws, conv_id, body, token, channel)
        except ApiError as exc:
            return error_frame(exc.code, exc.message)
        metrics.observe_request("WS", "/api/v1/conversations/{conv_id}/ws", 200, started)
        return {"event": "reply", "reply": reply}

    sub = svc.broker.subscribe(f"conv:{conv_id}")
    hello = {"event": "hello", "conversation_id": conv_id, "state": state}
    await pump(ws, sub, "customer", hello, handle)
