"""The agent API: queue, conversation list, assign/reply/resolve/handback, and the agents' WebSocket."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from annae.agents import desk, users
from annae.agents.users import Identity
from annae.channels import alerts, hooks
from annae.store.db import session_scope
from annae.web.auth import SESSION_COOKIE, current_user
from annae.web.routers.deps import services
from annae.web.routers.sockets import close, fail, pump

router = APIRouter(prefix="/api/v1", tags=["agent"])


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = False


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=4000)

    @field_validator("text")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty")
        return value.strip()


def _run(request: Request, fn, *args, **kwargs) -> dict:
    """Run a desk action in one transaction and publish its events after commit."""
    svc = services(request)
    with session_scope(svc.db) as session:
        result, events = fn(session, *args, **kwargs)
        hooks.record(session, events)
    svc.broker.publish_many(events)
    return result


@router.get("/queue")
def get_queue(
    request: Request,
    team: str | None = Query(None, max_length=100),
    user: Identity = Depends(current_user),
) -> dict:
    """Waiting conversations, oldest first, with reason, waiting time and team (``team``: only
    that team's queue)."""
    return _run(request, lambda s: (_queue(desk.queue(s, team=team)), []))


def _queue(items: list[dict]) -> dict:
    return {"length": len(items), "queue": items}


@router.get("/conversations")
def list_conversations(
    request: Request,
    state: Literal["bot", "waiting", "agent", "resolved"] | None = None,
    mine: bool = False,
    limit: int = Query(50, ge=1, le=500),
    user: Identity = Depends(current_user),
) -> dict:
    """Conversations, most recently updated first (``mine``: assigned to me)."""
    with session_scope(services(request).db) as session:
        items = desk.list_conversations(
            session, state=state, agent=user if mine else None, limit=limit
        )
    return {"conversations": items}


@router.post("/conversations/{conv_id}/assign")
def assign(
    conv_id: str,
    request: Request,
    body: AssignIn | None = None,
    user: Identity = Depends(current_user),
) -> dict:
    return _run(request, desk.assign, conv_id, user, force=bool(body and body.force))


@router.post("/conversations/{conv_id}/replies", status_code=201)
def reply(
    conv_id: str, body: ReplyIn, request: Request, user: Identity = Depends(current_user)
) -> dict:
    return _run(request, desk.reply, conv_id, user, body.text)


@router.post("/conversations/{conv_id}/resolve")
def resolve(conv_id: str, request: Request, user: Identity = Depends(current_user)) -> dict:
    return _run(request, desk.resolve, conv_id, user)


@router.post("/conversations/{conv_id}/handback")
def handback(conv_id: str, request: Request, user: Identity = Depends(current_user)) -> dict:
    return _run(request, desk.handback, conv_id, user)


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if not origin:
        return True
    return urlsplit(origin).netloc == ws.headers.get("host", "")


@router.websocket("/agents/ws")
async def agents_ws(ws: WebSocket) -> None:
    """Pushes hand-offs, state changes and messages of conversations people handle."""
    svc = services(ws)
    await ws.accept()
    token = ws.query_params.get("token")
    cookie = ws.cookies.get(SESSION_COOKIE)

    def check() -> tuple[Identity | None, int]:
        with session_scope(svc.db) as session:
            if token:
                identity = users.identity_for_token(session, token, ("bearer",))
            elif cookie and _same_origin(ws):
                identity = users.identity_for_token(session, cookie, ("session",))
            else:
                identity = None
            return identity, desk.queue_length(session) if identity else 0

    try:
        identity, length = await run_in_threadpool(check)
    except Exception as exc:  # the database is down, or a server error: say so, then close
        await fail(ws, exc)
        return
    if identity is None:
        await close(ws, 4401, "log in first")
        return
    sub = svc.broker.subscribe("agents")
    hello = {"event": "hello", "user": identity.to_dict(), "queue_length": length}
    alerts.console_opened()
    try:
        await pump(ws, sub, "agent", hello)
    finally:
        alerts.console_closed()
