"""A logging filter that blanks credentials in query strings before a record is written.

uvicorn logs every WebSocket handshake (``"WebSocket /api/v1/…/ws?token=…" [accepted]``) and,
with the access log on, every request line with its query string. Browsers can only send a
WebSocket's credentials in the URL, so those lines would carry conversation tokens, agents' login
tokens and channels' API keys. :class:`RedactSecrets` rewrites such parameters to
``token=[redacted]`` in the record's message and arguments; attach it to any handler
(``handler.addFilter(RedactSecrets())``) or name it in a ``logging.config.dictConfig``
(``{"()": "annae.logredact.RedactSecrets"}``).
"""

from __future__ import annotations

import logging
import re

#: query parameters whose values are credentials (matched case-insensitively, also as suffixes
#: such as ``access_token`` or ``x-api-key``)
SECRET_PARAMS = (
    "token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "password",
    "passwd",
    "session",
    "csrf",
    "csrf_token",
    "auth",
    "authorization",
    "signature",
    "sig",
    "code",
)
REDACTED = "[redacted]"

_PARAM = re.compile(
    r"(?P<head>(?:^|[?&;\s\"'])[\w.\-]*?(?:"
    + "|".join(re.escape(p) for p in sorted(SECRET_PARAMS, key=len, reverse=True))
    + r")=)(?P<value>[^&;\s\"'#]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with the value of every credential query parameter replaced by ``[redacted]``."""
    if "=" not in text:
        return text
    return _PARAM.sub(lambda m: m.group("head") + (REDACTED if m.group("value") else ""), text)


def _clean(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Redacts credential query parameters in a record's message and arguments (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True
