"""The customer API: create a conversation, post and read messages, and its WebSocket."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from annae.agents import desk, identity, users
from annae.agents.users import Identity
from annae.channels import hooks
from annae.channels.turn import commit_turn
from annae.dialogue import conversations as convs
from annae.errors import AnnaeError
from annae.logs import set_conversation, text_field
from annae.store.db import session_scope
from annae.store.tables.service import Conversation
from annae.web import metrics
from annae.web.auth import SESSION_COOKIE, api_key_channel, check_csrf
from annae.web.inputs import AfterId, Id
from annae.web.routers.deps import (
    ApiError,
    Services,
    bearer_token,
    client_ip,
    is_unsafe,
    limit,
    services,
)
from annae.web.routers.sockets import close, error_frame, fail, pump

if TYPE_CHECKING:
    from annae.nlu.policy import Decision

router = APIRouter(prefix="/api/v1", tags=["customer"])
log = logging.getLogger("annae.web")
MAX_CLAIM = 64 * 1024  # no tighter than the body limit: a bad claim means anonymous, not 422


class CreateIn(BaseModel):
    """``customer_id`` comes from an API-key channel, or from the widget with the shop's
    ``signature`` (then ``name``/``email`` are shown to agents). Without an API key, any claimed
    identity that does not verify leaves the conversation anonymous instead of failing: the body
    limit bounds the fields, :mod:`annae.agents.identity` judges them."""

    model_config = ConfigDict(extra="forbid")
    language: Literal["ko", "en"] | None = None
    customer_id: str | None = Field(None, max_length=MAX_CLAIM)
    signature: str | None = Field(None, max_length=MAX_CLAIM)
    name: str | None = Field(None, max_length=MAX_CLAIM)
    email: str | None = Field(None, max_length=MAX_CLAIM)


class MessageIn(BaseModel):
    """Exactly one of ``text``, ``choice`` (an entry id offered by the last clarify) or ``handoff``."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, max_length=convs.MAX_TEXT)
    choice: Id | None = None
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
        if convs.token_is_known(session, token):
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


def authorize_request(
    request: Request, session: Session, conv_id: str
) -> tuple[Conversation, Access]:
    """:func:`authorize` with the request's bearer token and API key."""
    return authorize(request, session, conv_id, bearer_token(request), api_key_channel(request))


async def customer_turn(
    conn: HTTPConnection,
    conv_id: str,
    body: MessageIn,
    token: str | None,
    channel: str | None,
    later: Callable[[Callable[[], None]], None],
) -> dict:
    """Authorize, rate-limit, store the turn and the bot's reply; publish events after commit;
    ``later`` gets the hand-off's assignment to run once the reply is sent (``commit_turn``).

    On the event loop: the question waits for its batch (before the transaction) without
    holding a worker thread; only the database work (and a Redis rate limit) runs in one."""
    set_conversation(conv_id)
    svc = services(conn)
    if svc.limiter.blocks("ip"):
        await run_in_threadpool(limit, conn, "ip", client_ip(conn))
    else:
        limit(conn, "ip", client_ip(conn))
    decision, failure = await decide(svc, body.text)

    def find(session: Session) -> Conversation:  # in the turn's one transaction
        conv, access = authorize(conn, session, conv_id, token, channel)
        if access.kind == "staff":
            raise ApiError(
                403, "forbidden", "agents reply with POST /api/v1/conversations/{id}/replies"
            )
        limit(conn, "conversation", conv.id)
        return conv

    reply, _ = await run_in_threadpool(
        commit_turn,
        svc,
        find,
        text=body.text,
        choice=body.choice,
        handoff=body.handoff,
        decision=decision,
        failure=failure,
        later=later,
    )
    log.info(
        "turn",
        extra={
            "type": reply["type"],
            "reason": reply.get("reason"),
            "confidence": reply.get("confidence"),
            **text_field(body.text),
        },
    )
    return reply


async def decide(svc: Services, text: str | None) -> tuple[Decision | None, str]:
    """The engine's decision on ``text`` (batched) and the hand-off reason when there is none."""
    engine = svc.holder.get() if text is not None else None
    if engine is None or text is None:
        return None, "no_model"
    try:
        return await svc.decider.decide_async(engine, text), "no_model"
    except Exception:
        log.exception("the engine failed on a customer message")
        return None, "engine_error"


@router.post("/conversations", status_code=201)
def create_conversation(request: Request, body: CreateIn | None = None) -> dict:
    """Start a conversation; the returned token is the customer's only key to it."""
    body = body or CreateIn()
    svc = services(request)
    channel = api_key_channel(request)
    if channel and body.customer_id is not None and not 1 <= len(body.customer_id) <= 200:
        raise ApiError(422, "invalid", "customer_id must be 1-200 characters")
    limit(request, "ip", client_ip(request))
    fields: dict = {"customer_id": body.customer_id if channel else None}
    if not channel and (body.customer_id is not None or body.signature is not None):
        fields = _signed_identity(svc.settings, body)
    with session_scope(svc.db) as session:
        conv, token = convs.create(
            session, language=body.language, channel=channel or "web", **fields
        )
        hooks.created(session, conv)
        out = {"id": conv.id, "token": token, "state": conv.state, "verified": conv.verified}
    return out


def _signed_identity(settings, body: CreateIn) -> dict:
    """The conversation's identity fields from a widget's claim: linked to the customer only with
    a valid signature; otherwise anonymous (nothing kept of the claim) and one log line that
    names the reason and a fingerprint of the claimed id, never the id, signature or secret."""
    secret = identity.load_secret(settings.home, settings.widget_secret)
    verdict = identity.verify(secret, body.customer_id, body.signature)
    if not verdict.verified:
        log.warning(
            "widget identity refused (%s): conversation stays anonymous; claimed id #%s, %d chars",
            verdict.problem,
            identity.fingerprint(body.customer_id),
            len(body.customer_id or ""),
        )
        return {}
    return {
        "customer_id": verdict.customer_id,
        "verified": True,
        "customer_name": identity.clean_text(body.name, identity.MAX_NAME),
        "customer_email": identity.clean_text(body.email, identity.MAX_EMAIL),
    }


@router.post("/conversations/{conv_id}/messages")
async def post_message(
    conv_id: str, body: MessageIn, request: Request, background: BackgroundTasks
) -> dict:
    """A customer turn: a question, a clarify choice, or asking for a person → the bot's reply
    (a hand-off's assignment runs after the response is sent)."""
    token, channel = bearer_token(request), api_key_channel(request)
    return await customer_turn(request, conv_id, body, token, channel, background.add_task)


@router.get("/conversations/{conv_id}/messages")
def get_messages(conv_id: str, request: Request, after: AfterId | None = Query(None)) -> dict:
    """The transcript, oldest first (``after``: only messages with a larger id)."""
    svc = services(request)
    with session_scope(svc.db) as session:
        conv, access = authorize_request(request, session, conv_id)
        msgs = convs.messages(session, conv.id, after=after, with_decision=access.kind == "staff")
        return {"id": conv.id, "state": conv.state, "reason": conv.handoff_reason, "messages": msgs}


@router.get("/conversations/{conv_id}", tags=["agent"])
def get_conversation(conv_id: str, request: Request) -> dict:
    """Customers see the state; agents also get the transcript and the bot's suggestions."""
    svc = services(request)
    with session_scope(svc.db) as session:
        conv, access = authorize_request(request, session, conv_id)
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
    except (ApiError, AnnaeError) as exc:
        await close(ws, 4000 + exc.status, str(exc))
        return
    except Exception as exc:  # the database is down, or a server error: say so, then close
        await fail(ws, exc)
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
            reply = await customer_turn(ws, conv_id, body, token, channel, jobs.append)
        except (ApiError, AnnaeError) as exc:
            return error_frame(exc.code, str(exc))
        metrics.observe_request("WS", "/api/v1/conversations/{conv_id}/ws", 200, started)
        return {"event": "reply", "reply": reply}

    jobs: list[Callable[[], None]] = []

    async def after() -> None:  # the hand-off's assignment, once the reply is sent
        while jobs:
            await run_in_threadpool(jobs.pop(0))

    sub = svc.broker.subscribe(f"conv:{conv_id}")
    hello = {"event": "hello", "conversation_id": conv_id, "state": state}
    await pump(ws, sub, "customer", hello, handle, after)
