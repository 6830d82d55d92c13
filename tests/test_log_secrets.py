"""No credential ever reaches a log line of a real `annae serve` (WebSocket handshakes included)."""

from __future__ import annotations

import json
import logging
import socket
import time

import httpx
import pytest
from served import serve
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from annae.agents.users import create_api_key, create_user
from annae.logredact import RedactSecrets, redact
from annae.store.db import get_engine, session_scope

PASSWORD = "correct-horse-battery"


def test_redact_blanks_every_credential_parameter():
    line = '"WebSocket /api/v1/conversations/c1/ws?token=abc&after=3&api_key=ak_x" [accepted]'
    assert redact(line) == (
        '"WebSocket /api/v1/conversations/c1/ws?token=[redacted]&after=3&api_key=[redacted]"'
        " [accepted]"
    )
    assert redact("/x?access_token=q1;X-Api-Key=q2") == (
        "/x?access_token=[redacted];X-Api-Key=[redacted]"
    )
    assert redact("/api/v1/conversations?after=5") == "/api/v1/conversations?after=5"


def test_filter_rewrites_arguments_as_uvicorn_passes_them():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/ws?token=s3cret", "1.1", 101),
        None,
    )
    assert RedactSecrets().filter(record) is True
    assert "s3cret" not in record.getMessage() and "token=[redacted]" in record.getMessage()


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_secret_in_the_log_of_a_served_session(tmp_path, db_url, models):
    engine = get_engine(db_url)
    create_user(engine, "alice", "agent", PASSWORD)
    with session_scope(engine) as session:
        api_key = create_api_key(session, "kakao")
    server = serve(
        tmp_path / "home", db_url, models=models, extra_args=("--log-level", "info", "--access-log")
    )
    secrets: list[str] = [api_key, PASSWORD]
    try:
        server.wait_up()
        created = httpx.post(f"{server.base}/api/v1/conversations", json={}).json()
        conv, token = created["id"], created["token"]
        login = httpx.post(
            f"{server.base}/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        agent = login.json()["token"]
        secrets += [token, agent]
        # every way a credential can reach the server in a URL
        with connect(f"{server.ws}/api/v1/conversations/{conv}/ws?token={token}") as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "hello"
        with connect(f"{server.ws}/api/v1/conversations/{conv}/ws?api_key={api_key}") as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "hello"
        with connect(f"{server.ws}/api/v1/agents/ws?token={agent}") as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "hello"
        with connect(f"{server.ws}/api/v1/conversations/{conv}/ws?token=wrong-{token}") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 4401
        # the protocol limits `annae serve` sets: 64 kB frames, 10 s for request headers
        with connect(f"{server.ws}/api/v1/conversations/{conv}/ws?token={token}") as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "hello"
            ws.send("x" * 100_000)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 1009
        port = int(server.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the end
            slow.settimeout(30)
            started = time.monotonic()
            assert slow.recv(1024) == b""  # closed by the server
            assert 9 <= time.monotonic() - started <= 20
        httpx.get(f"{server.base}/api/v1/conversations/{conv}/messages?token={token}&after=0")
        httpx.get(f"{server.base}/readyz?api_key={api_key}")
    finally:
        server.stop()
    text = server.log_text()
    # the log did record the handshakes and requests, with their credentials blanked
    assert "WebSocket /api/v1/conversations/" in text, text[-2000:]
    assert "token=[redacted]" in text and "api_key=[redacted]" in text
    assert '"path": "/readyz?api_key=[redacted]"' in text  # the JSON access line
    for secret in secrets:
        assert secret not in text, f"a credential leaked into the log: {secret[:6]}…"
