"""``annae doctor``: check a deployment and say what to fix.

Each check gives ``ok``, ``warn`` or ``fail`` with what it found and, unless ok, what to do.
Nothing is changed; the command exits 1 when a check fails.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from annae.nlu.integrity import ModelIntegrityError, verify

MIN_FREE_GB = 1.0
MAX_SKEW_S = 5.0
OTHER_CONNECTIONS = 10
"""PostgreSQL connections to leave for `annae` commands, timers and psql, beyond the workers."""


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _database(engine: Engine) -> list[Check]:
    from annae.ops.backup import known_revisions, schema_revisions

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return [
            Check(
                "database",
                "fail",
                f"{engine.url.render_as_string(hide_password=True)}: {type(exc).__name__}: {str(exc)[:200]}",
                "start the database server, or fix ANNAE_DATABASE_URL",
            )
        ]
    found = [Check("database", "ok", engine.url.render_as_string(hide_password=True))]
    from alembic.script import ScriptDirectory

    from annae.store.db import MIGRATIONS

    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    current = set(schema_revisions(engine))
    unknown = current - known_revisions()
    if unknown:
        found.append(
            Check(
                "schema",
                "fail",
                f"revisions {', '.join(sorted(unknown))} are newer than this Annae",
                "upgrade Annae to the version that wrote this database",
            )
        )
    elif current != heads:
        found.append(
            Check(
                "schema",
                "fail",
                f"at {', '.join(sorted(current)) or 'nothing'}, code expects {', '.join(sorted(heads))}",
                "run `annae init` (or restart `annae serve`, which migrates first)",
            )
        )
    else:
        found.append(Check("schema", "ok", f"migrated ({', '.join(sorted(heads))})"))
    return found


def _postgres_connections(engine: Engine, workers: int) -> Check | None:
    if engine.dialect.name != "postgresql":
        return None
    from annae.store.db import DB_POOL

    try:
        with engine.connect() as conn:
            limit = int(conn.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    except Exception as exc:  # noqa: BLE001
        return Check("connections", "warn", f"could not read max_connections: {exc}")
    need = workers * DB_POOL + OTHER_CONNECTIONS
    usable = limit - reserved
    detail = f"max_connections {limit} ({usable} usable); {workers} worker(s) × pool {DB_POOL} + {OTHER_CONNECTIONS} = {need}"
    if usable < need:
        return Check(
            "connections",
            "fail",
            detail,
            f"set max_connections = {need + reserved} or more in postgresql.conf (restart PostgreSQL), or run fewer workers",
        )
    return Check("connections", "ok", detail)


def _clock(engine: Engine, redis_url: str | None) -> Check:
    """The machine's clock against the database server's (PostgreSQL) or Redis's."""
    now = datetime.now(UTC)
    reference, source = None, None
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                reference, source = conn.execute(text("SELECT now()")).scalar_one(), "PostgreSQL"
        elif redis_url:
            import redis

            secs, micros = redis.Redis.from_url(redis_url, socket_timeout=3).time()
            reference, source = datetime.fromtimestamp(secs + micros / 1e6, UTC), "Redis"
    except Exception:  # noqa: BLE001 - unreachable servers are reported by their own checks
        reference = None
    if reference is None:
        return Check(
            "clock", "ok", f"{now.isoformat(timespec='seconds')} (no server clock to compare)"
        )
    skew = abs((now - reference).total_seconds())
    detail = f"{skew:.1f} s from {source}'s clock"
    if skew > MAX_SKEW_S:
        return Check("clock", "fail", detail, "synchronise the clocks (systemd-timesyncd, chrony)")
    return Check("clock", "ok", detail)


def _redis(url: str | None, workers: int) -> Check:
    if not url:
        if workers > 1:
            return Check(
                "redis",
                "fail",
                f"not configured, with {workers} workers",
                "set ANNAE_REDIS_URL: without it a WebSocket misses events from other workers",
            )
        return Check("redis", "ok", "not configured (one worker)")
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        return Check(
            "redis", "fail", f"{type(exc).__name__}: {exc}", "start Redis, or fix ANNAE_REDIS_URL"
        )
    return Check("redis", "ok", "answers PING")


def _model(settings) -> Check:
    from annae.nlu.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir)
    live = registry.live_version()
    if live is None:
        return Check(
            "model", "fail", f"no live model in {settings.models_dir}", "run `annae train`"
        )
    path = registry.path(live)
    try:
        manifest = registry.manifest(live)
        verify(path, manifest.get("files") or {}, what=f"model {live}")
    except FileNotFoundError:
        return Check(
            "model",
            "fail",
            f"LIVE names {live}, which is missing",
            "run `annae rollback` or `annae train`",
        )
    except ModelIntegrityError as exc:
        return Check(
            "model", "fail", str(exc), "restore the models folder from a backup, or `annae train`"
        )
    if not manifest.get("files"):
        return Check(
            "model",
            "warn",
            f"{live}: saved before file hashes were kept",
            "run `annae train` to get a checked model",
        )
    if (path / "STALE.json").exists():
        return Check("model", "warn", f"{live} was trained on erased data", "run `annae retrain`")
    return Check("model", "ok", f"{live}, {len(manifest['files'])} files match their SHA-256")


def _disk(settings) -> Check:
    usage = shutil.disk_usage(settings.home)
    free = usage.free / 1e9
    detail = f"{free:.1f} GB free in {settings.home}"
    if free < MIN_FREE_GB:
        return Check(
            "disk",
            "fail" if free < MIN_FREE_GB / 4 else "warn",
            detail,
            "free space: old model versions, backups, logs",
        )
    return Check("disk", "ok", detail)


def _secrets(settings, engine: Engine, db_ok: bool) -> list[Check]:
    found = []
    key = settings.home / "privacy.key"
    if not key.exists():
        found.append(
            Check(
                "privacy key",
                "warn",
                f"{key} not created yet",
                "run `annae backup` or any privacy command once; then back it up",
            )
        )
    elif stat.S_IMODE(key.stat().st_mode) & 0o077:
        found.append(
            Check("privacy key", "fail", f"{key} is readable by others", f"chmod 600 {key}")
        )
    else:
        found.append(Check("privacy key", "ok", f"{key} (mode 600)"))
    if settings.secret_key is not None and len(settings.secret_key) < 32:
        found.append(
            Check(
                "secret key",
                "fail",
                "ANNAE_SECRET_KEY is shorter than 32 characters",
                "set a random value: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        )
    url = engine.url
    if (
        url.get_backend_name() == "postgresql"
        and not url.password
        and url.host not in (None, "localhost", "127.0.0.1", "::1")
    ):
        found.append(
            Check(
                "database password",
                "warn",
                f"no password for {url.host}",
                "use a password (or a client certificate) for a remote database",
            )
        )
    if db_ok:
        from annae.agents.users import list_users
        from annae.store.db import session_scope

        with session_scope(engine) as session:
            admins = [u for u in list_users(session) if u.role == "admin" and u.active]
        if not admins:
            found.append(
                Check(
                    "accounts",
                    "fail",
                    "no active admin account",
                    "annae user add NAME --role admin",
                )
            )
        else:
            found.append(Check("accounts", "ok", f"{len(admins)} active admin(s)"))
    return found


def run_checks(settings, *, workers: int = 1) -> list[Check]:
    """Every check, in order; nothing is changed."""
    from annae.store.db import get_engine

    engine = get_engine(settings.database)
    checks = _database(engine)
    db_ok = checks[0].status == "ok"
    if db_ok and (pg := _postgres_connections(engine, workers)) is not None:
        checks.append(pg)
    checks.append(_redis(settings.redis_url, workers))
    checks.append(_model(settings))
    checks.append(_disk(settings))
    checks.append(_clock(engine, settings.redis_url))
    checks += _secrets(settings, engine, db_ok)
    return checks


def workers_default() -> int:
    try:
        return max(1, int(os.environ.get("ANNAE_WORKERS", "1")))
    except ValueError:
        return 1


def to_json(checks: list[Check]) -> str:
    return json.dumps([c.to_dict() for c in checks], ensure_ascii=False)


__all__ = ["Check", "run_checks", "to_json", "workers_default"]
