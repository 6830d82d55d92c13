"""The two input rules every route and both WebSockets share.

- **Integer ids** (:data:`Id`, :data:`AfterId`): message, entry, example, rating and user ids are
  PostgreSQL ``integer`` columns, so a value outside ``1 … 2³¹−1`` can name nothing; it is a 422
  (``invalid``) before any query runs, on SQLite too. An id in range that names nothing is a 404.
- **Text**: PostgreSQL cannot store NUL (``\\u0000``) in text, and no language needs it. Any NUL in
  a path, a query string, a JSON or form body, or a WebSocket frame is a 422 with
  :data:`NUL_MESSAGE` (checked once at the edge by :func:`nul_in_request`, and per frame by
  :func:`nul_in_value`).
"""

from __future__ import annotations

import re
from typing import Annotated

from annotated_types import Interval

DB_INT_MAX = 2**31 - 1
#: a stored row's integer id (1 … 2³¹−1); use as a path, query or body field type
Id = Annotated[int, Interval(ge=1, le=DB_INT_MAX)]
#: ``?after=``: 0 (everything) … 2³¹−1
AfterId = Annotated[int, Interval(ge=0, le=DB_INT_MAX)]

NUL_MESSAGE = "text must not contain NUL characters (\\u0000)"

# an escaped NUL in JSON: "\u0000" preceded by an even number of backslashes
_JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")
_FORM_NUL = re.compile(rb"%00")
_QUERY_NUL = re.compile(rb"%00|\x00")


def nul_in_value(value: object, depth: int = 0) -> bool:
    """True when a NUL is in ``value`` or in any string (key or item) of a parsed JSON value."""
    if isinstance(value, str):
        return "\x00" in value
    if depth > 100:
        return False  # deeper values are refused elsewhere
    if isinstance(value, dict):
        return any(nul_in_value(k) or nul_in_value(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(nul_in_value(v, depth + 1) for v in value)
    return False


def nul_in_request(path: str, query: bytes, content_type: str, body: bytes = b"") -> bool:
    """True when a NUL hides in the (decoded) path, the raw query string or a JSON/form body."""
    if "\x00" in path or (query and _QUERY_NUL.search(query)):
        return True
    if not body:
        return False
    if "json" in content_type:
        return b"\x00" in body or (b"\\u0000" in body and _JSON_NUL.search(body) is not None)
    if "x-www-form-urlencoded" in content_type:
        return b"\x00" in body or _FORM_NUL.search(body) is not None
    return False
