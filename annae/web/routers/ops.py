"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from annae.agents import desk
from annae.store.db import session_scope
from annae.web import metrics
from annae.web.routers.deps import services

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Response:
    """200 when the database answers and a model is loaded, else 503 saying why."""
    svc = services(request)
    checks: dict[str, str] = {}
    problems = []
    try:
        with svc.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = "unreachable"
        problems.append(f"database unreachable: {type(exc).__name__}")
    engine = svc.holder.get()
    if engine is None:
        checks["model"] = "missing"
        problems.append(
            svc.holder.load_error
            or "no model trained yet (annae train, or retrain from the admin page)"
        )
    else:
        checks["model"] = engine.version
    if problems:
        body = {
            "error": {"code": "not_ready", "message": "; ".join(problems)},
            "status": "not ready",
            **checks,
        }
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", **checks})


@router.get("/metrics", include_in_schema=False)
def prometheus(request: Request) -> Response:
    db = services(request).db

    def queue_length() -> int | None:
        try:
            with session_scope(db) as session:
                return desk.queue_length(session)
        except Exception:
            return None

    body, content_type = metrics.render(queue_length)
    return Response(body, media_type=content_type)
