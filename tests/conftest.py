"""Shared fixtures: every database test runs on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import os
import uuid
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


def _pg_database() -> tuple[str, callable]:
    """Create a throw-away database on the local PostgreSQL; returns its URL and a dropper."""
    name = f"annae_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        get_engine(url).dispose()
        _engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, migrated database URL: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'annae.db'}"
        drop = None
    else:
        url, drop = _pg_database()
    init_db(get_engine(url))
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
