"""Two `annae serve` processes sharing one PostgreSQL database and Redis: live events cross over."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from served import recv_until, serve
from websockets.sync.client import connect

from annae.agents.users import create_user
from annae.store.db import get_engine

PASSWORD = "correct-horse-battery"
REDIS_URL = os.environ.get("ANNAE_TEST_REDIS", "redis://127.0.0.1:6379/0")

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def two_servers(tmp_path, db_url):
    """Two `annae serve` commands (no model: /healthz, not /readyz) on one database and Redis."""
    create_user(get_engine(db_url), "alice", "agent", PASSWORD)
    servers = [
        serve(tmp_path / name, db_url, redis_url=REDIS_URL, extra_args=("--log-level", "warning"))
        for name in ("a", "b")
    ]
    try:
        for server in servers:
            server.wait_up(ready_path="/healthz")
        yield [server.base for server in servers]
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_event_posted_on_one_process_reaches_a_websocket_on_the_other(two_servers):
    a, b = two_servers
    created = httpx.post(f"{a}/api/v1/conversations", json={}).json()
    conv_id, token = created["id"], created["token"]
    agent = httpx.post(
        f"{b}/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    ).json()["token"]
    ws_a = a.replace("http://", "ws://")
    ws_b = b.replace("http://", "ws://")
    with (
        connect(f"{ws_a}/api/v1/conversations/{conv_id}/ws?token={token}") as customer_ws,
        connect(f"{ws_a}/api/v1/agents/ws?token={agent}") as agents_ws,
    ):
        assert json.loads(customer_ws.recv(timeout=10))["event"] == "hello"
        assert json.loads(agents_ws.recv(timeout=10))["event"] == "hello"
        # the customer asks for a person through process B; agents on process A hear it
        r = httpx.post(
            f"{b}/api/v1/conversations/{conv_id}/messages",
            json={"handoff": True},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200 and r.json()["state"] == "waiting"
        handoff = recv_until(
            agents_ws, lambda e: e["event"] == "handoff" and e["conversation_id"] == conv_id
        )
        assert handoff["reason"] == "customer_request" and handoff["queue_length"] >= 1
        # the agent replies through process B; the customer's socket on process A gets it live
        r = httpx.post(
            f"{b}/api/v1/conversations/{conv_id}/replies",
            json={"text": "Hi from process B"},
            headers={"Authorization": f"Bearer {agent}"},
        )
        assert r.status_code == 201
        pushed = recv_until(
            customer_ws, lambda e: e["event"] == "message" and e["message"]["sender"] == "agent"
        )
        assert (
            pushed["message"]["text"] == "Hi from process B"
            and pushed["message"]["author"] == "alice"
        )
    # and the other way round: a socket on B, a customer message through A
    with connect(f"{ws_b}/api/v1/agents/ws?token={agent}") as agents_b:
        assert json.loads(agents_b.recv(timeout=10))["event"] == "hello"
        r = httpx.post(
            f"{a}/api/v1/conversations/{conv_id}/messages",
            json={"text": "Are you there?"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.json()["type"] == "queued"
        heard = recv_until(
            agents_b, lambda e: e["event"] == "message" and e["conversation_id"] == conv_id
        )
        assert heard["message"]["text"] == "Are you there?"
    # both processes read the same database
    transcript_a = httpx.get(
        f"{a}/api/v1/conversations/{conv_id}/messages", headers={"Authorization": f"Bearer {token}"}
    )
    transcript_b = httpx.get(
        f"{b}/api/v1/conversations/{conv_id}/messages", headers={"Authorization": f"Bearer {token}"}
    )
    assert transcript_a.json() == transcript_b.json()
    assert [m["sender"] for m in transcript_a.json()["messages"]] == [
        "customer",
        "bot",
        "system",
        "agent",
        "customer",
    ]
