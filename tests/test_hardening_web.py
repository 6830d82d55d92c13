"""Security headers, CSRF on every cookie-authenticated write, who may read /metrics, and a start
that names the SQLite file it cannot write."""

from __future__ import annotations

import pytest
from api_support import PASSWORD
from fastapi.testclient import TestClient

from annae.settings import get_settings
from annae.store.db import check_sqlite_files, get_engine, init_db
from annae.web.app import create_app

ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@ON_SQLITE
def test_security_headers_on_pages_console_and_api(api):
    chat = api.client.get("/chat")
    assert chat.status_code == 200 and chat.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in chat.headers["content-security-policy"]
    assert "frame-ancestors *" in chat.headers["content-security-policy"]  # the widget frames it
    login = api.client.get("/console/login")
    assert login.headers["cache-control"] == "no-store"
    csp = login.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    for r in (chat, login, api.client.get("/healthz"), api.client.post("/api/v1/conversations")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    assert api.client.post("/api/v1/conversations").headers["cache-control"] == "no-store"


@ON_SQLITE
def test_interactions_need_csrf_with_a_cookie_session(api):
    client = api.client
    client.get("/healthz")
    csrf = client.cookies.get("annae_csrf")
    r = client.post(
        "/auth/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "annae_session=" in r.headers["set-cookie"]
    url = "/api/v1/customers/C001/interactions"
    r = client.post(url, json={"product_id": "B01"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = client.post(url, json={"product_id": "B01"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code != 403, r.text  # past the CSRF check (no such product here: 404)
    # bearer tokens are not cookies: no CSRF needed
    r = client.post(url, json={"product_id": "B01"}, headers=api.login("bob"))
    assert r.status_code != 403, r.text


@ON_SQLITE
def test_metrics_only_for_loopback_or_with_the_metrics_token(api, monkeypatch):
    assert api.client.get("/metrics").status_code == 200  # the in-process test client
    remote = TestClient(api.client.app, client=("203.0.113.9", 50000))
    r = remote.get("/metrics")
    assert r.status_code == 403 and "ANNAE_METRICS_TOKEN" in r.json()["error"]["message"]
    api.client.app.state.services.settings.metrics_token = "scrape-secret"
    try:
        assert remote.get("/metrics").status_code == 401
        r = remote.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = remote.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert r.status_code == 200 and "annae_http_requests_total" in r.text
    finally:
        api.client.app.state.services.settings.metrics_token = None


def test_sqlite_file_that_cannot_be_written_stops_the_start_with_its_name(tmp_path, monkeypatch):
    """A -shm (or -wal, or database) file the service cannot write: the start fails with a log
    line naming the file, instead of failing every turn or dying of SIGBUS without a word."""
    db = tmp_path / "annae.db"
    url = f"sqlite:///{db}"
    init_db(get_engine(url))
    get_engine(url).dispose()
    check_sqlite_files(get_engine(url))  # a healthy database passes
    (tmp_path / "annae.db-shm").mkdir()  # a -shm that cannot be opened for writing
    with pytest.raises(PermissionError, match=r"annae\.db-shm is not writable"):
        check_sqlite_files(get_engine(url))

    monkeypatch.setenv("ANNAE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANNAE_DATABASE_URL", url)
    monkeypatch.setenv("ANNAE_ENCODER", "none")
    get_settings.cache_clear()
    try:
        with pytest.raises(PermissionError, match="-shm"), TestClient(create_app(get_settings())):
            pass
    finally:
        get_settings.cache_clear()
        get_engine(url).dispose()
