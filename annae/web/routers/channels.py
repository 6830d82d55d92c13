"""Channels over HTTP: the Kakao skill, the e-mail "this didn't help" link, and the admin API for
webhooks and the outbox delivery log (plus its small admin page)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from annae.agents.users import Identity
from annae.channels import hooks, kakao, outbox, registry, webhooks
from annae.channels.turn import commit_turn
from annae.dialogue import conversations as convs
from annae.settings import get_settings
from annae.store.db import session_scope
from annae.web.auth import require_role
from annae.web.inputs import Id
from annae.web.routers.conversations import decide
from annae.web.routers.deps import ApiError, Services, services

router = APIRouter(tags=["channels"])
log = logging.getLogger("annae.channels")
admin = require_role("admin")
SECRET_HEADER = "x-annae-secret"


# --- Kakao ----------------------------------------------------------------------------------


def _parse_skill(raw: bytes) -> tuple[kakao.SkillPayload | None, str | None]:
    try:
        data = json.loads(raw)
    except ValueError:
        return None, "the body is not valid JSON"
    try:
        return kakao.SkillPayload.model_validate(data), None
    except ValidationError as exc:
        return None, "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )


@router.post("/channels/kakao/skill")
async def kakao_skill(request: Request) -> dict:
    """An Open Builder skill call (response format 2.0); the channel secret in ``X-Annae-Secret``."""
    svc = services(request)
    settings = get_settings()
    payload, problem = _parse_skill(await request.body())
    secret = request.headers.get(SECRET_HEADER)
    channel = registry.cached(svc.db, "kakao", secret)
    if channel is None:
        channel = await run_in_threadpool(registry.authenticate, svc.db, "kakao", secret)
    allowed = channel[2].get("bot_ids") if channel else None
    if channel is None or (
        allowed and payload is not None and (payload.bot is None or payload.bot.id not in allowed)
    ):
        raise ApiError(401, "unauthorized", "send the channel secret in X-Annae-Secret")
    if payload is None:
        raise ApiError(400, "bad_request", problem or "invalid skill payload")
    utterance = payload.userRequest.utterance.strip()
    if not utterance:
        raise ApiError(400, "bad_request", "userRequest.utterance is empty")
    if kakao.fixed_intent(utterance)[0] == "rate":
        rated = await run_in_threadpool(_kakao_rating, svc, channel, payload, settings)
        if rated is not None:
            return rated
    callback = payload.userRequest.callbackUrl
    task = asyncio.ensure_future(_kakao_turn(svc, channel, payload, callback))
    if not callback:
        return await task
    try:
        return await asyncio.wait_for(asyncio.shield(task), settings.kakao_reply_budget)
    except TimeoutError:
        task.add_done_callback(lambda t: _late(svc, t, callback))
        return kakao.use_callback(kakao.text("wait", None))


def _retrying(fn, *args, **kwargs):
    """Run ``fn`` again once after a unique-key race (a user's first two messages at once: the
    other one created the contact)."""
    try:
        return fn(*args, **kwargs)
    except IntegrityError:
        return fn(*args, **kwargs)


def _kakao_rating(svc: Services, channel, payload: kakao.SkillPayload, settings) -> dict | None:
    """👍 / 👎: rate the last answer (not a turn: a resolved conversation stays resolved)."""

    def rate() -> kakao.Prepared:
        with session_scope(svc.db) as session:
            return kakao.prepare(session, channel, payload, settings)

    prepared = _retrying(rate)
    if prepared.kind != "rated":  # nothing to rate yet: an ordinary turn
        return None
    note = kakao.text("thanks" if prepared.helpful else "sorry", prepared.language)
    quick = (
        [] if prepared.helpful else [kakao.quick_reply(kakao.label("handoff", prepared.language))]
    )
    outputs = [kakao.simple_text("\n\n".join(prepared.notices))] if prepared.notices else []
    outputs.append(kakao.simple_text(note))
    return kakao.response(outputs, quick)


def _late(svc: Services, task: asyncio.Task, url: str) -> None:
    """A reply that missed Kakao's 5 s goes out on the callback (through the outbox)."""
    if task.cancelled() or task.exception() is not None:
        log.warning("a late Kakao turn failed: %s", None if task.cancelled() else task.exception())
        return
    body = task.result()

    def store() -> None:
        with session_scope(svc.db) as session:
            outbox.enqueue(session, "kakao", "callback.reply", {"url": url, "body": body})
        outbox.wake(svc)

    asyncio.get_running_loop().run_in_executor(None, store)


async def _kakao_turn(
    svc: Services, channel, payload: kakao.SkillPayload, callback: str | None
) -> dict:
    """Decide on the utterance (unless it is a fixed quick reply), then one transaction: the
    contact and its conversation, what the utterance means, the web chat's turn, what the user
    was not sent yet, product cards, and the callback kept for an agent."""
    from annae.web.routers.chat_products import recommender

    settings = get_settings()
    utterance = payload.userRequest.utterance.strip()
    handoff = kakao.fixed_intent(utterance)[0] == "handoff"
    decision, failure = (None, "no_model") if handoff else await decide(svc, utterance)
    state: dict = {}

    def find(session: Session):
        contact, conv, carried = kakao.contact_for(
            session, channel, payload.userRequest.user.id, settings
        )
        if svc.limiter.hit("conversation", conv.id) > 0:
            raise ApiError(429, "rate_limited", "too many messages; wait a moment")
        state.update(contact_id=contact.id, carried=carried, language=conv.language)
        return conv

    def intent(session: Session, conv) -> dict:
        kind, choice, _ = kakao.read_intent(session, conv, utterance)
        if kind == "choice":
            return {"text": None, "choice": choice}
        if kind == "handoff":
            return {"text": None, "handoff": True}
        return {}

    def after(session: Session, conv, outcome):
        return kakao.after_turn(
            session,
            conv,
            outcome,
            contact_id=state["contact_id"],
            callback_url=callback,
            settings=settings,
            model_loader=lambda: recommender(svc.settings),
        )

    reply, (notices, cards, waiting) = await run_in_threadpool(
        _retrying,
        commit_turn,
        svc,
        find,
        text=utterance,
        decision=decision,
        failure=failure,
        intent=intent,
        after=after,
    )
    notices = [*state["carried"], *notices]
    language = state["language"] or (getattr(decision, "language", None) if decision else None)
    if waiting:  # the agent's first reply within the minute comes on this callback
        text = "\n\n".join([*notices, reply.get("text") or "", kakao.text("agent_wait", language)])
        return kakao.use_callback(text.strip()[: kakao.MAX_SIMPLE_TEXT])
    return kakao.render(reply, language, notices, cards)


# --- e-mail ---------------------------------------------------------------------------------


_LINK_PAGE = """<!doctype html><meta charset=utf-8><title>Annae</title>
<form method=post><p>{question}</p><button type=submit>{button}</button></form>"""
_LINK_ASKS = {
    "helpful": ("Did the answer help?", "Yes, it helped"),
    "handoff": ("Didn't the answer help?", "Ask a person"),
}


def _link(request: Request, token: str) -> tuple[str, int, str]:
    from annae.channels import email

    found = email.read_link(services(request).settings, token)
    if found is None:
        raise ApiError(404, "not_found", "this link is not valid")
    return found


@router.get("/channels/email/link/{token}", response_class=HTMLResponse)
def email_link_page(token: str, request: Request) -> HTMLResponse:
    """A link from a bot answer by mail: a page with one button (mail scanners that open links
    must not rate or hand off by themselves)."""
    question, button = _LINK_ASKS[_link(request, token)[2]]
    return HTMLResponse(_LINK_PAGE.format(question=question, button=button))


@router.post("/channels/email/link/{token}", response_class=HTMLResponse)
async def email_link(token: str, request: Request) -> HTMLResponse:
    """Rate the answer; "didn't help" also hands the conversation to a person (the web chat's turn)."""
    from annae.learning import feedback

    svc = services(request)
    conv_id, message_id, action = _link(request, token)

    def rate() -> None:
        with session_scope(svc.db) as session:
            rating = feedback.rate_answer(
                session, conv_id, message_id, action == "helpful", settings=svc.settings
            )
            hooks.rated(session, conv_id, rating)

    await run_in_threadpool(rate)
    if action == "helpful":
        outbox.wake(svc)
        return HTMLResponse("<!doctype html><meta charset=utf-8><p>Thank you.</p>")
    await run_in_threadpool(
        commit_turn, svc, lambda session: convs.get(session, conv_id), handoff=True
    )
    outbox.wake(svc)
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><p>Thanks: a person will answer your e-mail.</p>"
    )


# --- webhooks and the delivery log (admin) --------------------------------------------------


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=len(webhooks.EVENTS))


def _admin_db(request: Request, fn):
    with session_scope(services(request).db) as session:
        return fn(session)


@router.get("/api/v1/admin/webhooks", tags=["admin"])
def list_webhooks(request: Request, _u: Identity = Depends(admin)) -> dict:
    return {"webhooks": _admin_db(request, webhooks.list_all), "events": list(webhooks.EVENTS)}


@router.post("/api/v1/admin/webhooks", status_code=201, tags=["admin"])
def create_webhook(body: WebhookIn, request: Request, _u: Identity = Depends(admin)) -> dict:
    """Register a URL for events; the signing secret is in this answer only."""

    def write(session: Session) -> dict:
        hook, secret = webhooks.create(session, body.url, body.events)
        return {**webhooks.to_dict(hook), "secret": secret}

    return _admin_db(request, write)


@router.delete("/api/v1/admin/webhooks/{hook_id}", tags=["admin"])
def delete_webhook(hook_id: Id, request: Request, _u: Identity = Depends(admin)) -> dict:
    _admin_db(request, lambda s: webhooks.remove(s, hook_id))
    return {"id": hook_id, "active": False}


@router.get("/api/v1/admin/deliveries", tags=["admin"])
def deliveries(
    request: Request,
    kind: Literal["webhook", "email", "kakao", "slack"] | None = None,
    webhook_id: Id | None = None,
    status: Literal["pending", "delivered", "dead"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
    _u: Identity = Depends(admin),
) -> dict:
    """The outbox delivery log, newest first, and counts by status."""

    def read(session: Session) -> dict:
        return {
            "counts": outbox.counts(session),
            "items": outbox.log_items(
                session, kind=kind, target_id=webhook_id, status=status, limit=limit
            ),
        }

    return _admin_db(request, read)


@router.post("/api/v1/admin/deliveries/{item_id}/resend", tags=["admin"])
def resend(item_id: Id, request: Request, _u: Identity = Depends(admin)) -> dict:
    """Send a delivered or dead item again (same delivery id: receivers can tell it is a repeat)."""
    out = _admin_db(request, lambda s: outbox.item_dict(outbox.resend(s, item_id)))
    outbox.wake(services(request))
    return out


@router.get("/admin/deliveries", response_class=HTMLResponse, include_in_schema=False)
def deliveries_page(request: Request, _u: Identity = Depends(admin)) -> HTMLResponse:
    """A plain page over the same API: webhooks and the delivery log with re-send buttons."""
    return HTMLResponse(_PAGE)


_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<title>Annae · deliveries</title><link rel="stylesheet" href="/static/annae.css">
<script src="/static/deliveries.js" defer></script>
<body class="deliveries"><main>
<h1>Webhooks</h1><table id="hooks"><thead><tr><th>id</th><th>URL</th><th>events</th>
<th>active</th></tr></thead><tbody></tbody></table>
<h1>Delivery log</h1><p id="counts"></p>
<table id="log"><thead><tr><th>id</th><th>kind</th><th>event</th><th>status</th><th>tries</th>
<th>last</th><th>next try</th><th></th></tr></thead><tbody></tbody></table>
</main></body></html>"""
