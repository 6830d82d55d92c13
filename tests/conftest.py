"""Shared fixtures: every database test runs on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_fixtures import (  # noqa: F401  (browser fixtures, shared by every browser test module)
    browser,
    demo_models,
    live_server,
    shop_site,
    sqlite_server,
    strict_server,
)
from sqlalchemy import create_engine, text

from annae.settings import get_settings
from annae.store.db import _engine_for, get_engine, init_db

PG_ADMIN_URL = os.environ.get(
    "ANNAE_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

# --- every secret the suite makes, and every log line Annae writes (test_zz_suite_log_secrets) ---
LEDGER_DIR = Path(__file__).resolve().parent / "ledger"
sys.path.insert(0, str(LEDGER_DIR))
import secret_ledger  # noqa: E402

LOGGED = ("annae", "uvicorn")


def pytest_configure(config) -> None:
    # a ledger given from outside (`make test`: the parallel run and the check after it share one;
    # pytest-xdist's workers inherit their controller's; a suite started by a suite keeps the
    # outer one) is kept; otherwise this session makes its own and removes it at the end
    if not os.environ.get(secret_ledger.ENV):
        folder = Path(tempfile.mkdtemp(prefix="annae-ledger-"))
        config._annae_ledger_dir = folder
        os.environ[secret_ledger.ENV] = str(folder / "secrets.txt")
    ledger = Path(os.environ[secret_ledger.ENV])
    ledger.parent.mkdir(parents=True, exist_ok=True)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if str(LEDGER_DIR) not in paths:  # child processes record their secrets (sitecustomize)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(LEDGER_DIR), *paths) if p)
    secret_ledger.install(str(ledger))
    handler = logging.FileHandler(ledger.parent / "in-process.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    config._annae_log_handler = handler


def pytest_unconfigure(config) -> None:
    folder = getattr(config, "_annae_ledger_dir", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(config, items) -> None:
    """The whole-suite log check runs after everything else.

    Tests marked ``alone`` (time targets that assume the machine to themselves, and that log
    check) are left out of a pytest-xdist worker's run: `make test` runs them in a plain pytest
    after the parallel run (the log check on the same ledger, scanning that run's temporary
    folder: ANNAE_TEST_SUITE_TEMP)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        alone = [i for i in items if i.get_closest_marker("alone")]
        if alone:
            items[:] = [i for i in items if i not in alone]
            config.hook.pytest_deselected(items=alone)
    last = [i for i in items if i.path.name == "test_zz_suite_log_secrets.py"]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture(autouse=True)
def _log_annae_lines(request) -> None:
    """Annae's own log lines (INFO and up) of in-process tests go to the ledger's log file too
    (re-attached after a test that reconfigures logging)."""
    handler = getattr(request.config, "_annae_log_handler", None)
    if handler is None:
        return
    for name in LOGGED:
        logger = logging.getLogger(name)
        if handler not in logger.handlers:
            logger.addHandler(handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def _pg_database(template: str | None = None) -> tuple[str, Callable[[], None]]:
    """Create a throw-away database on the local PostgreSQL (a copy of ``template`` if given);
    returns its URL and a dropper."""
    name = f"annae_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        copy = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        get_engine(url).dispose()
        _engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


class Migrated:
    """One migrated database per backend, made once (:func:`migrated`)."""

    def __init__(self, folder: Path) -> None:
        url = f"sqlite:///{folder / 'annae.db'}"
        init_db(get_engine(url))
        get_engine(url).dispose()
        self.sqlite = str(folder / "annae.db")
        self._postgres: str | None = None
        self._drop: Callable[[], None] | None = None

    def postgres(self) -> str:
        """The PostgreSQL template database's name, made on first use."""
        if self._postgres is None:
            url, self._drop = _pg_database()
            init_db(get_engine(url))
            get_engine(url).dispose()  # a template must have no connections to be copied
            self._postgres = url.rsplit("/", 1)[1]
        return self._postgres

    def drop(self) -> None:
        if self._drop is not None:
            self._drop()


@pytest.fixture(scope="session")
def migrated(tmp_path_factory) -> Iterator[Migrated]:
    """Each test's database is a copy of one migrated once per session (a file copy for SQLite,
    ``CREATE DATABASE … TEMPLATE`` for PostgreSQL) instead of running every migration again."""
    made = Migrated(tmp_path_factory.mktemp("migrated"))
    yield made
    made.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, migrated) -> Iterator[str]:
    """A fresh, migrated database URL: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        shutil.copyfile(migrated.sqlite, tmp_path / "annae.db")
        url = f"sqlite:///{tmp_path / 'annae.db'}"
        drop = None
    else:
        url, drop = _pg_database(template=migrated.postgres())
    init_db(get_engine(url))  # already at head: checks it, as every command does
    yield url
    if drop:
        drop()
    else:
        get_engine(url).dispose()


@pytest.fixture
def engine(db_url):
    return get_engine(db_url)


@pytest.fixture
def annae_home(tmp_path, monkeypatch, db_url) -> Path:
    """ANNAE_HOME in a temporary folder, pointing at the fresh database."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ANNAE_HOME", str(home))
    monkeypatch.setenv("ANNAE_DATABASE_URL", db_url)
    monkeypatch.setenv("ANNAE_ENCODER", os.environ.get("ANNAE_TEST_ENCODER", "bundled"))
    # tests use off-topic questions as the bot's "unsure → hand-off" case; the out-of-scope
    # reply (on by default) is tested where a test turns it on
    monkeypatch.setenv("ANNAE_OOS_THRESHOLD", "off")
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Path:
    """The demo knowledge base's model (lexical features), trained once per test session."""
    from api_support import demo_model

    return demo_model(tmp_path_factory)


@pytest.fixture
def api(annae_home, db_url, models, monkeypatch):
    """The service app on the test's fresh database with the demo KB, model and accounts."""
    from api_support import make_api

    api = make_api(annae_home, db_url, models, monkeypatch)
    with api.client:
        yield api


@pytest.fixture(scope="session")
def datasets() -> Path:
    if not DATASETS.exists():
        pytest.fail(f"shared datasets not found at {DATASETS}")
    return DATASETS
