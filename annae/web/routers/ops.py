"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from annae.agents import desk
from annae.store.db import session_scope
from annae.web import metrics
from annae.web.routers.deps import ApiError, bearer_token, client_ip, services

LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Response:
    """200 when the database answers and a model is loaded, else 503 saying why."""
    svc = services(request)
    checks: dict[str, str | None] = {}
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
    """Prometheus text, for a scraper on this machine or one sending ``ANNAE_METRICS_TOKEN``."""
    svc = services(request)
    expected = svc.settings.metrics_token
    if expected:
        if not hmac.compare_digest(bearer_token(request) or "", expected):
            raise ApiError(401, "unauthorized", "send the metrics token as a bearer token")
    elif client_ip(request) not in LOOPBACK:
        raise ApiError(
            403,
            "forbidden",
            "/metrics answers loopback clients only unless ANNAE_METRICS_TOKEN is set",
        )
    db = svc.db

    def queue_length() -> int | None:
        try:
            with session_scope(db) as session:
                return desk.queue_length(session)
        except Exception:
            return None

    body, content_type = metrics.render(queue_length)
    return Response(body, media_type=content_type)
