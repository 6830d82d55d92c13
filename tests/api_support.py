"""Helpers for the service API tests: a model trained once on the demo KB, and a ready app."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi.testclient import TestClient

from annae.agents.users import add_user, hash_password
from annae.kb.demo import demo_path
from annae.kb.importers import import_kb
from annae.kb.training import train_from_db
from annae.settings import Settings, get_settings
from annae.store.db import get_engine, init_db, session_scope

PASSWORD = "correct-horse-battery"


_TRAINED: dict[str, Path] = {}


def handed_off(post: Callable[[dict], dict], text: str) -> dict:
    """The reply to a customer's ``text`` that no entry answers, followed, where the bot asks to
    clarify instead, by the customer asking for a person (none of the options fits): the hand-off
    of such a question whatever side of the clarify threshold its options fall (it moves a little
    with a machine's int8 kernels). ``post(body)`` sends one message body, returns the reply."""
    reply = post({"text": text})
    if reply["type"] == "clarify":
        reply = post({"handoff": True})
    return reply


@lru_cache(maxsize=1)
def password_hash() -> str:
    """PASSWORD's Argon2id hash, computed once per session (each hash costs ~0.1 s of CPU by
    design; logins still verify against it)."""
    return hash_password(PASSWORD)


def demo_model(tmp_path_factory) -> Path:
    """The demo model, trained once per test session and shared by the API test modules."""
    if "demo" not in _TRAINED:
        _TRAINED["demo"] = train_demo_model(tmp_path_factory.mktemp("demo-model"))
    return _TRAINED["demo"]


def train_demo_model(folder: Path) -> Path:
    """Train on the demo KB (lexical encoder, fast) in ``folder``; returns its models folder."""
    from annae.nlu.registry import ModelRegistry

    # lexical features only (fast); a lower precision target so that demo questions get answers
    settings = Settings(
        home=folder,
        encoder="none",
        target_precision=0.8,
        database_url=f"sqlite:///{folder / 'train.db'}",
    )
    engine = init_db(get_engine(settings.database))
    import_kb(engine, demo_path(), author="test")
    train_from_db(ModelRegistry(settings.models_dir), engine, settings=settings, author="test")
    get_engine(settings.database).dispose()
    return settings.models_dir


@dataclass
class Api:
    """A running app with the demo KB, a trained model, an agent and an admin."""

    client: TestClient
    home: Path
    db_url: str

    def customer(self, **body) -> tuple[str, dict]:
        r = self.client.post("/api/v1/conversations", json=body or None)
        assert r.status_code == 201, r.text
        return r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}

    def say(self, conv_id: str, headers: dict, text: str) -> dict:
        r = self.client.post(
            f"/api/v1/conversations/{conv_id}/messages", json={"text": text}, headers=headers
        )
        assert r.status_code == 200, r.text
        return r.json()

    def login(self, username: str) -> dict:
        r = self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def transcript(self, conv_id: str, headers: dict) -> list[dict]:
        r = self.client.get(f"/api/v1/conversations/{conv_id}/messages", headers=headers)
        assert r.status_code == 200, r.text
        return r.json()["messages"]


def make_api(home: Path, db_url: str, models: Path | None, monkeypatch, **env) -> Api:
    """Load the demo KB into the test's fresh database, install ``models`` and build the app."""
    monkeypatch.setenv("ANNAE_ENCODER", "none")
    monkeypatch.setenv(
        "ANNAE_TARGET_PRECISION", "0.8"
    )  # as the model was trained (retrain uses it)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    engine = get_engine(db_url)
    import_kb(engine, demo_path(), author="test")
    if models is not None:
        shutil.copytree(models, home / "models")
    with session_scope(engine) as session:  # three accounts, one hash computed once
        for name, role in (("alice", "agent"), ("bob", "agent"), ("root", "admin")):
            add_user(session, name, role, PASSWORD, password_hash=password_hash())
    from annae.web.app import create_app

    return Api(TestClient(create_app(get_settings())), home, db_url)
