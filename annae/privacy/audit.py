"""The append-only audit log of admin actions: who did what to which target, and when.

``details`` is for ids, counts and versions, never for customer text: keys such as
``text`` or ``message`` are refused unless their value is a number (a count), strings are capped at 200 characters and any
personal data left in them is redacted before the event is stored.

>>> record(session, "admin", "kb.import", "faq.csv", {"added": 12, "updated": 3})
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.privacy.redact import redact_text
from annae.store.db import aware
from annae.store.tables.privacy import AuditEvent, AuditLogIsAppendOnly

__all__ = [
    "AuditError",
    "AuditLogIsAppendOnly",
    "customer_ref",
    "ensure_key",
    "record",
    "query",
    "to_dict",
]

CONTENT_KEYS = frozenset(
    {"text", "content", "message", "messages", "body", "transcript", "question", "answer", "reply"}
)
MAX_STRING = 200
MAX_DETAILS = 50
_ACTION = re.compile(r"^[a-z][a-z0-9_.:-]{0,99}$")


class AuditError(ValueError):
    """An audit event that cannot be recorded as given."""


def _key(home: Path) -> bytes:
    path = home / "privacy.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process was first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key


def ensure_key(home: Path) -> Path:
    """Create the pseudonym key now if it does not exist yet (a backup must carry it); its path."""
    _key(Path(home))
    return Path(home) / "privacy.key"


def customer_ref(customer_id: str, home: Path | None = None) -> str:
    """A keyed pseudonym for a customer id (``customer:<24 hex>``), for audit targets.

    The audit log outlives erasure, so it names customers only by this HMAC; the key is
    ``privacy.key`` in ANNAE_HOME (created on first use, mode 600).
    """
    if home is None:
        from annae.settings import get_settings

        home = get_settings().home
    digest = hmac.new(_key(Path(home)), str(customer_id).encode(), hashlib.sha256).hexdigest()
    return f"customer:{digest[:24]}"


def _clean_value(key: str, value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise AuditError(
                f"details[{key!r}] is longer than {MAX_STRING} characters: no content in the audit log"
            )
        return redact_text(value)
    if isinstance(value, list | tuple):
        if len(value) > MAX_DETAILS:
            raise AuditError(f"details[{key!r}] has more than {MAX_DETAILS} items")
        return [_clean_value(key, v) for v in value if not isinstance(v, list | tuple | dict)]
    raise AuditError(
        f"details[{key!r}] must be a number, string, boolean, null or list, not {type(value).__name__}"
    )


def _clean_details(details: dict | None) -> dict:
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise AuditError(f"details must be a dict, got {type(details).__name__}")
    if len(details) > MAX_DETAILS:
        raise AuditError(f"details has more than {MAX_DETAILS} keys")
    out = {}
    for key, value in details.items():
        if not isinstance(key, str):
            raise AuditError(f"details keys must be strings, got {key!r}")
        if key.lower() in CONTENT_KEYS and not isinstance(value, int | float | None):
            raise AuditError(
                f"details[{key!r}] looks like content; the audit log keeps no customer text"
            )
        out[key] = _clean_value(key, value)
    return out


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Append one event; ``action`` is a dotted lower-case name such as ``privacy.erase``."""
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 200:
        raise AuditError(
            f"actor must be a non-empty string of at most 200 characters, got {actor!r}"
        )
    if not isinstance(action, str) or not _ACTION.match(action):
        raise AuditError(f"action must look like 'kb.import' (lower case, dots), got {action!r}")
    if not isinstance(target, str) or len(target) > 500:
        raise AuditError("target must be a string of at most 500 characters")
    event = AuditEvent(
        actor=actor.strip(), action=action, target=target, details=_clean_details(details)
    )
    session.add(event)
    session.flush()
    return event


def query(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Events newest first, filtered; ``action`` ending in ``.`` matches a prefix (``kb.``)."""
    if not isinstance(limit, int) or limit < 1:
        raise AuditError(f"limit must be a positive integer, got {limit!r}")
    stmt = select(AuditEvent)
    if actor is not None:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action is not None:
        if action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == action)
    if target is not None:
        stmt = stmt.where(AuditEvent.target == target)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= aware(since))
    if until is not None:
        stmt = stmt.where(AuditEvent.at < aware(until))
    stmt = stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def to_dict(event: AuditEvent) -> dict:
    """A JSON-ready view of one event."""
    return {
        "id": event.id,
        "at": aware(event.at).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "details": event.details,
    }
