"""HTML pages: the customer chat, the embeddable widget, the agent console and the KB editor.

The pages are Jinja2 templates plus our own JS and CSS under ``static/`` (no build step);
everything dynamic goes through the JSON API described in docs/api.md.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from annae.agents.users import Identity
from annae.web.auth import csrf_token_for, optional_user, safe_next

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
LANGUAGES = ("en", "ko")
STRINGS: dict[str, dict[str, str]] = json.loads((STATIC_DIR / "i18n.json").read_text("utf-8"))

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _asset_version() -> str:
    """A short hash of the static files, appended to their URLs so browsers refetch after an upgrade."""
    h = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:10]


ASSET_VERSION = _asset_version()

# The console must never be framed (clickjacking); the chat is meant to be framed by shop pages.
CONSOLE_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}
CHAT_HEADERS = {"Content-Security-Policy": "frame-ancestors *"}


def pick_language(request: Request) -> str:
    """``?lang=`` first, then the ``annae_lang`` cookie, then Accept-Language, else English."""
    for candidate in (request.query_params.get("lang"), request.cookies.get("annae_lang")):
        if candidate in LANGUAGES:
            return candidate
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def _static_url(name: str) -> str:
    return f"/static/{name}?v={ASSET_VERSION}"


def render(
    request: Request,
    name: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    user: Identity | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a template with the language, the strings and the page config the JS reads."""
    lang = pick_language(request)
    config = {
        "lang": lang,
        "strings": STRINGS,
        "base": "",
        "csrfCookie": "annae_csrf",
        "embed": bool(context.get("embed")),
    }
    if user is not None:
        config["user"] = {"username": user.username, "role": user.role}
    config.update(context.pop("config", {}))

    def t(key: str) -> str:
        return STRINGS[lang].get(key) or STRINGS["en"].get(key, key)

    ctx = {"lang": lang, "t": t, "static": _static_url, "config": config, "user": user, **context}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


@router.api_route("/chat", methods=["GET", "HEAD"], response_class=HTMLResponse)
def chat_page(request: Request, embed: bool = False) -> HTMLResponse:
    """The customer chat; ``?embed=1`` is the compact version the widget frames."""
    return render(request, "chat.html", embed=embed, headers=CHAT_HEADERS)


@router.api_route("/widget.js", methods=["GET", "HEAD"])
def widget_js() -> FileResponse:
    """The embeddable widget script (any site may load it)."""
    return FileResponse(
        STATIC_DIR / "widget.js",
        media_type="application/javascript; charset=utf-8",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"},
    )


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)


@router.api_route("/console/login", methods=["GET", "HEAD"], response_class=HTMLResponse)
def login_page(request: Request, user: Identity | None = Depends(optional_user)) -> Response:
    """The sign-in form; it posts to ``/auth/login`` with the CSRF token."""
    nxt = safe_next(request.query_params.get("next"))
    if user is not None:
        return RedirectResponse(nxt, status_code=303)
    error = request.query_params.get("error")
    return render(
        request,
        "login.html",
        headers=CONSOLE_HEADERS,
        csrf_token=csrf_token_for(request),
        next=nxt,
        error=error if error in ("invalid", "csrf") else None,
    )


def _console_page(
    request: Request, user: Identity | None, name: str, page: str, status_code: int = 200
) -> Response:
    """A page of the console for ``user``, or the sign-in form for nobody."""
    if user is None:
        return _login_redirect(request)
    return render(
        request,
        name,
        user=user,
        page=page,
        status_code=status_code,
        headers=CONSOLE_HEADERS,
        csrf_token=csrf_token_for(request),
    )


@router.api_route("/console", methods=["GET", "HEAD"], response_class=HTMLResponse)
def console_page(request: Request, user: Identity | None = Depends(optional_user)) -> Response:
    """The agent console: queue, conversation view, replies."""
    return _console_page(request, user, "console.html", "console")


@router.api_route("/console/kb", methods=["GET", "HEAD"], response_class=HTMLResponse)
def kb_page(request: Request, user: Identity | None = Depends(optional_user)) -> Response:
    """The knowledge-base editor and retrain button (admins only; agents get a 403 page)."""
    if user is not None and user.role != "admin":
        return _console_page(request, user, "forbidden.html", "kb", status_code=403)
    return _console_page(request, user, "kb.html", "kb")
