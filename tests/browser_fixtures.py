"""A real Annae service (demo KB trained, staff accounts) and Debian's chromium for the browser tests."""

from __future__ import annotations

import html
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from annae.agents.users import create_user
from annae.kb.demo import demo_path
from annae.kb.entries import load_kb
from annae.kb.importers import parse_file
from annae.kb.training import train_from_db
from annae.settings import Settings
from annae.store.db import get_engine, init_db, session_scope

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
PG_ADMIN_URL = os.environ.get(
    "ANNAE_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    """An ``annae`` service process on a free port, with one agent and one admin account."""

    url: str
    home: Path
    database: str
    agent: tuple[str, str]
    admin: tuple[str, str]
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _pg_database() -> tuple[str, callable]:
    """A throw-away PostgreSQL database (URL, dropper)."""
    name = f"annae_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def _env(home: Path, database: str, encoder: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANNAE_HOME=str(home),
        ANNAE_DATABASE_URL=database,
        ANNAE_ENCODER=encoder,
        ANNAE_OOS_THRESHOLD="off",  # the out-of-scope reply: on where a test turns it on
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    env.pop("ANNAE_REDIS_URL", None)
    return env


def prepare_home(
    home: Path, database: str, encoder: str, models: Path | None = None
) -> tuple[tuple[str, str], tuple[str, str]]:
    """Migrate, load and train the demo KB, create the staff accounts; returns (agent, admin) logins.

    With ``models`` (a models folder trained on the same demo KB) the trained versions are copied
    instead of training again: the same KB loaded into a fresh database gets the same entry ids.
    """
    from annae.nlu.registry import ModelRegistry

    engine = init_db(get_engine(database))
    with session_scope(engine) as session:
        load_kb(session, parse_file(demo_path()), author="test", summary="demo")
    settings = Settings(home=home, database_url=database, encoder=encoder)
    if models is not None:
        shutil.copytree(models, settings.models_dir)
    else:
        train_from_db(ModelRegistry(settings.models_dir), engine, settings=settings, author="test")
    agent = ("mina", secrets.token_urlsafe(12))
    admin = ("boss", secrets.token_urlsafe(12))
    create_user(engine, agent[0], "agent", agent[1])
    create_user(engine, admin[0], "admin", admin[1])
    engine.dispose()
    return agent, admin


def start_server(
    home: Path,
    database: str,
    encoder: str,
    models: Path | None = None,
    env: dict[str, str] | None = None,
) -> LiveServer:
    """Prepare ``home`` and run the service (with extra ``env``) in a child process until ready."""
    agent, admin = prepare_home(home, database, encoder, models)
    port = free_port()
    log = open(home / "server.log", "wb")  # noqa: SIM115 (closed with the process)
    cmd = [sys.executable, "-m", "uvicorn", "annae.web.app:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(
        cmd,
        env={**_env(home, database, encoder), **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(home / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server not ready: {(home / 'server.log').read_text()[-3000:]}")
        time.sleep(0.3)
    return LiveServer(url, home, database, agent, admin, proc)


ENCODER = os.environ.get("ANNAE_TEST_ENCODER", "bundled")


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory) -> Path:
    """The demo KB trained once per test session (a models folder to copy into each server's home)."""
    home = tmp_path_factory.mktemp("annae-train")
    database = f"sqlite:///{home / 'annae.db'}"
    prepare_home(home, database, ENCODER)
    get_engine(database).dispose()
    return home / "models"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live_server(request, tmp_path_factory, demo_models) -> Iterator[LiveServer]:
    """The service on SQLite, then on PostgreSQL (demo KB trained)."""
    home = tmp_path_factory.mktemp(f"annae-{request.param}")
    drop = None
    if request.param == "sqlite":
        database = f"sqlite:///{home / 'annae.db'}"
    else:
        database, drop = _pg_database()
    server = start_server(home, database, ENCODER, demo_models)
    yield server
    server.stop()
    if drop:
        drop()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory, demo_models) -> Iterator[LiveServer]:
    """One service on SQLite, for the checks that do not depend on the database."""
    home = tmp_path_factory.mktemp("annae-ui")
    server = start_server(home, f"sqlite:///{home / 'annae.db'}", ENCODER, demo_models)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory, demo_models) -> Iterator[LiveServer]:
    """A service that allows each conversation only 3 messages an hour (to meet the rate limit)."""
    home = tmp_path_factory.mktemp("annae-strict")
    database = f"sqlite:///{home / 'annae.db'}"
    env = {"ANNAE_RATE_CONVERSATION": "3/3600"}
    server = start_server(home, database, ENCODER, demo_models, env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shop_site(tmp_path) -> Iterator[callable]:
    """A static 'shop' on another origin; call it with the Annae URL to get a page embedding the widget."""
    root = tmp_path / "shop"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def page(annae_url: str, lang: str = "en", attrs: dict[str, str] | None = None) -> str:
        """Write the page (``attrs``: more data-* attributes on the widget's script tag)."""
        extra = "".join(
            f" data-{name}='{html.escape(value, quote=True)}'"
            for name, value in (attrs or {}).items()
        )
        (root / "index.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Gift shop</title></head><body style='font-family:sans-serif;margin:40px'>"
            "<h1>Annae Gift Shop</h1><p>Handmade presents, wrapped with care.</p>"
            f"<script src='{annae_url}/widget.js' data-annae-url='{annae_url}' data-lang='{lang}'"
            f"{extra}></script>"
            "</body></html>",
            encoding="utf-8",
        )
        return f"http://127.0.0.1:{server.server_address[1]}/index.html"

    yield page
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


def answered_entry(server: LiveServer, question: str) -> int:
    """The entry id the running service answers ``question`` with (asked in a new conversation)."""
    conv = httpx.post(server.url + "/api/v1/conversations", json={"language": "en"}).json()
    reply = httpx.post(
        f"{server.url}/api/v1/conversations/{conv['id']}/messages",
        json={"text": question},
        headers={"Authorization": f"Bearer {conv['token']}"},
    ).json()
    assert reply["type"] == "answer", reply
    return reply["entry_id"]


def link_two_products(server: LiveServer, question: str, customer: str) -> int:
    """Link "Express delivery" (EX1) and "Gift wrap" (GW1) to the entry that answers ``question``
    and give ``customer`` marketing consent; returns the entry id."""
    from annae.privacy import consent
    from annae.recommend.store import link_entry, upsert_product

    entry_id = answered_entry(server, question)
    engine = get_engine(server.database)
    with session_scope(engine) as s:
        upsert_product(s, "GW1", name="Gift wrap", price=2.5)
        upsert_product(s, "EX1", name="Express delivery", price=4.0)
        link_entry(s, entry_id, ["EX1", "GW1"])
        consent.grant(s, customer, "marketing", text_version="test-v1")
    return entry_id


def login(page, server: LiveServer, who: tuple[str, str], target: str = "/console") -> None:
    """Open a console page, get sent to the sign-in form, sign in, land back on ``target``."""
    from playwright.sync_api import expect

    page.goto(server.url + target)
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.fill("#username", who[0])
    page.fill("#password", who[1])
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(server.url + target)


def bearer(server: LiveServer, who: tuple[str, str]) -> dict[str, str]:
    """An ``Authorization`` header for ``who`` (username, password) through the login API."""
    r = httpx.post(server.url + "/api/v1/auth/login", json={"username": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def screenshot(page, name: str, *, full_page: bool = False) -> None:
    """Save docs/screenshots/NAME.png when ANNAE_SCREENSHOTS=1 (the README and docs/ui.md show them)."""
    if os.environ.get("ANNAE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
