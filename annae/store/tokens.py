"""Bearer secrets (conversation and staff tokens, API keys, channel secrets): made here, stored
only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets


def new_secret() -> str:
    """A new random secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 of a random high-entropy secret (tokens, keys); never used for passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()
