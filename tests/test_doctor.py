"""`annae doctor`: what it finds on a healthy deployment and on broken ones."""

from __future__ import annotations

import json

import pytest
from api_support import make_api
from sqlalchemy import text
from typer.testing import CliRunner

from annae.cli import app
from annae.privacy.audit import ensure_key
from annae.settings import get_settings
from annae.store.db import get_engine

runner = CliRunner()


def doctor(*args: str) -> tuple[int, dict]:
    get_settings.cache_clear()
    out = runner.invoke(app, ["doctor", "--json", *args])
    assert out.exit_code in (0, 1), out.output
    return out.exit_code, {c["name"]: c for c in json.loads(out.output)}


def test_a_healthy_deployment_and_what_breaks_it(annae_home, db_url, models, monkeypatch):
    make_api(annae_home, db_url, models, monkeypatch)
    ensure_key(annae_home)
    code, checks = doctor()
    assert code == 0, checks
    for name in (
        "database",
        "schema",
        "redis",
        "model",
        "disk",
        "clock",
        "privacy key",
        "accounts",
    ):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["model"]["detail"].startswith("v1, ")
    postgres = db_url.startswith("postgresql")
    assert ("connections" in checks) is postgres
    if postgres:
        assert "PostgreSQL's clock" in checks["clock"]["detail"]
        code, checks = doctor("--workers", "500")
        assert code == 1 and checks["connections"]["status"] == "fail"
        assert "set max_connections = " in checks["connections"]["fix"]

    code, checks = doctor("--workers", "2")
    assert code == 1 and "ANNAE_REDIS_URL" in checks["redis"]["fix"]
    monkeypatch.setenv("ANNAE_REDIS_URL", "redis://127.0.0.1:6379/0")
    code, checks = doctor("--workers", "2")
    assert checks["redis"]["status"] == "ok" and code == 0
    monkeypatch.setenv("ANNAE_REDIS_URL", "redis://127.0.0.1:1/0")
    code, checks = doctor()
    assert code == 1 and checks["redis"]["status"] == "fail"
    monkeypatch.delenv("ANNAE_REDIS_URL")

    (annae_home / "models" / "v1" / "answers.json").write_text("{}")
    (annae_home / "privacy.key").chmod(0o644)
    with get_engine(db_url).begin() as conn:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num LIKE '0005%'"))
    code, checks = doctor()
    assert code == 1
    assert "answers.json has SHA-256" in checks["model"]["detail"]
    assert checks["privacy key"]["fix"].startswith("chmod 600")
    assert checks["schema"]["status"] == "fail" and "annae init" in checks["schema"]["fix"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_unreachable_database_is_the_first_thing_to_fix(annae_home, monkeypatch, db_url):
    monkeypatch.setenv("ANNAE_DATABASE_URL", "postgresql://annae@127.0.0.1:1/annae")
    code, checks = doctor()
    assert code == 1
    assert (
        checks["database"]["status"] == "fail" and "start the database" in checks["database"]["fix"]
    )
    assert "schema" not in checks and checks["model"]["status"] == "fail"
