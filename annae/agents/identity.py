"""Signed customer identity for the widget and the chat page (identity verification).

The shop's server signs its logged-in customer's id with the deployment's widget secret::

    signature = HMAC-SHA256(secret, customer_id).hexdigest()

and the embed snippet passes ``customer_id`` and ``signature`` when the chat starts. Only a valid
signature links the conversation to the customer; anything else (no secret set up, no or a
wrong signature, an id that is too long or holds control characters) leaves it anonymous.

The secret is kept in ``<home>/widget-secret`` (mode 0600, created or rotated by
``annae widget secret``) or given as ``ANNAE_WIDGET_SECRET`` when several hosts serve one
deployment. It is never logged or returned by the API.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

SECRET_FILE = "widget-secret"
MAX_CUSTOMER_ID = 100  # the recommendation customer id's length
MAX_NAME = 200
MAX_EMAIL = 320
_HEX = frozenset("0123456789abcdef")


def secret_path(home: Path) -> Path:
    return Path(home) / SECRET_FILE


def rotate_secret(home: Path) -> str:
    """A new widget secret written to ``home`` (the old one stops working at once); returned once."""
    secret = "ws_" + secrets.token_urlsafe(32)
    path = secret_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    os.replace(tmp, path)
    return secret


def load_secret(home: Path, override: str | None = None) -> str | None:
    """The secret in force: ``override`` (the setting) if given, else the file's, else None."""
    if override:
        return override.strip() or None
    try:
        text = secret_path(home).read_text().strip()
    except OSError:
        return None
    return text or None


def sign(secret: str, customer_id: str) -> str:
    """What the shop's server computes: hex HMAC-SHA256 of the UTF-8 customer id."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def customer_id_problem(customer_id: object) -> str | None:
    """Why ``customer_id`` cannot name a customer (None when it can)."""
    if not isinstance(customer_id, str) or not customer_id:
        return "empty_customer_id"
    if len(customer_id) > MAX_CUSTOMER_ID:
        return "customer_id_too_long"
    if customer_id != customer_id.strip():
        return "customer_id_whitespace"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in customer_id):
        return "customer_id_control_characters"
    return None


@dataclass(frozen=True)
class Verdict:
    """The verified customer id (None: anonymous) and, when refused, why (never the secret)."""

    customer_id: str | None
    problem: str | None = None

    @property
    def verified(self) -> bool:
        return self.customer_id is not None


def verify(secret: str | None, customer_id: object, signature: object) -> Verdict:
    """Check a claimed identity in constant time; a refusal names the reason, never the secret."""
    problem = customer_id_problem(customer_id)
    if problem:
        return Verdict(None, problem)
    assert isinstance(customer_id, str)  # customer_id_problem accepts only strings
    if not isinstance(signature, str) or not signature:
        return Verdict(None, "missing_signature")
    if secret is None:
        return Verdict(None, "no_widget_secret")
    given = signature.strip().lower()
    if len(given) != 64 or not set(given) <= _HEX:
        return Verdict(None, "malformed_signature")
    if not hmac.compare_digest(given, sign(secret, customer_id)):
        return Verdict(None, "wrong_signature")
    return Verdict(customer_id)


def clean_text(value: object, limit: int) -> str | None:
    """A display name or e-mail as the agent may see it: printable, trimmed, at most ``limit``."""
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C").strip()
    return text[:limit] or None


def fingerprint(value: object) -> str:
    """A short, non-reversible tag of a claimed id for log lines (never the id or the secret)."""
    raw = value if isinstance(value, str) else repr(value)
    return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:12]
