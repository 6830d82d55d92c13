"""Who is calling: staff bearer tokens, browser sessions with CSRF protection, API keys.

Helpers for page routes: :func:`current_user`, :func:`optional_user`, :func:`require_role`,
:func:`csrf_token_for`, :func:`login_form_handler`, :func:`set_session_cookie`, :func:`create_user`.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annae.agents import users
from annae.agents.users import Identity, create_user  # noqa: F401  (re-exported for pages and demo)
from annae.store.db import session_scope
from annae.web.routers.deps import ApiError, bearer_token, client_ip, is_unsafe, limit, services

SESSION_COOKIE = "annae_session"
CSRF_COOKIE = "annae_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LOGIN_PAGE = "/console/login"


# --- CSRF -----------------------------------------------------------------------------------


class CSRFCookieMiddleware:
    """Gives every client a readable ``annae_csrf`` cookie (double-submit token) if it has none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        token = conn.cookies.get(CSRF_COOKIE)
        if token and 16 <= len(token) <= 128:
            scope.setdefault("state", {})["csrf_token"] = token
            await self.app(scope, receive, send)
            return
        token = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{CSRF_COOKIE}={token}; Path=/; SameSite=Lax{secure}"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(
                    k == b"set-cookie" and v.startswith(CSRF_COOKIE.encode() + b"=")
                    for k, v in headers
                ):
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def csrf_token_for(request: Request) -> str:
    """The CSRF token to put in forms (``csrf_token`` field) and ``<meta name="csrf-token">``."""
    token = getattr(request.state, "csrf_token", None) or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie, submitted)


def check_csrf(request: Request, form_token: str | None = None) -> None:
    """403 unless the header (or form field) echoes the ``annae_csrf`` cookie."""
    if not csrf_ok(request, form_token or request.headers.get(CSRF_HEADER)):
        raise ApiError(
            403,
            "csrf",
            "missing or wrong CSRF token (send the annae_csrf cookie value in X-CSRF-Token)",
        )


# --- identities ----------------------------------------------------------------------------


def _lookup(conn: HTTPConnection, token: str, kinds: tuple[str, ...]) -> Identity | None:
    with session_scope(services(conn).db) as session:
        return users.identity_for_token(session, token, kinds)


def staff_identity(
    conn: HTTPConnection, *, check_csrf_for: Request | None = None
) -> Identity | None:
    """The agent/admin behind the bearer token or session cookie, if any (no errors)."""
    cached = getattr(conn.state, "identity", False)  # False: not looked up yet in this request
    if cached is None or isinstance(cached, Identity):  # what this function stored below
        return cached
    identity = None
    token = bearer_token(conn)
    if token:
        identity = _lookup(conn, token, ("bearer",))
    elif conn.cookies.get(SESSION_COOKIE):
        identity = _lookup(conn, conn.cookies[SESSION_COOKIE], ("session",))
        if identity is not None and check_csrf_for is not None and is_unsafe(check_csrf_for):
            check_csrf(check_csrf_for)
    conn.state.identity = identity
    return identity


def current_user(request: Request) -> Identity:
    """Dependency: the logged-in agent or admin (bearer token or session cookie + CSRF), else 401."""
    identity = staff_identity(request, check_csrf_for=request)
    if identity is None:
        raise ApiError(401, "unauthorized", "log in first (bearer token or session cookie)")
    return identity


def optional_user(request: Request) -> Identity | None:
    """Dependency for pages: the user or None (pages redirect to the login form)."""
    return staff_identity(request)


def require_role(role: str):
    """Dependency factory: the current user if it has ``role`` (admins may do everything), else 403."""

    def dependency(user: Identity = Depends(current_user)) -> Identity:
        if user.role != role and user.role != "admin":
            raise ApiError(403, "forbidden", f"this needs the {role} role")
        return user

    return dependency


def api_key_channel(conn: HTTPConnection) -> str | None:
    """The channel name of a valid ``X-API-Key`` (or ``?api_key=`` on WebSockets); 401 if wrong."""
    key = conn.headers.get("x-api-key") or (
        conn.query_params.get("api_key") if conn.scope["type"] == "websocket" else None
    )
    if not key:
        return None
    with session_scope(services(conn).db) as session:
        name = users.api_key_name(session, key)
    if name is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key")
    return name


# --- browser sessions ----------------------------------------------------------------------


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(users.TOKEN_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/console`` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


async def login_form_handler(request: Request) -> Response:
    """``POST /auth/login`` (form: username, password, csrf_token, next) → 303 with a session cookie."""
    form = await request.form()
    target = safe_next(str(form.get("next") or ""))
    if not csrf_ok(request, str(form.get(CSRF_FIELD) or "")):
        return RedirectResponse(f"{LOGIN_PAGE}?error=csrf&next={quote(target)}", status_code=303)
    limit(request, "login", client_ip(request))
    username, password = str(form.get("username") or ""), str(form.get("password") or "")

    def login() -> str | None:
        with session_scope(services(request).db) as session:
            user = users.authenticate(session, username, password)
            return users.issue_token(session, user, "session")[0] if user else None

    token = await run_in_threadpool(login)
    if token is None:
        return RedirectResponse(f"{LOGIN_PAGE}?error=invalid&next={quote(target)}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, token)
    return response


async def logout_form_handler(request: Request) -> Response:
    """``POST /auth/logout`` (form with csrf_token): delete the session, back to the login page."""
    form = await request.form()
    response = RedirectResponse(LOGIN_PAGE, status_code=303)
    if not csrf_ok(request, str(form.get(CSRF_FIELD) or "")):
        return RedirectResponse(f"{LOGIN_PAGE}?error=csrf", status_code=303)
    token = request.cookies.get(SESSION_COOKIE)
    if token:

        def revoke() -> None:
            with session_scope(services(request).db) as session:
                users.revoke_token(session, token)

        await run_in_threadpool(revoke)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
