"""Structured logs: one JSON object per line, on stderr, for Annae and uvicorn alike.

Every line has ``ts``, ``level``, ``logger`` and ``event`` (the message), and ``request_id`` and
``conversation_id`` when it was logged while serving a request (:class:`RequestIdMiddleware`
sets them; ``X-Request-ID`` is kept when a proxy sends one, and always answered). uvicorn's
access lines add ``client``, ``method``, ``path`` and ``status``. No line carries what a customer
wrote, unless ``ANNAE_LOG_TEXT=redacted``: turn events then have ``text``, with the personal
data replaced by placeholders.

Every handler gets the filters of :data:`HANDLER_FILTERS` (the personal-data
:class:`~annae.privacy.redact.RedactingFilter` first): append a factory there to filter every
line of every logger in one place.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from annae.logredact import RedactSecrets
from annae.privacy.redact import RedactingFilter, redact_text

if TYPE_CHECKING:  # pragma: no cover
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: ContextVar[str | None] = ContextVar("annae_request_id", default=None)
conversation_id: ContextVar[str | None] = ContextVar("annae_conversation_id", default=None)

HANDLER_FILTERS: list[Callable[[], logging.Filter]] = [RedactSecrets, RedactingFilter]
"""Factories of the filters attached to every handler (in this order)."""

FIELDS = ("client", "method", "path", "status", "conversation_id", "type", "reason")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ACCESS = re.compile(r'^(\S+) - "(\S+) (\S+) HTTP/[\d.]+" (\d{3})$')
_STD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON line (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        access = _ACCESS.match(message) if record.name == "uvicorn.access" else None
        if access:  # parsed from the text: filters may have rewritten it (the client's IP)
            client, method, path, status = access.groups()
            out.update(event="request", client=client, method=method, path=path, status=int(status))
        else:
            out["event"] = message
        rid, conv = request_id.get(), conversation_id.get()
        if rid:
            out["request_id"] = rid
        if conv:
            out["conversation_id"] = conv
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def config(level: str = "info") -> dict:
    """The ``logging.config.dictConfig`` for Annae and uvicorn (also uvicorn's ``log_config``)."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {f"filter{i}": {"()": make} for i, make in enumerate(HANDLER_FILTERS)},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": [f"filter{i}" for i in range(len(HANDLER_FILTERS))],
            }
        },
        "loggers": {
            name: {"handlers": ["stderr"], "level": level, "propagate": False}
            for name in ("annae", "uvicorn", "uvicorn.error", "uvicorn.access")
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def configure(level: str = "info") -> None:
    """Log as JSON lines from now on in this process."""
    logging.config.dictConfig(config(level))


def text_field(text: str | None) -> dict:
    """``{"text": redacted text}`` when ``ANNAE_LOG_TEXT=redacted``, else nothing."""
    if text and os.environ.get("ANNAE_LOG_TEXT", "").lower() == "redacted":
        return {"text": redact_text(text[:2000])}
    return {}


def set_conversation(conv_id: str | None) -> None:
    """Name the conversation the current request is about (for every line it logs)."""
    conversation_id.set(conv_id)


class RequestIdMiddleware:
    """Give each HTTP request and WebSocket a request id (``X-Request-ID``) for its log lines."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request_id.set(rid)
        conversation_id.set(None)

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                conv = scope.get("path_params", {}).get("conv_id")
                if conv:
                    conversation_id.set(str(conv))
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", rid.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


__all__ = [
    "HANDLER_FILTERS",
    "JsonFormatter",
    "RequestIdMiddleware",
    "config",
    "configure",
    "set_conversation",
    "text_field",
]
