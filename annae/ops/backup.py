"""``annae backup DIR`` and ``annae restore DIR``: the database, the models and the settings.

A backup folder holds

* ``database.sqlite`` (SQLite's online backup API: consistent while the service runs) or
  ``database.pgdump`` (``pg_dump --format=custom``),
* ``home/models/…`` (every saved model version and the ``LIVE`` pointers),
* ``home/privacy.key`` (the key of the customers' audit pseudonyms) and a copy of the erasure log,
* ``settings.json`` (the ``ANNAE_*`` settings without secrets or passwords),
* ``manifest.json``, written last: format, time, Annae version, the schema's Alembic revisions
  and the SHA-256 and size of every other file. A folder without it is an unfinished backup.

A restore checks everything before it writes anything: the manifest and every hash, the schema
(a backup from a newer Annae is refused), each model against its own hashes, and that the target
(database and ``ANNAE_HOME``) is empty. It then loads the database, copies the files, brings the
schema up to date and erases again the customers erased after the backup
(:mod:`annae.privacy.erasures`).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, inspect, make_url, text

from annae import __version__
from annae.nlu.integrity import ModelIntegrityError, file_hashes, sha256_file, verify
from annae.privacy import audit, erasures
from annae.store.db import MIGRATIONS, get_engine, init_db, session_scope, utcnow

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.pgdump"
HOME_FILES = ("privacy.key",)
SECRET_SETTINGS = ("secret_key",)


class BackupError(RuntimeError):
    """A backup that cannot be made, or a backup folder that cannot be restored as it is."""


@dataclass
class RestoreReport:
    created_at: str
    database: str
    models: list[str]
    reerased: list[str] = field(default_factory=list)


# --- helpers ----------------------------------------------------------------------------------


def _pg_env(url: str) -> tuple[dict[str, str], str]:
    """libpq environment (password out of the command line) and the database name."""
    u = make_url(url)
    given = {"PGHOST": u.host, "PGPORT": u.port, "PGUSER": u.username, "PGPASSWORD": u.password}
    env = {**os.environ, **{var: str(value) for var, value in given.items() if value is not None}}
    return env, str(u.database)


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    if shutil.which(cmd[0]) is None:
        raise BackupError(f"{what} needs {cmd[0]} (the PostgreSQL client programs) on PATH")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {cmd[0]}: {done.stderr.strip()[-500:]}")


def schema_revisions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return []
        return sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}


def public_settings(settings) -> dict:
    """The settings as JSON, secrets dropped and passwords in URLs masked."""
    data = json.loads(settings.model_dump_json())
    for name in SECRET_SETTINGS:
        data.pop(name, None)
    for name in ("database_url", "redis_url"):
        if data.get(name):
            data[name] = make_url(data[name]).render_as_string(hide_password=True)
    return data


def _copy_tree(source: Path, target: Path) -> None:
    """Copy ``source`` (files only; temporary ``.LIVE.*`` files left out) into ``target``."""
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.name.startswith(".LIVE."):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


# --- backup -----------------------------------------------------------------------------------


def _sqlite_file(url: str) -> str:
    """The file of a SQLite database URL; an in-memory database has none to copy or replace."""
    database = make_url(url).database
    if not database:
        raise BackupError(f"{url} is an in-memory SQLite database: no file to back up or restore")
    return database


def backup(folder: Path, settings) -> dict:
    """Write a backup of ``settings``' deployment into ``folder`` (new or empty); its manifest."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: back up into a new folder")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = get_engine(settings.database)
    revisions = schema_revisions(engine)
    if not revisions:
        raise BackupError("the database has no Annae schema yet: nothing to back up")
    created = utcnow()
    if engine.dialect.name == "sqlite":
        with (
            closing(sqlite3.connect(_sqlite_file(settings.database))) as source,
            closing(sqlite3.connect(folder / SQLITE_FILE)) as target,
            target,  # the copy's transaction: committed before it is closed
        ):
            source.backup(target)
        db_file = SQLITE_FILE
    elif engine.dialect.name == "postgresql":
        env, name = _pg_env(settings.database)
        cmd = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges"]
        _run([*cmd, "--file", str(folder / PG_FILE), name], env, "pg_dump")
        db_file = PG_FILE
    else:
        raise BackupError(f"cannot back up a {engine.dialect.name} database")
    home = folder / "home"
    audit.ensure_key(settings.home)  # later erasures are logged under this key's pseudonyms
    if settings.models_dir.is_dir():
        _copy_tree(settings.models_dir, home / "models")
    for name in HOME_FILES:
        if (settings.home / name).is_file():
            home.mkdir(parents=True, exist_ok=True)
            shutil.copy2(settings.home / name, home / name)
    log = erasures.log_path(settings)
    if log.is_file():
        shutil.copy2(log, folder / "erasures.jsonl")
    (folder / "settings.json").write_text(json.dumps(public_settings(settings), indent=2))
    manifest = {
        "format": FORMAT,
        "created_at": created.isoformat(),
        "annae_version": __version__,
        "database": {"dialect": engine.dialect.name, "file": db_file, "revisions": revisions},
        "files": {
            name: {"sha256": digest, "size": (folder / name).stat().st_size}
            for name, digest in file_hashes(folder, skip=(MANIFEST,)).items()
        },
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / MANIFEST)
    return manifest


# --- restore ----------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict:
    """The backup's manifest, once every check that needs no target has passed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BackupError(f"{folder}: no such folder")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{folder} has no {MANIFEST}: not a backup, or one that did not finish"
        ) from None
    except ValueError as exc:
        raise BackupError(f"{folder / MANIFEST} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(
            f"{folder}: backup format {manifest.get('format') if isinstance(manifest, dict) else '?'}"
            f" is not {FORMAT}: made by another Annae version"
        )
    unknown = sorted(set(manifest["database"]["revisions"]) - known_revisions())
    if unknown:
        raise BackupError(
            f"the backup's database schema ({', '.join(unknown)}) is newer than this Annae "
            f"({__version__}; backup made by {manifest.get('annae_version')}): upgrade Annae first"
        )
    problems = []
    for name, info in sorted(manifest["files"].items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != info["size"]:
            problems.append(f"{name} has {path.stat().st_size} bytes, expected {info['size']}")
        elif sha256_file(path) != info["sha256"]:
            problems.append(f"{name} has a different SHA-256")
    if problems:
        raise BackupError(
            f"{folder} is damaged (truncated or changed): {'; '.join(problems[:10])}"
            + (f" and {len(problems) - 10} more" if len(problems) > 10 else "")
        )
    if manifest["database"]["file"] not in manifest["files"]:
        raise BackupError(f"{folder}: the manifest lists no database file")
    models = folder / "home" / "models"
    for version in sorted(models.glob("v*")) if models.is_dir() else []:
        try:
            model = json.loads((version / "manifest.json").read_text())
            verify(version, model.get("files") or {}, what=f"backed-up model {version.name}")
        except (OSError, ValueError) as exc:
            raise BackupError(f"{version}: unreadable model manifest ({exc})") from exc
        except ModelIntegrityError as exc:
            raise BackupError(str(exc)) from exc
    return manifest


def _check_empty_target(settings, engine: Engine) -> None:
    with engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
    if tables:
        raise BackupError(
            f"the target database already has tables ({', '.join(sorted(tables)[:5])}…): "
            "restore into an empty database; nothing was changed"
        )
    models = settings.models_dir
    if models.is_dir() and any(models.iterdir()):
        raise BackupError(
            f"{models} is not empty: restore into an empty ANNAE_HOME; nothing was changed"
        )


def restore(folder: Path, settings, *, erasure_logs: Sequence[Path] = ()) -> RestoreReport:
    """Restore the backup in ``folder`` into the (empty) deployment of ``settings``."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    dialect = manifest["database"]["dialect"]
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = get_engine(settings.database)
    if engine.dialect.name != dialect:
        raise BackupError(
            f"the backup holds a {dialect} database but ANNAE_DATABASE_URL is "
            f"{engine.dialect.name}: restore into the same kind of database"
        )
    _check_empty_target(settings, engine)
    key = folder / "home" / "privacy.key"
    if key.is_file() and (settings.home / "privacy.key").is_file():
        if sha256_file(key) != sha256_file(settings.home / "privacy.key"):
            raise BackupError(
                f"{settings.home / 'privacy.key'} differs from the backup's: restore into an "
                "empty ANNAE_HOME; nothing was changed"
            )
    logs = [folder / "erasures.jsonl", erasures.log_path(settings), *erasure_logs]
    pending = erasures.read(logs)  # an unreadable log stops the restore before any write

    db_file = folder / manifest["database"]["file"]
    if dialect == "sqlite":
        engine.dispose()
        target = Path(_sqlite_file(settings.database))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        tmp = target.with_name(f".{target.name}.restoring")
        shutil.copyfile(db_file, tmp)
        os.replace(tmp, target)
    else:
        env, name = _pg_env(settings.database)
        engine.dispose()
        flags = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        _run(["pg_restore", *flags, "--dbname", name, str(db_file)], env, "pg_restore")
    if (folder / "home").is_dir():
        _copy_tree(folder / "home", settings.home)
    if (settings.home / "privacy.key").is_file():
        os.chmod(settings.home / "privacy.key", 0o600)
    init_db(engine)  # a backup from an older Annae gets the newer schema

    target_log = erasures.log_path(settings)
    recorded = set(erasures.read([target_log]))
    for item in pending:  # the target's log learns the backup's erasures too
        if item not in recorded:
            erasures.append(target_log, item.ref, item.at)
    created = datetime.fromisoformat(manifest["created_at"])
    report = RestoreReport(
        created_at=manifest["created_at"],
        database=dialect,
        models=sorted(p.name for p in settings.models_dir.glob("v*")),
    )
    later = [e for e in pending if e.at > created]
    if later:
        from annae.privacy.rights import RightsError, erase_customer

        with session_scope(engine) as session:
            held = erasures.customers_by_ref(session, settings.home)
        for item in later:
            customer = held.get(item.ref)
            if customer is None:
                continue
            try:
                erase_customer(engine, customer, actor="restore", settings=settings)
            except RightsError:
                continue
            report.reerased.append(item.ref)
    return report


__all__ = ["BackupError", "RestoreReport", "backup", "read_manifest", "restore"]
