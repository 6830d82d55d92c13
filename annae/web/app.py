"""The FastAPI application: ``create_app()`` (an import-string factory for uvicorn workers)."""

from __future__ import annotations

import faulthandler
import json
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annae import __version__
from annae.channels import runtime as channels_runtime
from annae.errors import AnnaeError
from annae.logs import RequestIdMiddleware
from annae.settings import Settings, get_settings
from annae.store.db import check_sqlite_files, get_engine, service_db
from annae.web import inputs, metrics, openapi
from annae.web.auth import CSRFCookieMiddleware
from annae.web.events import make_broker
from annae.web.faults import RETRY_AFTER_S, UNAVAILABLE_MESSAGE, bad_value, db_unavailable
from annae.web.headers import SecurityHeadersMiddleware
from annae.web.holder import EngineHolder
from annae.web.ratelimit import make_limiter
from annae.web.routers import admin, agents, auth, conversations, ops
from annae.web.routers.deps import ApiError, Services

log = logging.getLogger("annae.web")
MAX_BODY = 64 * 1024
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
    503: "unavailable",
}
# FastAPI's answer to a body it could not parse (bad UTF-8, JSON nested too deep, broken form)
PARSE_ERROR = "There was an error parsing the body"


def error_body(status: int, message: str, code: str | None = None, **extra) -> dict:
    return {"error": {"code": code or CODES.get(status, "error"), "message": message, **extra}}


def error_response(
    status: int, message: str, code: str | None = None, headers: dict | None = None, **extra
) -> JSONResponse:
    """The JSON answer of every error handler: :func:`error_body` with ``status``."""
    return JSONResponse(
        error_body(status, message, code, **extra), status_code=status, headers=headers
    )


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


class InputMiddleware:
    """The edge checks of every request: 413 for bodies over ``limit`` bytes (by Content-Length,
    and by counting while reading) and 422 for a NUL anywhere in the path, query or body
    (:mod:`annae.web.inputs`); a WebSocket with a NUL in its URL is refused (close 1008)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        nul = error_body(422, inputs.NUL_MESSAGE)
        path, query = scope.get("path", ""), scope.get("query_string", b"")
        if inputs.nul_in_request(path, query, ""):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "NUL in URL"})
            else:
                await _send_json(send, 422, nul)
            return
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        too_large = error_body(413, f"request body over {self.limit // 1024} kB")
        length = headers.get(b"content-length")
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
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if inputs.nul_in_request("", b"", content_type, body):
            await _send_json(send, 422, nul)
            return

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


def _offline_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the ``swagger-ui-bundle`` package (no CDN, works offline)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # pragma: no cover - a dependency; without it there is no /docs
        return
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    # request.app, not a closure over app: FastAPI caches facts about endpoint functions in a
    # process-wide cache, which would keep every app built in the process (and its engine) alive
    @app.get("/docs", include_in_schema=False)
    async def _docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title="Annae API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # a fatal signal (SIGSEGV, SIGBUS from a broken SQLite -shm mapping) leaves a traceback
        # on stderr, which is the server's log, instead of a silent exit
        if not faulthandler.is_enabled():
            faulthandler.enable()
        settings.home.mkdir(parents=True, exist_ok=True)
        check_sqlite_files(get_engine(settings.database))
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
            limiter=make_limiter(settings),
        )
        stop_channels = channels_runtime.start(app.state.services)
        log.info("annae ready: model %s, events %s", holder.version, broker.kind)
        try:
            yield
        finally:
            await run_in_threadpool(stop_channels)
            await run_in_threadpool(app.state.services.decider.close)
            await broker.stop()
            if db is not get_engine(settings.database):
                db.dispose()

    app = FastAPI(
        title="Annae",
        version=__version__ if isinstance(__version__, str) else "0",
        description="Self-hosted contact-center AI: FAQ answers and hand-off to people.",
        lifespan=lifespan,
        docs_url=None,  # served below from the installed swagger-ui-bundle: works offline
        redoc_url=None,
    )
    _offline_docs(app)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(AnnaeError)
    async def _package_error(request: Request, exc: AnnaeError) -> JSONResponse:
        """Every package's errors (annae.errors), mapped to HTTP here and only here."""
        return error_response(exc.status, str(exc), exc.code)

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
            return error_response(422, "the body is not valid JSON", details=details)
        message = "; ".join(
            f"{'.'.join(str(p) for p in d['loc'][1:]) or 'body'}: {d['msg']}" for d in details
        )
        return error_response(422, message or "invalid request", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == PARSE_ERROR:
            message = "the body could not be parsed (not UTF-8, or JSON nested too deeply)"
            return error_response(422, message)
        message = exc.detail if isinstance(exc.detail, str) else "error"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if db_unavailable(exc):
            log.warning(
                "database unavailable on %s %s: %s",
                request.method,
                request.url.path,
                type(exc).__name__,
            )
            return error_response(
                503, UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_S)}
            )
        if bad_value(exc):
            message = "a value cannot be stored (out of range or not valid text)"
            return error_response(422, message)
        return await _crash(request, exc)

    for kind in (SQLAlchemyError, UnicodeError):
        app.add_exception_handler(kind, _database)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error", "internal")

    # imported when an app is made, not with this module: they load the recommender
    # (scikit-learn, SciPy: about a second of CPU), which importing annae.web.app does not need
    from annae.web import pages
    from annae.web.routers import channels, chat_products, desk, learning, privacy, recommend

    for module in (
        ops,
        auth,
        conversations,
        agents,
        admin,
        learning,
        desk,
        pages,
        recommend,
        privacy,
        chat_products,
        channels,
    ):
        app.include_router(module.router)
    if STATIC.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    openapi.install(app)
    app.add_middleware(CSRFCookieMiddleware)
    app.add_middleware(InputMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)  # outermost: every line of a request has its id
    return app
