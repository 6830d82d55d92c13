"""Two `annae serve` processes sharing one PostgreSQL database and Redis: live events cross over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from served import free_port, recv_until
from websockets.sync.client import connect

from annae.agents.users import create_user
from annae.store.db import get_engine

PASSWORD = "correct-horse-battery"
REDIS_URL = os.environ.get("ANNAE_TEST_REDIS", "redis://127.0.0.1:6379/0")

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _serve(home: Path, db_url: str, port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "ANNAE_HOME": str(home),
        "ANNAE_DATABASE_URL": db_url,
        "ANNAE_REDIS_URL": REDIS_URL,
        "ANNAE_ENCODER": "none",
        "OMP_NUM_THREADS": "1",
    }
    annae = Path(sys.executable).with_name("annae")
    cmd = [
        str(annae),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait_up(base: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"annae serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"annae serve did not start on {base}:\n{log.read_text()[-3000:]}")


@pytest.fixture
def two_servers(tmp_path, db_url):
    create_user(get_engine(db_url), "alice", "agent", PASSWORD)
    procs, bases = [], []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        port = free_port()
        log = tmp_path / f"{name}.log"
        proc = _serve(home, db_url, port, log)
        procs.append(proc)
        bases.append((f"http://127.0.0.1:{port}", proc, log))
    try:
        for base, proc, log in bases:
            _wait_up(base, proc, log)
        yield [b for b, _, _ in bases]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


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
