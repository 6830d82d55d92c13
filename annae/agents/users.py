"""Agent and admin accounts, login tokens and API keys (the only code that touches those tables)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from annae import errors
from annae.store.db import aware, rowcount, session_scope, utcnow
from annae.store.tables.service import ApiKey, AuthToken, User
from annae.store.tokens import hash_secret, new_secret

ROLES = ("agent", "admin")
TOKEN_TTL = timedelta(days=7)
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that timing does not reveal names
    (made at the first sign-in, not at import: an argon2 hash costs every process 0.15 s)."""
    return _hasher.hash("annae-dummy-password")


class UserError(errors.AnnaeError, ValueError):
    """An account operation that cannot be done (bad name or role, duplicate, unknown user)."""

    status, code = 422, "invalid"


class UserNotFound(errors.NotFound, UserError):
    pass


class UserExists(errors.Conflict, UserError):
    pass


@dataclass(frozen=True)
class Identity:
    """Who is calling: a staff user (agent/admin)."""

    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def to_dict(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role}


def _check(username: str, role: str, password: str) -> None:
    if not _NAME.match(username or ""):
        raise UserError("username must be 1-100 letters, digits or . _ @ -")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if not password or len(password) < 8:
        raise UserError("password must have at least 8 characters")


def hash_password(password: str) -> str:
    """``password``'s Argon2id hash (about 0.1 s of CPU and 64 MiB, by design)."""
    return _hasher.hash(password)


def add_user(
    session: Session, username: str, role: str, password: str, *, password_hash: str | None = None
) -> User:
    """Create an account with an Argon2id password hash (``password_hash``: ``password``'s,
    already computed by :func:`hash_password`, e.g. one hash for many test accounts)."""
    _check(username, role, password)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise UserExists(f"user {username!r} already exists")
    if password_hash is None:  # not verified when given: that would cost as much as hashing
        password_hash = hash_password(password)
    user = User(username=username, role=role, password_hash=password_hash, active=True)
    session.add(user)
    session.flush()
    return user


def create_user(engine: Engine, name: str, role: str, password: str) -> int:
    """Create an account in its own transaction; returns the new user id (nothing secret)."""
    with session_scope(engine) as session:
        return add_user(session, name, role, password).id


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserNotFound(f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def usernames(session: Session, ids: Collection[int] | None = None) -> dict[int, str]:
    """Usernames by user id: of ``ids`` (no query for none), or of every user without them."""
    if ids is not None and not ids:
        return {}
    stmt = select(User.id, User.username)
    if ids is not None:
        stmt = stmt.where(User.id.in_(ids))
    return dict(session.execute(stmt).tuples().all())


def active_ids(session: Session, names: Collection[str]) -> dict[str, int]:
    """The ids of the active users among ``names``, by username (no query for none)."""
    if not names:
        return {}
    stmt = select(User.username, User.id).where(User.username.in_(names), User.active.is_(True))
    return dict(session.execute(stmt).tuples().all())


def set_password(session: Session, username: str, password: str) -> None:
    user = get_user(session, username)
    _check(user.username, user.role, password)
    user.password_hash = _hasher.hash(password)
    session.execute(delete(AuthToken).where(AuthToken.user_id == user.id))


def set_active(session: Session, username: str, active: bool) -> None:
    user = get_user(session, username)
    user.active = active
    if not active:
        session.execute(delete(AuthToken).where(AuthToken.user_id == user.id))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (constant-ish time)."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def issue_token(session: Session, user: User, kind: str = "bearer") -> tuple[str, datetime]:
    """A new login token (``bearer`` for API clients, ``session`` for browsers) and its expiry."""
    token = new_secret()
    expires = utcnow() + TOKEN_TTL
    session.add(
        AuthToken(user_id=user.id, kind=kind, token_hash=hash_secret(token), expires_at=expires)
    )
    session.flush()
    return token, expires


def identity_for_token(
    session: Session, token: str, kinds: tuple[str, ...] = ("bearer", "session")
) -> Identity | None:
    """The user a token belongs to, if it is valid, unexpired and the user is active."""
    if not token:
        return None
    row = session.execute(
        select(AuthToken.expires_at, AuthToken.kind, User.id, User.username, User.role, User.active)
        .join(User, User.id == AuthToken.user_id)
        .where(AuthToken.token_hash == hash_secret(token))
    ).first()
    if row is None or row.kind not in kinds or not row.active:
        return None
    if aware(row.expires_at) <= utcnow():  # SQLite drops the zone
        return None
    return Identity(row.id, row.username, row.role)


def revoke_token(session: Session, token: str) -> bool:
    result = session.execute(delete(AuthToken).where(AuthToken.token_hash == hash_secret(token)))
    return bool(rowcount(result))


def create_api_key(session: Session, name: str) -> str:
    """A new API key for a server-to-server channel; the key is returned once and stored hashed."""
    if not _NAME.match(name or ""):
        raise UserError("key name must be 1-100 letters, digits or . _ @ -")
    if session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise UserExists(f"an API key named {name!r} already exists")
    key = "ak_" + new_secret()
    session.add(ApiKey(name=name, key_hash=hash_secret(key), active=True))
    session.flush()
    return key


def api_key_name(session: Session, key: str) -> str | None:
    """The channel name of an active API key, else None."""
    if not key:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(key)))
    return row.name if row is not None and row.active else None


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, name: str) -> None:
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise UserNotFound(f"no API key named {name!r}")
    row.active = False
