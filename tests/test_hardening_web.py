"""Security headers, CSRF on every cookie-authenticated write, and who may read /metrics."""

from __future__ import annotations

import pytest
from api_support import PASSWORD
from fastapi.testclient import TestClient

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


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
