"""The one error family of the packages: a request they cannot do, with its HTTP meaning.

Every package raises its own subclass (``ConversationError``, ``KBError``, ``LearningError``,
``RecommendError``, ``UserError``, ...), so callers can catch one package's errors, and each
class carries ``status`` and ``code``; the web layer maps the whole family to HTTP in one
handler (``{"error": {"code", "message"}}``) and the CLI prints the message. The four kinds
below let a caller catch "not found" or "conflict" whatever the package; the kind comes first
among the parents, so its ``status`` and ``code`` win over the package's default::

    class EntryNotFound(errors.NotFound, KBError):
        ...
"""

from __future__ import annotations


class AnnaeError(Exception):
    """A request a package cannot do (bad input, unknown id, a state that forbids it)."""

    status: int = 400
    code: str = "bad_request"


class NotFound(AnnaeError):
    status, code = 404, "not_found"


class Conflict(AnnaeError):
    status, code = 409, "conflict"


class Forbidden(AnnaeError):
    status, code = 403, "forbidden"


class Invalid(AnnaeError):
    status, code = 422, "invalid"


__all__ = ["AnnaeError", "Conflict", "Forbidden", "Invalid", "NotFound"]
