"""The desk API: teams, presence and capacity, transfers, private notes, saved replies and CSAT.

Thin: every route calls one function of ``annae.agents`` in one transaction and publishes the
returned events after commit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy.orm import Session

from annae.agents import csat, notes, replies, routing, service_levels, teams
from annae.agents.hours import korean_holidays
from annae.agents.users import Identity
from annae.store.db import session_scope
from annae.web.auth import current_user, require_role
from annae.web.inputs import Id
from annae.web.routers.deps import ApiError, services

if TYPE_CHECKING:
    from annae.learning import analytics

router = APIRouter(prefix="/api/v1", tags=["desk"])
admin = require_role("admin")
MAX_CSV = 2_000_000
T = TypeVar("T")


def _db(request: Request, fn: Callable[[Session], T]) -> T:
    """``fn(session)`` in one transaction."""
    with session_scope(services(request).db) as session:
        return fn(session)


def _publish(request: Request, fn: Callable[[Session], tuple[T, list[tuple[str, dict]]]]) -> T:
    """``fn(session) -> (result, events)`` in one transaction; events published after commit."""
    result, events = _db(request, fn)
    if events:
        services(request).broker.publish_many(events)
    return result


# --- teams ---------------------------------------------------------------------------------


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    members: list[str] = Field(max_length=500)
    tags: list[str] = Field(default_factory=list, max_length=100)
    languages: list[Literal["ko", "en"]] = Field(default_factory=list)
    timezone: str = Field("Asia/Seoul", max_length=64)
    weekly: dict[str, list[list[str]]] = Field(default_factory=dict)
    holidays: list[str] | None = Field(None, max_length=400)
    first_response_target_s: StrictInt | None = None
    resolve_target_s: StrictInt | None = None


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[str] | None = Field(None, max_length=500)
    tags: list[str] | None = Field(None, max_length=100)
    languages: list[Literal["ko", "en"]] | None = None
    timezone: str | None = Field(None, max_length=64)
    weekly: dict[str, list[list[str]]] | None = None
    holidays: list[str] | None = Field(None, max_length=400)
    first_response_target_s: StrictInt | None = None
    resolve_target_s: StrictInt | None = None


@router.get("/desk/teams")
def list_teams(request: Request, user: Identity = Depends(current_user)) -> dict:
    return _db(request, lambda s: {"teams": [teams.team_dict(s, t) for t in teams.list_teams(s)]})


@router.post("/desk/teams", status_code=201)
def create_team(body: TeamIn, request: Request, user: Identity = Depends(admin)) -> dict:
    settings = body.model_dump(exclude={"name", "members"})

    def write(s: Session) -> dict:
        return teams.team_dict(s, teams.create_team(s, body.name, body.members, **settings))

    return _db(request, write)


@router.patch("/desk/teams/{name}")
def update_team(
    name: str, body: TeamPatch, request: Request, user: Identity = Depends(admin)
) -> dict:
    changes = body.model_dump(exclude_unset=True)

    return _db(request, lambda s: teams.team_dict(s, teams.update_team(s, name, **changes)))


@router.delete("/desk/teams/{name}")
def delete_team(name: str, request: Request, user: Identity = Depends(admin)) -> dict:
    _db(request, lambda s: teams.delete_team(s, name))
    return {"deleted": name}


@router.get("/desk/holidays/kr/{year}")
def holidays(year: int, user: Identity = Depends(current_user)) -> dict:
    """Korean public holidays of ``year`` from the bundled data (to copy into a team)."""
    days = korean_holidays(year)
    if not days:
        raise ApiError(404, "not_found", f"no Korean holiday data for {year}")
    return {"year": year, "holidays": days}


# --- presence and capacity -----------------------------------------------------------------


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    presence: Literal["online", "away", "offline"] | None = None
    capacity: StrictInt | None = None


@router.get("/desk/agents")
def agents(request: Request, user: Identity = Depends(current_user)) -> dict:
    return _db(request, lambda s: {"agents": teams.agents_overview(s)})


@router.get("/desk/me")
def my_status(request: Request, user: Identity = Depends(current_user)) -> dict:
    return _db(request, lambda s: {"user": user.username, **teams.status_dict(s, user.id)})


@router.put("/desk/me")
def set_my_status(body: StatusIn, request: Request, user: Identity = Depends(current_user)) -> dict:
    """Set presence/capacity; going online (or more capacity) takes waiting conversations."""

    def write(s: Session):
        teams.set_status(s, user.id, presence=body.presence, capacity=body.capacity)
        events = routing.fill(s, user.id)
        return {"user": user.username, **teams.status_dict(s, user.id)}, events

    return _publish(request, write)


# --- transfer and notes --------------------------------------------------------------------


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str | None = Field(None, max_length=100)
    team: str | None = Field(None, max_length=100)
    note: str | None = Field(None, max_length=notes.MAX_NOTE)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=notes.MAX_NOTE)


@router.post("/conversations/{conv_id}/transfer")
def transfer(
    conv_id: str, body: TransferIn, request: Request, user: Identity = Depends(current_user)
) -> dict:
    return _publish(
        request,
        lambda s: routing.transfer(
            s, conv_id, user, to_agent=body.agent, to_team=body.team, note=body.note
        ),
    )


@router.get("/conversations/{conv_id}/notes")
def list_notes(conv_id: str, request: Request, user: Identity = Depends(current_user)) -> dict:
    return _db(request, lambda s: {"notes": notes.list_notes(s, conv_id)})


@router.post("/conversations/{conv_id}/notes", status_code=201)
def add_note(
    conv_id: str, body: NoteIn, request: Request, user: Identity = Depends(current_user)
) -> dict:
    return _publish(request, lambda s: notes.add_note(s, conv_id, user, body.text))


@router.get("/desk/mentions")
def mentions(request: Request, user: Identity = Depends(current_user)) -> dict:
    return _db(request, lambda s: {"mentions": notes.mentions_of(s, user)})


# --- saved replies -------------------------------------------------------------------------


class SavedReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str = Field(max_length=65)
    text_ko: str = Field("", max_length=replies.MAX_TEXT)
    text_en: str = Field("", max_length=replies.MAX_TEXT)
    scope: Literal["global", "team", "personal"] = "personal"
    team: str | None = Field(None, max_length=100)


@router.get("/desk/replies")
def saved_replies(
    request: Request,
    q: str = Query("", max_length=65),
    conversation_id: str | None = Query(None, max_length=32),
    language: Literal["ko", "en"] | None = None,
    user: Identity = Depends(current_user),
) -> dict:
    """Replies whose shortcut starts with ``q`` (``/환`` or ``환``), filled in for a conversation."""
    return _db(
        request, lambda s: {"replies": replies.suggest(s, user, q, conversation_id, language)}
    )


@router.post("/desk/replies", status_code=201)
def create_saved_reply(
    body: SavedReplyIn, request: Request, user: Identity = Depends(current_user)
) -> dict:
    fields = body.model_dump(exclude={"shortcut"})
    return _db(request, lambda s: replies.create(s, user, body.shortcut, **fields))


@router.delete("/desk/replies/{reply_id}")
def delete_saved_reply(
    reply_id: Id, request: Request, user: Identity = Depends(current_user)
) -> dict:
    _db(request, lambda s: replies.delete(s, user, reply_id))
    return {"deleted": reply_id}


@router.get("/desk/replies.csv", response_class=PlainTextResponse)
def export_replies(request: Request, user: Identity = Depends(admin)) -> PlainTextResponse:
    text = _db(request, replies.export_csv)
    return PlainTextResponse(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="saved-replies.csv"'},
    )


@router.post("/desk/replies.csv")
async def import_replies(request: Request, user: Identity = Depends(admin)) -> dict:
    """Import saved replies from a CSV body (UTF-8; the export's columns)."""
    raw = await request.body()
    if len(raw) > MAX_CSV:
        raise ApiError(413, "too_large", f"the CSV is larger than {MAX_CSV} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_request", "the CSV is not UTF-8") from exc
    return _db(request, lambda s: replies.import_csv(s, text))


# --- CSAT ----------------------------------------------------------------------------------


class CsatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: StrictInt
    comment: str | None = Field(None, max_length=csat.MAX_COMMENT)


def _customer_conv(request: Request, session: Session, conv_id: str):
    from annae.web.routers.conversations import authorize_request

    conv, access = authorize_request(request, session, conv_id)
    if access.kind == "staff":
        raise ApiError(403, "forbidden", "only the customer (or their channel) rates")
    return conv


@router.post("/conversations/{conv_id}/csat", status_code=201)
def rate_conversation(conv_id: str, body: CsatIn, request: Request) -> dict:
    """The customer's satisfaction (1-5, optional comment) after a resolve: conversation token as
    bearer, or a channel's X-API-Key."""
    return _db(
        request,
        lambda s: csat.submit(s, _customer_conv(request, s, conv_id), body.score, body.comment),
    )


@router.get("/conversations/{conv_id}/csat")
def conversation_csat(conv_id: str, request: Request) -> dict:
    return _db(request, lambda s: csat.status(s, _customer_conv(request, s, conv_id)))


# --- service levels ------------------------------------------------------------------------


def _service(
    request: Request, start: date | None, end: date | None, language: str | None
) -> tuple[dict, analytics.Filters]:
    from annae.web.routers.learning import _filters

    f = _filters(start, end, language)
    return _db(request, lambda s: service_levels.summary(s, f)), f


@router.get("/desk/service-levels")
def get_service_levels(
    request: Request,
    start: date | None = None,
    end: date | None = None,
    language: Literal["ko", "en"] | None = None,
    user: Identity = Depends(admin),
) -> dict:
    """First response, queue wait, resolve time (p50/p90), CSAT and targets per team and agent."""
    return _service(request, start, end, language)[0]


@router.get("/desk/service-levels.csv")
def service_levels_csv(
    request: Request,
    table: Literal["teams", "agents"] = "teams",
    start: date | None = None,
    end: date | None = None,
    language: Literal["ko", "en"] | None = None,
    user: Identity = Depends(admin),
) -> PlainTextResponse:
    data, f = _service(request, start, end, language)
    name = f"annae-service-{table}-{f.start or 'all'}-{f.end or 'now'}.csv"
    return PlainTextResponse(
        service_levels.to_csv(data, table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
