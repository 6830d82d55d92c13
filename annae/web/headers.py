"""Security headers on every response, set in one place (:class:`SecurityHeadersMiddleware`).

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` everywhere;
- HTML pages get a Content-Security-Policy that allows scripts only from this origin (the pages
  load ``/static/*.js`` and inline nothing executable; their JSON config block is data);
- the console (``/console``), the API and the login/logout routes get ``Cache-Control: no-store``
  (transcripts and tokens must not stay in shared or browser caches);
- a page's own ``frame-ancestors`` (pages.py: the console may not be framed, the chat page may:
  that is how the widget works) is kept and the script policy added to it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"
ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
NO_STORE_PREFIXES = ("/console", "/api/", "/auth/")


def headers_for(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with the security headers for a response to ``path`` added (never replaced)."""
    present = {k.lower() for k, _ in headers}
    extra = [(k, v) for k, v in ALWAYS if k not in present]
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    if content_type.startswith(b"text/html"):
        own = [v for k, v in headers if k.lower() == b"content-security-policy"]
        if not own:
            extra.append((b"content-security-policy", CSP.encode()))
        elif b"script-src" not in own[0]:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-security-policy"]
            extra.append((b"content-security-policy", own[0] + b"; " + CSP.encode()))
    if path.startswith(NO_STORE_PREFIXES) and b"cache-control" not in present:
        extra.append((b"cache-control", b"no-store"))
    return headers + extra


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": headers_for(path, list(message.get("headers", []))),
                }
            await send(message)

        await self.app(scope, receive, send_with_headers)
