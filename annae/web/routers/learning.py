"""The learning API: labels, ratings, the review list, clusters, gated retraining, rollback,
analytics (JSON and CSV) and the ``/console/analytics`` page."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from annae.agents import service_levels
from annae.agents.users import Identity
from annae.channels import hooks
from annae.dialogue import history
from annae.kb import entries as kb
from annae.learning import analytics, calibrate, charts, clusters, feedback, retrain
from annae.nlu.registry import ModelRegistry
from annae.store.db import session_scope
from annae.web.auth import current_user, optional_user, require_role
from annae.web.inputs import Id
from annae.web.routers import deps
from annae.web.routers.deps import ApiError, bearer_token, services

router = APIRouter(tags=["learning"])
admin = require_role("admin")
API = "/api/v1"
MAX_CLUSTERED = 2000
CLUSTER_CSV_COLUMNS = ("id", "title", "size", "this_week", "last_week", "trend", "representatives")


class _In(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class NewEntryIn(_In):
    key: str | None = Field(None, max_length=200)
    question: str | None = Field(None, max_length=4000)
    answer: str | None = Field(None, max_length=20000)
    language: Literal["ko", "en"] | None = None


class LabelIn(_In):
    """``kind``: an existing ``entry`` (with ``entry_id``), a ``new_entry`` or ``not_faq``."""

    kind: Literal["entry", "new_entry", "not_faq"]
    entry_id: Id | None = None
    new_entry: NewEntryIn | None = None
    message_id: Id | None = None
    message_ids: list[Id] | None = Field(None, max_length=50)
    replace: bool = False


class RatingIn(_In):
    helpful: bool


class ClusterEntryIn(_In):
    message_ids: list[Id] = Field(min_length=1, max_length=2000)
    question: str = Field(min_length=1, max_length=4000)
    answer: str = Field(min_length=1, max_length=20000)
    key: str | None = Field(None, max_length=200)
    language: Literal["ko", "en"] = "en"


class PromoteIn(_In):
    expected_live: str | None = None


class OperatingPointIn(_In):
    """``target``: one of the live model's curve points (0.90, 0.95, 0.98); or
    ``from_traffic``: the threshold labelled traffic supports."""

    target: float | None = Field(None, gt=0, lt=1)
    from_traffic: bool = False


def _db(request: Request, fn):
    """Run ``fn(session)`` in one transaction (learning and KB errors answer by their status)."""
    with session_scope(services(request).db) as session:
        return fn(session)


# --- labels and ratings ---------------------------------------------------------------------


@router.post(API + "/conversations/{conv_id}/label", status_code=201)
def label(
    conv_id: str, body: LabelIn, request: Request, user: Identity = Depends(current_user)
) -> dict:
    """The agent's answer to "what was this about?"; the question becomes a KB example."""
    return _db(
        request,
        lambda s: feedback.label_conversation(
            s,
            conv_id,
            kind=body.kind,
            agent=user.username,
            entry_id=body.entry_id,
            new_entry=body.new_entry.model_dump(exclude_none=True) if body.new_entry else None,
            message_id=body.message_id,
            message_ids=body.message_ids,
            settings=services(request).settings,
            replace=body.replace,
        ),
    )


@router.delete(API + "/conversations/{conv_id}/label")
def undo_label(conv_id: str, request: Request, user: Identity = Depends(current_user)) -> dict:
    """Undo a label: the label and every example it made are removed."""
    return _db(
        request, lambda s: feedback.undo_label(s, conv_id, user.username, is_admin=user.is_admin)
    )


@router.get(API + "/learning/labels")
def labels(
    request: Request, limit: int = Query(100, ge=1, le=500), user: Identity = Depends(admin)
) -> dict:
    """Agents' labels, newest first, with the examples they made (the review list)."""
    return {"labels": _db(request, lambda s: feedback.recent_labels(s, limit=limit))}


@router.get(API + "/conversations/{conv_id}/label")
def label_form(conv_id: str, request: Request, user: Identity = Depends(current_user)) -> dict:
    """The current label (or null) and what the console pre-fills: question, bot's guesses,
    the agent's last reply."""

    return _db(request, lambda s: feedback.label_form(s, conv_id, services(request).settings))


@router.get(API + "/learning/entries")
def entry_choices(
    request: Request,
    q: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, le=500),
    user: Identity = Depends(current_user),
) -> dict:
    """Active entries an agent may pick when labelling (``q`` searches key and question)."""

    def read(session: Session) -> list[dict]:
        rows = kb.list_entries(session, active_only=True)
        if q:
            needle = q.lower()
            rows = [e for e in rows if needle in f"{e.key}\n{e.question}".lower()]
        return [
            {"id": e.id, "key": e.key, "question": e.question, "language": e.language}
            for e in rows[:limit]
        ]

    return {"entries": _db(request, read)}


@router.post(API + "/conversations/{conv_id}/messages/{message_id}/rating")
def rate(conv_id: str, message_id: Id, body: RatingIn, request: Request) -> dict:
    """The customer rates a bot answer (conversation token as bearer)."""
    from annae.web.routers.conversations import authorize

    def write(session: Session) -> dict:
        conv, access = authorize(request, session, conv_id, bearer_token(request), None)
        if access.kind != "customer":
            raise ApiError(403, "forbidden", "only the customer rates answers")
        rating = feedback.rate_answer(
            session, conv.id, message_id, body.helpful, settings=services(request).settings
        )
        hooks.rated(session, conv.id, rating)
        return rating

    return _db(request, write)


@router.get(API + "/learning/review")
def review(
    request: Request, include_reviewed: bool = False, user: Identity = Depends(admin)
) -> dict:
    """Answers customers rated not helpful, newest first."""
    return {
        "items": _db(request, lambda s: feedback.review_list(s, include_reviewed=include_reviewed))
    }


@router.post(API + "/learning/review/{rating_id}/done")
def review_done(rating_id: Id, request: Request, user: Identity = Depends(admin)) -> dict:
    _db(request, lambda s: feedback.mark_reviewed(s, rating_id, user.username))
    return {"rating_id": rating_id, "reviewed_by": user.username}


# --- clusters -------------------------------------------------------------------------------


def _filters(start: date | None, end: date | None, language: str | None) -> analytics.Filters:
    if start and end and end <= start:
        raise ApiError(422, "invalid", "end must be after start")
    return analytics.Filters(start, end, language)


def cluster_list(request: Request, f: analytics.Filters, limit: int = 50) -> list[dict]:
    since, until = f.bounds()
    items = _db(
        request,
        lambda s: feedback.unanswered_questions(s, since=since, until=until, language=f.language),
    )
    # the most recent questions only: the page embeds them on every load, with the serving
    # model's encoder where it has one (ONNX Runtime, already loaded: no torch in the worker)
    svc = services(request)
    engine = svc.holder.get()
    encoder = getattr(engine, "encoder", None) or svc.settings.encoder
    korean = getattr(engine, "korean", None)
    found = clusters.cluster(items[-MAX_CLUSTERED:], encoder=encoder, korean=korean)
    return [c.to_dict() for c in found[:limit]]


@router.get(API + "/learning/clusters")
def get_clusters(
    request: Request,
    start: date | None = None,
    end: date | None = None,
    language: Literal["ko", "en"] | None = None,
    limit: int = Query(50, ge=1, le=500),
    user: Identity = Depends(admin),
) -> dict:
    """Unanswered questions grouped into topics, largest first."""
    return {"clusters": cluster_list(request, _filters(start, end, language), limit)}


@router.post(API + "/learning/clusters/entry", status_code=201)
def entry_from_cluster(
    body: ClusterEntryIn, request: Request, user: Identity = Depends(admin)
) -> dict:
    """Create an entry from a cluster: its questions become examples (with consent), and their
    conversations are labelled with the new entry so they leave the unanswered list."""

    def write(session: Session) -> dict:
        key = body.key or feedback.unique_key(session, body.question)
        entry = kb.add_entry(
            session,
            key=key,
            question=body.question,
            answer=body.answer,
            language=body.language,
            source=f"admin:{user.username}",
            author=user.username,
        )
        added, labelled = 0, 0
        for mid in sorted(set(body.message_ids)):
            msg = history.get_message(session, mid)
            if msg is None or msg.sender != "customer":
                raise ApiError(422, "invalid", f"message {mid} is not a customer question")
            if feedback.get_label(session, msg.conversation_id) is not None:
                continue
            out = feedback.label_conversation(
                session,
                msg.conversation_id,
                kind="entry",
                entry_id=entry.id,
                message_id=mid,
                agent=user.username,
                settings=services(request).settings,
            )
            labelled += 1
            added += out["example_added"]
        return {
            "entry_id": entry.id,
            "key": entry.key,
            "examples_added": added,
            "labelled": labelled,
        }

    return _db(request, write)


# --- retraining, models, rollback -----------------------------------------------------------


def _registry(request: Request) -> ModelRegistry:
    return ModelRegistry(services(request).settings.models_dir)


@router.post(API + "/learning/retrain", status_code=202)
def start_retrain(
    request: Request, wait: bool = False, force: bool = False, user: Identity = Depends(admin)
) -> dict:
    """Train a challenger and promote it only if it passes the gate (409 while one runs).
    The same job as the KB page's Retrain button."""
    out = deps.start_retrain(services(request), user.username, force=force, wait=wait)
    if wait and out["status"] == "failed":
        busy = "held by another process" in (out["error"] or "")
        raise ApiError(409 if busy else 422, "conflict" if busy else "invalid", out["error"])
    return out


@router.get(API + "/learning/retrain")
def retrain_status(request: Request, user: Identity = Depends(admin)) -> dict:
    """The running or last retrain of this process (the KB page's included)."""
    return services(request).holder.retrain.to_dict()


@router.get(API + "/learning/models")
def models(request: Request, user: Identity = Depends(admin)) -> dict:
    """Every model version with its data, metrics and gate result, and the switch history."""
    reg = _registry(request)
    return {
        "live": reg.live_version(),
        "models": retrain.list_models(reg),
        "history": retrain.history(reg),
    }


def _switch(request: Request, version: str, user: Identity, action: str, expected) -> dict:
    reg = _registry(request)  # UnknownModel answers 404, GateError and Busy 409 (annae.errors)
    if action == "rollback":
        before = retrain.rollback(reg, version, author=user.username)
    else:
        before = retrain.promote(reg, version, expected_live=expected, author=user.username)
    deps.model_switched(services(request), version, before, user.username)
    return {"live": version, "previous": before}


@router.post(API + "/learning/models/{version}/rollback")
def rollback(version: str, request: Request, user: Identity = Depends(admin)) -> dict:
    """Make a saved version live again, in one step."""
    return _switch(request, version, user, "rollback", False)


@router.post(API + "/learning/models/{version}/promote")
def promote(
    version: str, request: Request, body: PromoteIn | None = None, user: Identity = Depends(admin)
) -> dict:
    """Promote a version by hand; with ``expected_live`` only if the live model is still that one."""
    expected = body.expected_live if body and "expected_live" in body.model_fields_set else False
    return _switch(request, version, user, "promote", expected)


@router.get(API + "/learning/operating-point")
def get_operating_point(request: Request, user: Identity = Depends(admin)) -> dict:
    """The live model's operating curve, and expected against observed precision at its
    threshold (agents' labels and customers' ratings of its decisions)."""
    return calibrate.report(_registry(request), services(request).db)


@router.post(API + "/learning/operating-point")
def set_operating_point(
    body: OperatingPointIn, request: Request, user: Identity = Depends(admin)
) -> dict:
    """Make live a copy of the live model with another answer threshold (no retraining,
    audit-logged; rolling back to ``previous`` restores it). 409 when the model cannot
    promise that target, or labelled traffic supports no threshold."""
    if (body.target is None) == (not body.from_traffic):
        raise ApiError(422, "invalid", "give either target or from_traffic")
    svc = services(request)
    reg = _registry(request)
    if body.from_traffic:  # GateError and Busy answer 409 by themselves (annae.errors)
        est, change = calibrate.from_traffic(reg, svc.db, author=user.username, apply=True)
        if change is None:
            raise ApiError(409, "conflict", f"no change: {est.reason}")
    else:
        assert body.target is not None
        change = calibrate.set_operating_point(
            reg, body.target, author=user.username, db_engine=svc.db
        )
    deps.model_switched(svc, change.version, change.previous, user.username)
    return {"live": change.version, **change.to_dict()}


# --- analytics ------------------------------------------------------------------------------


@router.get(API + "/learning/analytics")
def get_analytics(
    request: Request,
    start: date | None = None,
    end: date | None = None,
    language: Literal["ko", "en"] | None = None,
    with_clusters: bool = False,
    user: Identity = Depends(admin),
) -> dict:
    """The dashboard numbers (definitions: docs/metrics.md)."""
    f = _filters(start, end, language)
    data = _db(request, lambda s: analytics.summary(s, f))
    if with_clusters:
        data["clusters"] = cluster_list(request, f, 10)
    return data


@router.get(API + "/learning/analytics.csv")
def analytics_csv(
    request: Request,
    table: str = "summary",
    start: date | None = None,
    end: date | None = None,
    language: Literal["ko", "en"] | None = None,
    user: Identity = Depends(admin),
) -> Response:
    """One dashboard table as CSV: summary, daily, handoff_reasons, top_entries or clusters."""
    f = _filters(start, end, language)
    if table not in (*analytics.TABLES, "clusters"):
        raise ApiError(422, "invalid", f"unknown table {table!r}")
    data = _db(request, lambda s: analytics.summary(s, f))
    if table == "clusters":
        data["clusters"] = [
            {k: c[k] for k in CLUSTER_CSV_COLUMNS} for c in cluster_list(request, f, 500)
        ]
    name = f"annae-{table}-{f.start or 'all'}-{f.end or 'now'}.csv"
    return Response(
        analytics.to_csv(data, table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _reason_chart(request: Request, reasons: list[dict]) -> str:
    """The hand-off reasons chart with the reasons' translated names (as the table shows)."""
    from annae.web import pages

    strings = pages.STRINGS[pages.pick_language(request)]
    keys = [f"reason_{r['reason']}" for r in reasons]
    return charts.hbars(
        [
            (strings.get(k) or r["reason"], r["conversations"])
            for k, r in zip(keys, reasons, strict=True)
        ],
        i18n_keys=[k if k in strings else None for k in keys],
    )


@router.get("/console/analytics", response_class=HTMLResponse, include_in_schema=False)
def analytics_page(
    request: Request,
    start: date | None = None,
    end: date | None = None,
    language: Literal["ko", "en"] | None = None,
    user: Identity | None = Depends(optional_user),
) -> Response:
    """The managers' dashboard (admins only)."""
    from annae.web import pages
    from annae.web.auth import csrf_token_for

    if user is None:
        return pages._login_redirect(request)
    common: dict[str, Any] = {
        "user": user,
        "headers": pages.CONSOLE_HEADERS,
        "csrf_token": csrf_token_for(request),
    }
    if user.role != "admin":
        return pages.render(request, "forbidden.html", page="analytics", status_code=403, **common)
    f = _filters(start, end, language)
    data = _db(request, lambda s: analytics.summary(s, f))
    try:
        found = cluster_list(request, f, 10)
        cluster_error = None
    except Exception as exc:  # the dashboard still shows the numbers
        found, cluster_error = [], str(exc)[:200]
    query = "&".join(
        f"{k}={v}" for k, v in (("start", start), ("end", end), ("language", language)) if v
    )
    labels = _db(request, lambda s: feedback.recent_labels(s, limit=20))
    reg = _registry(request)
    return pages.render(
        request,
        "analytics.html",
        page="analytics",
        data=data,
        clusters=found,
        cluster_error=cluster_error,
        query=query,
        labels=labels,
        models=retrain.list_models(reg),
        op=calibrate.report(reg, services(request).db),
        daily_svg=charts.daily_bars(data["daily"]),
        reasons_svg=_reason_chart(request, data["handoff_reasons"]),
        entries_svg=charts.hbars([(e["key"], e["answers"]) for e in data["top_entries"][:10]]),
        config={"page": "analytics"},
        service=_db(request, lambda s: service_levels.summary(s, f)),  # the agent desk's numbers
        **common,
    )
