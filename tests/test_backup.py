"""`annae backup` / `annae restore` on SQLite and PostgreSQL: what comes back, what is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from api_support import make_api
from conftest import _pg_database
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from annae.agents.users import create_api_key
from annae.cli import app
from annae.nlu.integrity import file_hashes, sha256_file
from annae.privacy import audit
from annae.privacy.rights import erase_customer
from annae.settings import get_settings
from annae.store.db import get_engine, session_scope
from annae.store.tables.privacy import AuditEvent
from annae.store.tables.service import Conversation, Message

runner = CliRunner()


def _rows(url: str) -> dict:
    """Conversations, messages and the audit log, column by column."""

    def plain(obj) -> dict:
        return {c.key: getattr(obj, c.key) for c in inspect(type(obj)).column_attrs}

    with session_scope(get_engine(url)) as s:
        return {
            "conversations": [
                plain(c) for c in s.scalars(select(Conversation).order_by(Conversation.id))
            ],
            "messages": [plain(m) for m in s.scalars(select(Message).order_by(Message.id))],
            "audit": [plain(a) for a in s.scalars(select(AuditEvent).order_by(AuditEvent.id))],
        }


def _target(tmp_path: Path, dialect: str, monkeypatch):
    home = tmp_path / "restored-home"
    if dialect == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'restored.db'}", None
    else:
        url, drop = _pg_database()
    monkeypatch.setenv("ANNAE_HOME", str(home))
    monkeypatch.setenv("ANNAE_DATABASE_URL", url)
    get_settings.cache_clear()
    return home, url, drop


def _untouched(home: Path, url: str) -> None:
    with get_engine(url).connect() as conn:
        assert inspect(conn).get_table_names() == []
    assert not (home / "models").exists() and not (home / "privacy.key").exists()


def _broken_copy(backup: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(backup, copy)
    return copy


def _rewrite_manifest(folder: Path, change) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_backup_and_restore_bring_back_everything_but_later_erasures(
    annae_home, db_url, models, monkeypatch, tmp_path
):
    dialect = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    api = make_api(annae_home, db_url, models, monkeypatch)
    with api.client as client:
        with session_scope(get_engine(db_url)) as s:
            key = create_api_key(s, "shop")
        convs = {}
        for customer, question in (
            ("keep-1", "How long does delivery take?"),
            ("gone-2", "환불 언제 돼요?"),
        ):
            r = client.post(
                "/api/v1/conversations", json={"customer_id": customer}, headers={"X-API-Key": key}
            )
            assert r.status_code == 201, r.text
            convs[customer] = r.json()["id"]
            api.say(r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}, question)
    with session_scope(get_engine(db_url)) as s:
        audit.record(s, "admin", "kb.import", "faq.csv", {"added": 3})
    before = _rows(db_url)
    assert len(before["messages"]) >= 4 and before["audit"]

    folder = tmp_path / "backup"
    out = runner.invoke(app, ["backup", str(folder)])
    assert out.exit_code == 0, out.output
    assert f"backup of the {dialect} database" in out.output
    settings_file = json.loads((folder / "settings.json").read_text())
    assert "secret_key" not in settings_file
    out = runner.invoke(app, ["backup", str(folder)])
    assert out.exit_code == 1 and "not empty" in out.output

    # erased after the backup: a restore must not bring this customer back
    erase_customer(get_engine(db_url), "gone-2", actor="test", settings=get_settings())
    old_home, old_models = annae_home, file_hashes(annae_home / "models")

    home, url, drop = _target(tmp_path, dialect, monkeypatch)
    try:
        # bad backups: a clear error, and nothing written into the target
        bad = _broken_copy(folder, tmp_path, "truncated")
        db_file = next(bad.glob("database.*"))
        db_file.write_bytes(db_file.read_bytes()[: db_file.stat().st_size // 2])
        bad_settings = _broken_copy(folder, tmp_path, "wrong-hash")
        text = (bad_settings / "settings.json").read_text()
        (bad_settings / "settings.json").write_text(text.replace('"top_k": 3', '"top_k": 4'))
        newer = _broken_copy(folder, tmp_path, "newer")
        _rewrite_manifest(newer, lambda m: m["database"]["revisions"].append("0099_future"))
        tampered = _broken_copy(folder, tmp_path, "tampered-model")
        answers = Path("home/models/v1/answers.json")
        (tampered / answers).write_text((tampered / answers).read_text().replace("business", "b."))

        def fix_hash(m: dict) -> None:  # a consistent backup manifest around a changed model
            m["files"][answers.as_posix()] = {
                "sha256": sha256_file(tampered / answers),
                "size": (tampered / answers).stat().st_size,
            }

        _rewrite_manifest(tampered, fix_hash)
        unfinished = _broken_copy(folder, tmp_path, "unfinished")
        (unfinished / "manifest.json").unlink()
        for broken, message in (
            (bad, "damaged (truncated or changed)"),
            (bad_settings, "settings.json has a different SHA-256"),
            (newer, "0099_future) is newer than this Annae"),
            (tampered, "answers.json has SHA-256"),
            (unfinished, "not a backup, or one that did not finish"),
        ):
            out = runner.invoke(app, ["restore", str(broken)])
            assert out.exit_code == 1, out.output
            assert message in " ".join(out.output.split()), out.output
            _untouched(home, url)

        out = runner.invoke(
            app, ["restore", str(folder), "--erasure-log", str(old_home / "erasures.jsonl")]
        )
        assert out.exit_code == 0, out.output
        assert "1 customer(s) erased after the backup erased again" in " ".join(out.output.split())
        after = _rows(url)
        kept = [m for m in before["messages"] if m["conversation_id"] == convs["keep-1"]]
        assert [m for m in after["messages"] if m["conversation_id"] == convs["keep-1"]] == kept
        assert [c["id"] for c in after["conversations"]] == [convs["keep-1"]]
        assert not [m for m in after["messages"] if m["conversation_id"] == convs["gone-2"]]
        # the audit log: every event of the backup, then the re-applied erasure
        assert after["audit"][: len(before["audit"])] == before["audit"]
        assert [(a["actor"], a["action"]) for a in after["audit"][len(before["audit"]) :]] == [
            ("restore", "privacy.erase")
        ]
        assert file_hashes(home / "models") == old_models
        assert (home / "models" / "LIVE").read_text() == "v1"
        assert sha256_file(home / "privacy.key") == sha256_file(old_home / "privacy.key")

        out = runner.invoke(app, ["restore", str(folder)])
        assert out.exit_code == 1 and "already has tables" in " ".join(out.output.split())
    finally:
        get_engine(url).dispose()
        if drop:
            drop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_backup_refuses_a_database_without_schema(tmp_path, monkeypatch, db_url):
    monkeypatch.setenv("ANNAE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANNAE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    out = runner.invoke(app, ["backup", str(tmp_path / "b")])
    get_settings.cache_clear()
    assert out.exit_code == 1 and "no Annae schema" in out.output
