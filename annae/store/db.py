"""Engine, sessions and schema upgrades."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast, overload

from sqlalchemy import CursorResult, Engine, MetaData, Result, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched (its result is a ``CursorResult``)."""
    return cast("CursorResult[Any]", result).rowcount or 0


def utcnow() -> datetime:
    """Timezone-aware now, the one clock every table uses."""
    return datetime.now(UTC)


@overload
def aware(dt: datetime) -> datetime: ...
@overload
def aware(dt: None) -> None: ...
@overload
def aware(dt: datetime | None) -> datetime | None: ...


def aware(dt: datetime | None) -> datetime | None:
    """A stored time as aware UTC: SQLite returns naive datetimes (every stored time is UTC),
    PostgreSQL returns them in the session's time zone."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    """A stored time as ISO 8601 in UTC (``None`` stays ``None``)."""
    dt = aware(dt)
    return dt.isoformat() if dt else None


MIGRATIONS = Path(__file__).parent / "migrations"


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL (default: the settings' database, read each call)."""
    if url is None:
        from annae.settings import get_settings

        settings = get_settings()
        settings.home.mkdir(parents=True, exist_ok=True)
        url = settings.database
    return _engine_for(url)


# PostgreSQL connections one server worker keeps open. Requests that find them all busy wait for
# one (up to 30 s) instead of opening more: a new connection costs more CPU than the request.
DB_POOL = 20


def service_db(url: str) -> Engine:
    """A server process's database engine: for PostgreSQL its own pool of ``DB_POOL``
    connections, for SQLite the shared engine."""
    shared = get_engine(url)
    if shared.dialect.name != "postgresql":
        return shared
    engine = create_engine(shared.url, pool_size=DB_POOL, max_overflow=0, pool_timeout=30)
    _ping_when_idle(engine)
    return engine


# A pooled connection back in the pool less than this many seconds ago is handed out without a
# ping. Under load that ping was one more round trip per request (about 0.3 ms of CPU per customer
# turn in bench_profile); a connection idle for longer is pinged as before. One that a database
# restart broke while it was busy fails its request with 503 + Retry-After (nothing was written)
# and SQLAlchemy then replaces every connection of the pool.
PING_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping`` for connections that sat idle in the pool (see :data:`PING_IDLE_S`)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_IDLE_S:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool retries the checkout with a new connection
            raise sa_exc.DisconnectionError("the pooled connection is gone") from exc


@lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if not url.startswith("sqlite"):
        return create_engine(url, future=True, pool_pre_ping=True)
    engine = create_engine(
        url, future=True, connect_args={"check_same_thread": False, "timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def check_sqlite_files(engine: Engine) -> None:
    """Raise ``PermissionError`` naming the file when a SQLite database could not be written.

    SQLite in WAL mode writes the database, ``-wal`` and ``-shm`` files beside it; one it cannot
    write makes every turn fail, and a broken ``-shm`` mapping can kill the process (SIGBUS) with
    no log line. The service checks at start so the operator reads which file and why.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database).resolve()
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"SQLite database folder {path.parent} is not writable")
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if not name.exists() and not name.is_symlink():
            continue
        try:
            with open(name, "ab"):
                pass
        except OSError as exc:
            raise PermissionError(
                f"SQLite file {name} is not writable ({exc.strerror or exc}): fix its owner and "
                "permissions (the service writes the database, -wal and -shm files)"
            ) from exc


@lru_cache(maxsize=8)
def _sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    session = _sessionmaker(engine or get_engine())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def init_db(engine: Engine | None = None) -> Engine:
    """Bring the schema up to date (Alembic ``upgrade heads``); safe to call often."""
    from alembic import command

    engine = engine or get_engine()
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    return engine
