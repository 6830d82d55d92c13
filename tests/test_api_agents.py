"""The agent API: login, queue, assign, replies, resolve, hand back, suggestions, sessions, live events."""

from __future__ import annotations

import pytest
from api_support import PASSWORD


def _handoff(api) -> tuple[str, dict]:
    conv_id, headers = api.customer()
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"handoff": True}, headers=headers
    )
    assert r.json()["state"] == "waiting"
    return conv_id, headers


def test_login_and_me(api):
    r = api.client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "wrong-password"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = api.client.post("/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401
    agent = api.login("alice")
    me = api.client.get("/api/v1/auth/me", headers=agent).json()
    assert me["username"] == "alice" and me["role"] == "agent"
    assert api.client.post("/api/v1/auth/logout", headers=agent).status_code == 200
    assert api.client.get("/api/v1/auth/me", headers=agent).status_code == 401


def test_queue_is_oldest_first_with_reason_and_waiting_time(api):
    first, _ = _handoff(api)
    second, _ = _handoff(api)
    agent = api.login("alice")
    queue = api.client.get("/api/v1/queue", headers=agent).json()
    assert queue["length"] == 2
    assert [item["id"] for item in queue["queue"]] == [first, second]
    assert all(
        item["reason"] == "customer_request" and item["waiting_seconds"] >= 0
        for item in queue["queue"]
    )
    assert queue["queue"][0]["last_message"] == "[asked for a person]"
    assert api.client.get("/api/v1/queue").status_code == 401


def test_assign_reply_resolve_and_conflicts(api):
    conv_id, customer = _handoff(api)
    alice, bob = api.login("alice"), api.login("bob")
    r = api.client.post(f"/api/v1/conversations/{conv_id}/assign", headers=alice)
    assert r.status_code == 200 and r.json()["state"] == "agent" and r.json()["agent"] == "alice"
    assert api.client.get("/api/v1/queue", headers=alice).json()["length"] == 0
    r = api.client.post(f"/api/v1/conversations/{conv_id}/assign", headers=bob)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/replies",
        json={"text": "  Hi, Alice here.  "},
        headers=alice,
    )
    assert (
        r.status_code == 201
        and r.json()["text"] == "Hi, Alice here."
        and r.json()["author"] == "alice"
    )
    queued = api.say(conv_id, customer, "How long does delivery take?")
    assert queued["type"] == "queued" and queued["state"] == "agent"
    mine = api.client.get("/api/v1/conversations?state=agent&mine=true", headers=alice).json()[
        "conversations"
    ]
    assert [c["id"] for c in mine] == [conv_id]
    assert (
        api.client.get("/api/v1/conversations?mine=true", headers=bob).json()["conversations"] == []
    )
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/assign", json={"force": True}, headers=bob
    )
    assert r.json()["agent"] == "bob"
    assert (
        api.client.post(f"/api/v1/conversations/{conv_id}/resolve", headers=bob).json()["state"]
        == "resolved"
    )
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/replies", json={"text": "late"}, headers=alice
    )
    assert r.status_code == 409
    r = api.client.post(f"/api/v1/conversations/{conv_id}/handback", headers=alice)
    assert r.status_code == 409
    kinds = [(m["sender"], m["type"], m["text"]) for m in api.transcript(conv_id, customer)]
    assert ("agent", "agent", "Hi, Alice here.") in kinds
    assert [t for s, _, t in kinds if s == "system"] == ["assigned", "assigned", "resolved"]


def test_handback_returns_the_conversation_to_the_bot(api):
    conv_id, customer = _handoff(api)
    alice = api.login("alice")
    api.client.post(f"/api/v1/conversations/{conv_id}/assign", headers=alice)
    r = api.client.post(f"/api/v1/conversations/{conv_id}/handback", headers=alice)
    assert r.status_code == 200 and r.json()["state"] == "bot" and r.json()["agent"] is None
    reply = api.say(conv_id, customer, "How long does delivery take?")
    assert reply["type"] != "queued"  # the bot speaks again


def test_agent_view_has_transcript_decisions_and_suggestions(api):
    conv_id, customer = api.customer()
    reply = api.say(conv_id, customer, "When will my order arrive?")
    alice = api.login("alice")
    detail = api.client.get(f"/api/v1/conversations/{conv_id}", headers=alice).json()
    assert detail["state"] == reply["state"]
    assert [m["sender"] for m in detail["messages"]] == ["customer", "bot"]
    decision = detail["messages"][0]["decision"]
    assert decision["model_version"] == "v1" and decision["threshold"] is not None
    suggestions = detail["suggestions"]
    assert 1 <= len(suggestions) <= 3
    assert suggestions[0]["key"] == decision["candidates"][0]["key"]
    assert all(s["answer"] and 0 <= s["confidence"] <= 1 for s in suggestions)
    assert [s["confidence"] for s in suggestions] == sorted(
        (s["confidence"] for s in suggestions), reverse=True
    )
    assert suggestions[0]["key"].startswith("shipping")


def test_browser_session_needs_csrf_on_unsafe_requests(api):
    client = api.client
    page = client.get("/healthz")
    csrf = page.cookies.get("annae_csrf") or client.cookies.get("annae_csrf")
    assert csrf
    r = client.post(
        "/auth/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "error=csrf" in r.headers["location"]
    r = client.post(
        "/auth/login",
        data={"username": "alice", "password": "nope", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "error=invalid" in r.headers["location"]
    r = client.post(
        "/auth/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console"
    cookie = r.headers["set-cookie"]
    assert (
        "annae_session=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=lax" in cookie.replace("Lax", "lax")
    )
    assert client.get("/api/v1/auth/me").json()["username"] == "alice"
    conv_id, _ = _handoff(api)
    r = client.post(f"/api/v1/conversations/{conv_id}/assign")
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = client.post(f"/api/v1/conversations/{conv_id}/assign", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["agent"] == "alice"
    r = client.post("/auth/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.delete("annae_session")
    assert client.get("/api/v1/auth/me").status_code == 401


def test_agents_websocket_hears_handoffs_and_customer_messages(api):
    alice = api.login("alice")
    token = alice["Authorization"].split()[1]
    with api.client.websocket_connect(f"/api/v1/agents/ws?token={token}") as ws:
        hello = ws.receive_json()
        assert (
            hello["event"] == "hello"
            and hello["user"]["username"] == "alice"
            and hello["queue_length"] == 0
        )
        conv_id, customer = _handoff(api)
        events = [ws.receive_json() for _ in range(3)]
        handoff = next(e for e in events if e["event"] == "handoff")
        assert handoff["conversation_id"] == conv_id and handoff["queue_length"] == 1
        assert handoff["reason"] == "customer_request"
        assert [e["message"]["sender"] for e in events if e["event"] == "message"] == [
            "customer",
            "bot",
        ]
        api.say(conv_id, customer, "Hello? Anyone there?")
        pushed = ws.receive_json()
        assert pushed["event"] == "message" and pushed["message"]["text"] == "Hello? Anyone there?"
    with api.client.websocket_connect("/api/v1/agents/ws?token=wrong") as ws:
        with pytest.raises(Exception) as info:
            ws.receive_json()
        assert getattr(info.value, "code", None) == 4401


def test_user_cli_adds_users_non_interactively(annae_home, db_url):
    from typer.testing import CliRunner

    from annae.agents import users
    from annae.store.db import get_engine, session_scope
    from annae.web.cli import user_app

    runner = CliRunner()
    result = runner.invoke(
        user_app, ["add", "maria", "--role", "admin", "--password-stdin"], input="s3cret-pass\n"
    )
    assert result.exit_code == 0, result.output
    assert "created admin maria" in result.output and "s3cret-pass" not in result.output
    bad = runner.invoke(
        user_app, ["add", "maria", "--role", "admin", "--password-stdin"], input="s3cret-pass\n"
    )
    assert bad.exit_code == 1 and "already exists" in bad.output
    bad = runner.invoke(
        user_app, ["add", "kim", "--role", "boss", "--password-stdin"], input="s3cret-pass\n"
    )
    assert bad.exit_code == 1 and "role" in bad.output
    key = runner.invoke(user_app, ["apikey", "create", "shop"]).output.strip()
    assert key.startswith("ak_")
    with session_scope(get_engine(db_url)) as session:
        assert users.authenticate(session, "maria", "s3cret-pass").role == "admin"
        assert users.authenticate(session, "maria", "wrong") is None
        assert users.api_key_name(session, key) == "shop"
        stored = [u.password_hash for u in users.list_users(session)]
        assert all(h.startswith("$argon2id$") for h in stored)
    assert runner.invoke(user_app, ["apikey", "revoke", "shop"]).exit_code == 0
    assert runner.invoke(user_app, ["disable", "maria"]).exit_code == 0
    with session_scope(get_engine(db_url)) as session:
        assert users.api_key_name(session, key) is None
        assert users.authenticate(session, "maria", "s3cret-pass") is None
