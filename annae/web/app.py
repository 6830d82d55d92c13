"""The FastAPI application: ``create_app()`` (an import-string factory for uvicorn workers)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, create_engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annae import __version__
from annae.dialogue.conversations import ConversationError
from annae.settings import Settings, get_settings
from annae.store.db import get_engine
from annae.web import metrics
from annae.web.auth import CSRFCookieMiddleware
from annae.web.events import make_broker
from annae.web.ratelimit import make_limiter
from annae.web.routers import admin, agents, auth, conversations, ops
from annae.web.routers.deps import ApiError, EngineHolder, Services

log = logging.getLogger("annae.web")
MAX_BODY = 64 * 1024
# PostgreSQL connections one worker keeps open. Requests that find them all busy wait for one
# (up to 30 s) instead of opening more: a new connection costs more CPU than the request itself.
DB_POOL = 20
STATIC = Path(__file__).parent / "static"
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
}


def error_body(status: int, message: str, code: str | None = None, **extra) -> dict:
    return {"error": {"code": code or CODES.get(status, "error"), "message": message, **extra}}


async def _send_json(send: Send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes: by Content-Length, and by counting while reading."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        too_large = error_body(413, f"request body over {self.limit // 1024} kB")
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _send_json(send, 413, too_large)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class MetricsMiddleware:
    """Counts requests and their latency by route template (never by raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or ("unmatched" if status == 404 else "other")
            metrics.observe_request(scope["method"], path, status, started)


def _optional_router(module: str):
    """The ``router`` of an optional module (pages, recommendations), or None if it does not exist."""
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except ModuleNotFoundError:
        return None
    return getattr(importlib.import_module(module), "router", None)


def service_db(url: str) -> Engine:
    """This process's database engine: for PostgreSQL its own pool of ``DB_POOL`` connections."""
    shared = get_engine(url)
    if shared.dialect.name != "postgresql":
        return shared
    return create_engine(
        shared.url, pool_size=DB_POOL, max_overflow=0, pool_timeout=30, pool_pre_ping=True
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.home.mkdir(parents=True, exist_ok=True)
        holder = EngineHolder(settings)
        await run_in_threadpool(holder.load_now)
        broker = make_broker(settings.redis_url)
        await broker.start()
        db = service_db(settings.database)
        app.state.services = Services(
            db=db,
            settings=settings,
            holder=holder,
            broker=broker,
            limiter=make_limiter(settings.redis_url),
        )
        log.info("annae ready: model %s, events %s", holder.version, broker.kind)
        try:
            yield
        finally:
            await broker.stop()
            if db is not get_engine(settings.database):
                db.dispose()

    app = FastAPI(
        title="Annae",
        version=__version__ if isinstance(__version__, str) else "0",
        description="Self-hosted contact-center AI: FAQ answers and hand-off to people.",
        lifespan=lifespan,
    )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ConversationError)
    async def _conversation_error(request: Request, exc: ConversationError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, str(exc), code=exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": list(e.get("loc", ())),
                "msg": "invalid JSON" if e.get("type") == "json_invalid" else e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        if any(d["type"] == "json_invalid" for d in details):
            return JSONResponse(
                error_body(422, "the body is not valid JSON", details=details), status_code=422
            )
        message = "; ".join(
            f"{'.'.join(str(p) for p in d['loc'][1:]) or 'body'}: {d['msg']}" for d in details
        )
        return JSONResponse(
            error_body(422, message or "invalid request", details=details), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        return JSONResponse(
            error_body(exc.status_code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal error", code="internal"), status_code=500)

    for module in (ops, auth, conversations, agents, admin):
        app.include_router(module.router)
    app.include_router(importlib.import_module("annae.web.routers.learning").router)
    app.include_router(importlib.import_module("annae.web.routers.desk").router)
    for name in (
        "annae.web.pages",
        "annae.web.routers.recommend",
        "annae.privacy.api",
        "annae.web.routers.chat_products",
    ):
        router = _optional_router(name)
        if router is not None:
            app.include_router(router)
    if STATIC.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(CSRFCookieMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(MetricsMiddleware)
    return app
