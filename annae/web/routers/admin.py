"""The admin API behind the knowledge-base page: entries, examples, retraining, users."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from annae.agents import users
from annae.agents.users import Identity
from annae.kb import entries as kb
from annae.store.db import session_scope
from annae.web.auth import require_role
from annae.web.inputs import Id
from annae.web.routers.deps import ApiError, services, start_retrain

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
admin = require_role("admin")


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=200)
    question: str = Field(min_length=1, max_length=4000)
    answer: str = Field(min_length=1, max_length=20000)
    language: Literal["ko", "en"] = "en"
    tags: list[str] = Field(default_factory=list, max_length=50)
    examples: list[str] = Field(default_factory=list, max_length=500)


class EntryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str | None = Field(None, min_length=1, max_length=4000)
    answer: str | None = Field(None, min_length=1, max_length=20000)
    language: Literal["ko", "en"] | None = None
    tags: list[str] | None = Field(None, max_length=50)
    active: bool | None = None


class ExamplesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, max_length=500)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    role: Literal["agent", "admin"] = "agent"
    password: str = Field(min_length=8, max_length=1000)


def entry_dict(entry) -> dict:
    return {
        "id": entry.id,
        "key": entry.key,
        "question": entry.question,
        "answer": entry.answer,
        "language": entry.language,
        "tags": list(entry.tags or []),
        "active": entry.active,
        "examples": [example_dict(e) for e in entry.examples],
        "updated_at": entry.updated_at.isoformat() if entry.updated_at else None,
    }


def example_dict(example) -> dict:
    return {"id": example.id, "text": example.text, "source": example.source}


def _add_examples(request: Request, user: Identity, entry_id: int | None, texts: list[str]) -> dict:
    """Add ``texts`` as examples of the entry (``None``: out-of-scope examples)."""

    def write(session: Session) -> dict:
        source = f"admin:{user.username}"
        rows = kb.add_examples(session, entry_id, texts, source=source, author=user.username)
        return {"examples": [example_dict(e) for e in rows]}

    return _kb(request, write)


def _kb(request: Request, fn):
    """``fn(session)`` in one transaction (KB errors answer by their own status)."""
    with session_scope(services(request).db) as session:
        return fn(session)


@router.get("/entries")
def list_entries(
    request: Request,
    q: str | None = None,
    active: bool | None = None,
    user: Identity = Depends(admin),
) -> dict:
    """Every entry with its examples (``q`` filters on key, question and answer)."""

    def read(session: Session) -> list[dict]:
        rows = kb.list_entries(session)
        if active is not None:
            rows = [e for e in rows if e.active == active]
        if q:
            needle = q.lower()
            rows = [e for e in rows if needle in f"{e.key}\n{e.question}\n{e.answer}".lower()]
        return [entry_dict(e) for e in rows]

    return {"entries": _kb(request, read)}


@router.post("/entries", status_code=201)
def add_entry(body: EntryIn, request: Request, user: Identity = Depends(admin)) -> dict:
    return _kb(
        request,
        lambda s: entry_dict(
            kb.add_entry(
                s,
                key=body.key,
                question=body.question,
                answer=body.answer,
                language=body.language,
                tags=body.tags,
                examples=body.examples,
                source=f"admin:{user.username}",
                author=user.username,
            )
        ),
    )


@router.get("/entries/{entry_id}")
def get_entry(entry_id: Id, request: Request, user: Identity = Depends(admin)) -> dict:
    return _kb(request, lambda s: entry_dict(kb.get_entry(s, entry_id)))


@router.patch("/entries/{entry_id}")
def update_entry(
    entry_id: Id, body: EntryPatch, request: Request, user: Identity = Depends(admin)
) -> dict:
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise ApiError(422, "invalid", "nothing to change")
    return _kb(
        request, lambda s: entry_dict(kb.update_entry(s, entry_id, author=user.username, **changes))
    )


@router.post("/entries/{entry_id}/examples", status_code=201)
def add_examples(
    entry_id: Id, body: ExamplesIn, request: Request, user: Identity = Depends(admin)
) -> dict:
    return _add_examples(request, user, entry_id, body.texts)


@router.delete("/examples/{example_id}", status_code=204)
def delete_example(example_id: Id, request: Request, user: Identity = Depends(admin)) -> Response:
    _kb(request, lambda s: kb.delete_example(s, example_id, author=user.username))
    return Response(status_code=204)


@router.get("/oos")
def list_oos(request: Request, user: Identity = Depends(admin)) -> dict:
    """Out-of-scope example questions (what the bot should hand off)."""
    data = _kb(request, lambda s: kb.dump_kb(s))
    return {
        "examples": [
            {"text": t, "source": src}
            for t, src in zip(data.oos_examples, data.oos_sources, strict=False)
        ]
    }


@router.post("/oos", status_code=201)
def add_oos(body: ExamplesIn, request: Request, user: Identity = Depends(admin)) -> dict:
    return _add_examples(request, user, None, body.texts)


@router.post("/retrain", status_code=202)
def retrain(request: Request, user: Identity = Depends(admin)) -> dict:
    """Train on the current KB in the background (gated); serving switches to the new model
    when it is promoted."""
    return start_retrain(services(request), user.username)


@router.get("/retrain")
def retrain_status(request: Request, user: Identity = Depends(admin)) -> dict:
    """The running or last retrain here; when idle, the last gate comparison on disk."""
    svc = services(request)
    out = svc.holder.retrain.to_dict()
    if out["gate"] is None:
        from annae.learning.retrain import last_gate
        from annae.nlu.registry import ModelRegistry

        out["gate"] = last_gate(ModelRegistry(svc.settings.models_dir))
    return out


@router.get("/model")
def model(request: Request, user: Identity = Depends(admin)) -> dict:
    engine = services(request).holder.get()
    if engine is None:
        return {"version": None, "manifest": None, "stale_anchors": []}
    with session_scope(services(request).db) as session:
        stale = kb.stale_anchors(session, getattr(engine, "answers", {}) or {})
    manifest = dict(getattr(engine, "manifest", None) or {})
    manifest["stale_anchors"] = stale  # answers edited since training (served already)
    return {"version": engine.version, "manifest": manifest, "stale_anchors": stale}


@router.get("/users")
def list_users(request: Request, user: Identity = Depends(admin)) -> dict:
    with session_scope(services(request).db) as session:
        rows = users.list_users(session)
        return {
            "users": [
                {
                    "id": u.id,
                    "username": u.username,
                    "role": u.role,
                    "active": u.active,
                    "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
                }
                for u in rows
            ]
        }


@router.post("/users", status_code=201)
def add_user(body: UserIn, request: Request, user: Identity = Depends(admin)) -> dict:
    with session_scope(services(request).db) as session:
        new = users.add_user(session, body.username, body.role, body.password)
        return {"id": new.id, "username": new.username, "role": new.role, "active": new.active}
