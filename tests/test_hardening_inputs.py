"""Bad input is a 4xx, never a 500; a database that is down is a 503 (HTTP) or 1013 (WebSocket)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select
from starlette.websockets import WebSocketDisconnect

from annae.store.db import get_engine, session_scope
from annae.store.tables.service import Message
from annae.web.inputs import DB_INT_MAX


def _count(db_url: str) -> int:
    with session_scope(get_engine(db_url)) as s:
        return s.scalar(select(func.count()).select_from(Message))


def _invalid(r, status: int = 422) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["error"]["code"] == {422: "invalid", 404: "not_found"}[status], body
    return body


def test_ids_beyond_the_database_integer_are_422_and_unknown_ids_404(api):
    conv_id, customer = api.customer()
    api.say(conv_id, customer, "How long does delivery take?")
    admin = api.login("root")
    too_big, huge = DB_INT_MAX + 1, 2**63
    for after in (too_big, huge, 2**64, -1):
        url = f"/api/v1/conversations/{conv_id}/messages?after={after}"
        _invalid(api.client.get(url, headers=customer))
    for value in (too_big, huge, 2**64, -1, 0):
        _invalid(api.client.get(f"/api/v1/admin/entries/{value}", headers=admin))
        _invalid(api.client.get(f"/api/v1/decisions/{value}", headers=admin))
        _invalid(
            api.client.post(
                f"/api/v1/conversations/{conv_id}/messages/{value}/rating",
                json={"helpful": True},
                headers=customer,
            )
        )
        _invalid(
            api.client.post(
                f"/api/v1/conversations/{conv_id}/messages",
                json={"choice": value},
                headers=customer,
            )
        )
    # the largest id is valid input that names nothing
    _invalid(api.client.get(f"/api/v1/admin/entries/{DB_INT_MAX}", headers=admin), 404)
    r = api.client.get(
        f"/api/v1/conversations/{conv_id}/messages?after={DB_INT_MAX}", headers=customer
    )
    assert r.status_code == 200 and r.json()["messages"] == []


def test_nul_in_any_text_is_422_and_stores_nothing(api):
    conv_id, customer = api.customer()
    before = _count(api.db_url)
    body = _invalid(
        api.client.post(
            f"/api/v1/conversations/{conv_id}/messages",
            json={"text": "hi\u0000there"},
            headers=customer,
        )
    )
    assert "NUL" in body["error"]["message"]
    _invalid(api.client.post("/api/v1/auth/login", json={"username": "a\u0000", "password": "x"}))
    _invalid(api.client.get(f"/api/v1/conversations/{conv_id}%00/messages", headers=customer))
    _invalid(api.client.get(f"/api/v1/conversations/{conv_id}/messages?x=%00", headers=customer))
    _invalid(
        api.client.post(
            "/auth/login",
            content=b"username=a%00&password=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    # an escaped backslash followed by "u0000" is ordinary text, not a NUL
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"text": "path C:\\u0000 here"},
        headers=customer,
    )
    assert r.status_code == 200, r.text
    assert _count(api.db_url) == before + 2  # that question and its reply only


def test_unparsable_and_deeply_nested_bodies_are_422(api):
    conv_id, customer = api.customer()
    url = f"/api/v1/conversations/{conv_id}/messages"
    headers = {**customer, "Content-Type": "application/json"}
    _invalid(api.client.post(url, content=b'{"text": "\xff\xfe"}', headers=headers))
    deep = b"[" * 5000 + b"]" * 5000
    _invalid(api.client.post(url, content=deep, headers=headers))
    _invalid(api.client.post("/api/v1/auth/login", content=deep, headers=headers))


def test_websocket_bad_frames_get_error_frames_and_the_socket_stays(api):
    conv_id, customer = api.customer()
    token = customer["Authorization"].split()[1]
    with api.client.websocket_connect(f"/api/v1/conversations/{conv_id}/ws?token={token}") as ws:
        assert ws.receive_json()["event"] == "hello"
        for frame in (
            "[" * 5000 + "]" * 5000,
            '{"text": "a\\u0000b"}',
            '{"choice": 9223372036854775808}',
            "not json",
        ):
            ws.send_text(frame)
            event = ws.receive_json()
            assert event["event"] == "error" and event["error"]["code"] == "invalid", event
        ws.send_json({"ping": 1})
        assert ws.receive_json() == {"event": "pong"}


def test_database_down_is_503_with_retry_after_and_1013_on_sockets(api):
    conv_id, customer = api.customer()
    token = customer["Authorization"].split()[1]
    services = api.client.app.state.services
    alive = services.db
    # a real PostgreSQL URL on a port nothing listens on: every connection is refused
    services.db = create_engine("postgresql+psycopg://annae@127.0.0.1:9/annae", pool_pre_ping=True)
    try:
        r = api.client.get(f"/api/v1/conversations/{conv_id}/messages", headers=customer)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1" and r.json()["error"]["code"] == "unavailable"
        r = api.client.post("/api/v1/auth/login", json={"username": "alice", "password": "x"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        with api.client.websocket_connect(
            f"/api/v1/conversations/{conv_id}/ws?token={token}"
        ) as ws:
            event = ws.receive_json()
            assert event["event"] == "error" and event["error"]["code"] == "unavailable"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1013
    finally:
        services.db.dispose()
        services.db = alive
    # back: the first request succeeds
    r = api.client.get(f"/api/v1/conversations/{conv_id}/messages", headers=customer)
    assert r.status_code == 200


@pytest.mark.postgres
def test_service_pool_pings_only_idle_connections_and_replaces_a_dead_one(monkeypatch):
    """The server's pool skips the ping for a connection used a moment ago (one round trip less
    per turn) and pings one that sat idle: a connection the server closed is replaced, not used."""
    from conftest import _pg_database
    from sqlalchemy import text

    from annae.store import db as store_db

    db_url, drop = _pg_database()  # the server's own pool is for PostgreSQL only
    engine = store_db.service_db(db_url)
    pings: list[int] = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(1) or real(c))
    try:
        with engine.connect() as conn:
            first = conn.scalar(text("SELECT pg_backend_pid()"))
        with engine.connect() as conn:  # back in the pool just now: no ping, same connection
            assert conn.scalar(text("SELECT pg_backend_pid()")) == first
        assert pings == []
        admin = get_engine(db_url)
        with admin.connect() as conn:  # the server ends that connection while it is idle
            assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": first})
        monkeypatch.setattr(store_db, "PING_IDLE_S", 0.0)
        with engine.connect() as conn:  # idle: pinged, found dead, replaced before use
            assert conn.scalar(text("SELECT pg_backend_pid()")) != first
        assert len(pings) == 1
    finally:
        engine.dispose()
        drop()
