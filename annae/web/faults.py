"""What a failure of the database means to a caller: 503 + ``Retry-After``, or 1013 on a socket.

One classification (:func:`db_unavailable`) for HTTP routes and WebSockets: a lost or refused
connection, a pool that has no connection to give, a locked SQLite file. Such a request changed
nothing (its transaction rolled back), so the client may simply try again.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

RETRY_AFTER_S = 1
UNAVAILABLE_MESSAGE = "the database is unavailable; try again shortly"
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # the connection pool had nothing to give
)


def db_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the database cannot be reached right now."""
    seen = 0
    cur: BaseException | None = exc  # then what caused it, None at the chain's end
    while cur is not None and seen < 5:
        if isinstance(cur, _UNAVAILABLE):
            return True
        if isinstance(cur, sa_exc.DBAPIError) and cur.connection_invalidated:
            return True
        cur, seen = cur.__cause__ or cur.__context__, seen + 1
    return False


def bad_value(exc: BaseException) -> bool:
    """True when the database refused a value (out of range, unencodable text): the caller's 422."""
    return isinstance(exc, sa_exc.DataError | UnicodeError) or (
        isinstance(exc, sa_exc.StatementError) and isinstance(exc.orig, UnicodeError)
    )
