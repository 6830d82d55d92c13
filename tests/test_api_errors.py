"""Bad input and access: status codes, JSON errors, nothing stored on error, rate limits, health."""

from __future__ import annotations

import pytest
from api_support import make_api
from starlette.websockets import WebSocketDisconnect

from annae.store.db import get_engine, session_scope


def _count_messages(db_url: str) -> int:
    from sqlalchemy import func, select

    from annae.store.tables.service import Message

    with session_scope(get_engine(db_url)) as session:
        return session.scalar(select(func.count()).select_from(Message))


def _error(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["message"]


def test_unknown_ids_missing_and_wrong_tokens(api):
    conv_id, headers = api.customer()
    other_id, other = api.customer()
    url = f"/api/v1/conversations/{conv_id}/messages"
    _error(
        api.client.post(
            "/api/v1/conversations/0123456789abcdef0123456789abcdef/messages",
            json={"text": "hi"},
            headers=headers,
        ),
        404,
        "not_found",
    )
    _error(api.client.get("/api/v1/conversations/nope/messages", headers=headers), 404, "not_found")
    _error(api.client.post(url, json={"text": "hi"}), 401, "unauthorized")
    _error(
        api.client.post(url, json={"text": "hi"}, headers={"Authorization": "Bearer wrong"}),
        401,
        "unauthorized",
    )
    _error(
        api.client.post(url, json={"text": "hi"}, headers={"Authorization": "Basic abc"}),
        401,
        "unauthorized",
    )
    _error(api.client.post(url, json={"text": "hi"}, headers=other), 403, "forbidden")
    _error(api.client.get(url, headers=other), 403, "forbidden")
    _error(api.client.get(f"/api/v1/conversations/{conv_id}", headers=other), 403, "forbidden")
    agent = api.login("alice")
    _error(api.client.post(url, json={"text": "hi"}, headers=agent), 403, "forbidden")
    for action in ("assign", "resolve", "handback"):
        _error(
            api.client.post(f"/api/v1/conversations/nope/{action}", headers=agent), 404, "not_found"
        )
    _error(
        api.client.post(f"/api/v1/conversations/{conv_id}/assign", headers=headers),
        401,
        "unauthorized",
    )
    _error(api.client.get("/api/v1/nothing-here"), 404, "not_found")
    assert _count_messages(api.db_url) == 0


def test_bad_bodies_change_nothing(api):
    conv_id, headers = api.customer()
    api.say(conv_id, headers, "How long does delivery take?")
    before = _count_messages(api.db_url)
    url = f"/api/v1/conversations/{conv_id}/messages"
    json_headers = {**headers, "Content-Type": "application/json"}
    _error(
        api.client.post(
            url, content=b'{"text": "x' + b"a" * (1 << 20) + b'"}', headers=json_headers
        ),
        413,
        "too_large",
    )

    def chunks():
        for _ in range(100):
            yield b"a" * 1024

    _error(
        api.client.post(url, content=chunks(), headers=json_headers), 413, "too_large"
    )  # no Content-Length
    _error(api.client.post(url, content=b'{"text": ', headers=json_headers), 422, "invalid")
    _error(api.client.post(url, json={"text": ""}, headers=headers), 422, "invalid")
    _error(api.client.post(url, json={"text": "   \n"}, headers=headers), 422, "invalid")
    _error(api.client.post(url, json={"text": 12}, headers=headers), 422, "invalid")
    _error(api.client.post(url, json={"text": ["a"]}, headers=headers), 422, "invalid")
    _error(api.client.post(url, json={}, headers=headers), 422, "invalid")
    _error(api.client.post(url, json={"text": "a", "choice": 1}, headers=headers), 422, "invalid")
    _error(api.client.post(url, json={"text": "a", "extra": 1}, headers=headers), 422, "invalid")
    _error(api.client.post(url, json={"text": "a" * 4001}, headers=headers), 422, "invalid")
    _error(api.client.post(url, json=[1, 2], headers=headers), 422, "invalid")
    _error(
        api.client.post(url, json={"choice": 1}, headers=headers), 400, "bad_request"
    )  # nothing offered
    agent = api.login("alice")
    _error(
        api.client.post(
            f"/api/v1/conversations/{conv_id}/replies", json={"text": " "}, headers=agent
        ),
        422,
        "invalid",
    )
    _error(api.client.post("/api/v1/conversations", json={"language": "fr"}), 422, "invalid")
    assert _count_messages(api.db_url) == before
    messages = api.transcript(conv_id, headers)
    assert [m["type"] for m in messages] == ["text", messages[1]["type"]] and len(messages) == 2


def test_rate_limits_per_conversation_and_ip(annae_home, db_url, models, monkeypatch):
    api = make_api(
        annae_home,
        db_url,
        models,
        monkeypatch,
        ANNAE_RATE_CONVERSATION="3/60",
        ANNAE_RATE_IP="8/60",
    )
    with api.client:
        conv_id, headers = api.customer()
        url = f"/api/v1/conversations/{conv_id}/messages"
        for _ in range(3):
            assert api.client.post(url, json={"handoff": True}, headers=headers).status_code == 200
        r = api.client.post(url, json={"text": "again"}, headers=headers)
        _error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 20
        stored = _count_messages(api.db_url)
        other_id, other = api.customer()  # a new conversation still works until the IP runs dry
        codes = [
            api.client.post(
                f"/api/v1/conversations/{other_id}/messages", json={"handoff": True}, headers=other
            ).status_code
            for _ in range(4)
        ]
        assert codes[:2] == [200, 200] and codes[-1] == 429
        assert api.client.post("/api/v1/conversations").status_code == 429
        assert (
            _count_messages(api.db_url) == stored + 3
        )  # hand-off turn (2 messages) + a queued one (1)


def test_websocket_bad_credentials_close_with_codes(api):
    conv_id, headers = api.customer()
    _other_id, other = api.customer()
    cases = {
        f"/api/v1/conversations/{conv_id}/ws": 4401,
        f"/api/v1/conversations/{conv_id}/ws?token=wrong": 4401,
        f"/api/v1/conversations/{conv_id}/ws?token={other['Authorization'].split()[1]}": 4403,
        "/api/v1/conversations/0123456789abcdef0123456789abcdef/ws?token=x": 4404,
    }
    for url, code in cases.items():
        with api.client.websocket_connect(url) as ws:
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_json()
            assert info.value.code == code, url


def test_websocket_closed_mid_message_keeps_the_message(api):
    conv_id, headers = api.customer()
    token = headers["Authorization"].split()[1]
    with api.client.websocket_connect(f"/api/v1/conversations/{conv_id}/ws?token={token}") as ws:
        ws.receive_json()
        ws.send_json({"handoff": True})
    # the socket is gone before the reply; the turn is still stored once and the app still serves
    import time

    for _ in range(50):
        if len(api.transcript(conv_id, headers)) == 2:
            break
        time.sleep(0.1)
    assert [m["type"] for m in api.transcript(conv_id, headers)] == ["text", "handoff"]
    with api.client.websocket_connect(f"/api/v1/conversations/{conv_id}/ws?token={token}") as ws:
        assert ws.receive_json()["state"] == "waiting"
        ws.send_text("x" * (70 * 1024))
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
        assert info.value.code == 1009
    assert api.client.get("/healthz").json() == {"status": "ok"}


def test_health_ready_and_metrics(api):
    assert api.client.get("/healthz").status_code == 200
    ready = api.client.get("/readyz")
    assert (
        ready.status_code == 200
        and ready.json()["database"] == "ok"
        and ready.json()["model"] == "v1"
    )

    def scraped(series: str) -> float:  # one series' value now (the registry is the process's)
        for line in api.client.get("/metrics").text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    def routed() -> float:  # hand-off turns timed so far
        return scraped("annae_handoff_routing_seconds_count")

    before = routed()
    conv_id, headers = api.customer()
    url = f"/api/v1/conversations/{conv_id}/messages"
    assert api.say(conv_id, headers, "How long does delivery take?")["type"] == "answer"
    assert routed() == before  # only a hand-off is routed
    api.client.post(url, json={"handoff": True}, headers=headers)
    assert routed() == before + 1
    text = api.client.get("/metrics").text
    assert (
        'annae_http_requests_total{method="POST",route="/api/v1/conversations/{conv_id}/messages",status="200"}'
        in text
    )
    assert 'annae_decisions_total{reason="customer_request",type="handoff"}' in text
    assert "annae_queue_length 1.0" in text
    assert "annae_http_request_seconds_bucket" in text

    def remembered(result: str) -> float:  # the live engine's memory of repeated questions
        return scraped(f'annae_question_memory_total{{result="{result}"}}')

    hits, misses = remembered("hit"), remembered("miss")
    conv_id, headers = api.customer()
    for _ in range(2):
        assert api.say(conv_id, headers, "Do you ship to Jeju island?")["type"]
    assert (remembered("hit"), remembered("miss")) == (hits + 1, misses + 1)


def test_readyz_is_503_without_a_model(annae_home, db_url, monkeypatch):
    api = make_api(annae_home, db_url, None, monkeypatch)
    with api.client:
        r = api.client.get("/readyz")
        assert (
            r.status_code == 503
            and r.json()["model"] == "missing"
            and r.json()["error"]["code"] == "not_ready"
        )
        conv_id, headers = api.customer()
        reply = api.say(conv_id, headers, "How long does delivery take?")
        assert reply["type"] == "handoff" and reply["reason"] == "no_model"


@pytest.mark.redis
def test_redis_rate_limit_is_shared_between_processes():
    import uuid

    from annae.web.ratelimit import Rate, RedisLimiter

    rates = {"conversation": Rate(3, 60), "ip": None}
    one = RedisLimiter(rates, "redis://127.0.0.1:6379/0")
    two = RedisLimiter(rates, "redis://127.0.0.1:6379/0")  # as if in another worker
    key = uuid.uuid4().hex
    assert [
        one.hit("conversation", key),
        two.hit("conversation", key),
        one.hit("conversation", key),
    ] == [0, 0, 0]
    wait = two.hit("conversation", key)
    assert 15 < wait <= 20  # one token refills in 60/3 s
    assert one.hit("ip", key) == 0  # a limit that is off never blocks
    assert one.hit("conversation", uuid.uuid4().hex) == 0
