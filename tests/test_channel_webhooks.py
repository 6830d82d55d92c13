"""Outbound webhooks: signed, from the durable outbox, in order per conversation, every event
exactly once per delivery id although the receiver is down for a while and `annae serve`
restarts meanwhile; dead letters and manual re-send; the admin API and page."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
from api_support import make_api
from channel_support import Receiver, free_port
from fastapi.testclient import TestClient
from sqlalchemy import select

from annae.channels import signing
from annae.settings import get_settings
from annae.store.db import get_engine, session_scope
from annae.store.tables.channels import OutboxItem

FAST = {
    "ANNAE_OUTBOX_POLL": "0.05",
    "ANNAE_OUTBOX_BACKOFF": "0.05",
    "ANNAE_OUTBOX_BACKOFF_CAP": "0.4",
    "ANNAE_OUTBOX_TIMEOUT": "2",
    "ANNAE_RATE_IP": "0",
    "ANNAE_RATE_CONVERSATION": "0",
}


@pytest.fixture
def app_env(annae_home, db_url, models, monkeypatch):
    api = make_api(annae_home, db_url, models, monkeypatch, **FAST)
    get_settings.cache_clear()
    yield api
    get_settings.cache_clear()


def _wait(pred, seconds: float = 30) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def _pending(db_url: str) -> int:
    with session_scope(get_engine(db_url)) as session:
        return len(
            list(session.scalars(select(OutboxItem.id).where(OutboxItem.status == "pending")))
        )


def _day(client: TestClient, api, admin_headers) -> list[str]:
    """Three customers: questions, a hand-off, an agent reply, resolve, a rating."""
    ids = []
    for n in range(3):
        r = client.post("/api/v1/conversations", json={"language": "en"})
        conv, headers = r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}
        ids.append(conv)
        ans = client.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"text": "How long does delivery take?"},
            headers=headers,
        ).json()
        client.post(
            f"/api/v1/conversations/{conv}/messages/{ans['id']}/rating",
            json={"helpful": n % 2 == 0},
            headers=headers,
        )
        client.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"text": f"my mail is kim{n}@example.com, call 010-1234-567{n}"},
            headers=headers,
        )
        client.post(
            f"/api/v1/conversations/{conv}/messages", json={"handoff": True}, headers=headers
        )
        client.post(
            f"/api/v1/conversations/{conv}/replies",
            json={"text": f"reply {n}"},
            headers=admin_headers,
        )
        client.post(f"/api/v1/conversations/{conv}/resolve", headers=admin_headers)
    return ids


def test_receiver_down_and_serve_restart_lose_nothing(app_env, db_url):
    api = app_env
    receiver = Receiver(free_port())  # not started: connection refused
    with api.client as client:
        root = api.login("root")
        r = client.post(
            "/api/v1/admin/webhooks",
            json={"url": receiver.url + "/hook", "events": list(signing_events())},
            headers=root,
        )
        assert r.status_code == 201, r.text
        secret, hook_id = r.json()["secret"], r.json()["id"]
        assert (
            "secret" not in client.get("/api/v1/admin/webhooks", headers=root).json()["webhooks"][0]
        )
        conv_ids = _day(client, api, root)
        time.sleep(0.5)  # the worker tries (and fails) several times
        log = client.get("/api/v1/admin/deliveries?kind=webhook", headers=root).json()
        assert log["counts"].get("pending", 0) > 0 and log["counts"].get("delivered", 0) == 0
        assert any(i["attempts"] >= 1 and i["last_error"] for i in log["items"])
    # `annae serve` stopped; the receiver comes back answering 503 for a while, then 200
    receiver.status = 503
    receiver.start()
    restarted = TestClient(_new_app())
    try:
        with restarted as client:
            assert _wait(lambda: len(receiver.requests) >= 3)
            receiver.status = 200
            assert _wait(lambda: _pending(db_url) == 0), "the outbox did not drain"
    finally:
        receiver.stop()

    with session_scope(get_engine(db_url)) as session:
        items = list(
            session.scalars(
                select(OutboxItem).where(OutboxItem.kind == "webhook").order_by(OutboxItem.id)
            )
        )
        assert all(i.status == "delivered" for i in items)
    accepted = receiver.accepted()
    ids = [r["headers"]["x-annae-delivery"] for r in accepted]
    assert sorted(ids) == sorted(i.delivery_id for i in items)  # every event, once each
    assert len(ids) == len(set(ids))
    for req in accepted:  # signed, inside the replay window, body id = header id
        h = req["headers"]
        assert signing.verify(secret, req["body"], h["x-annae-timestamp"], h["x-annae-signature"])
        assert (
            req["json"]["id"] == h["x-annae-delivery"]
            and req["json"]["event"] == h["x-annae-event"]
        )
        assert not signing.verify(
            "whsec_wrong", req["body"], h["x-annae-timestamp"], h["x-annae-signature"]
        )
    by_conv: dict[str, list[str]] = defaultdict(list)
    order = {i.delivery_id: i.id for i in items}
    for req in accepted:
        data = req["json"]["data"]
        conv = data.get("conversation_id") or data.get("message", {}).get("conversation_id")
        by_conv[conv].append(req["headers"]["x-annae-delivery"])
    for conv in conv_ids:  # in order per conversation
        got = by_conv[conv]
        assert got == sorted(got, key=order.get) and len(got) >= 8
        events = [
            next(r["json"]["event"] for r in accepted if r["headers"]["x-annae-delivery"] == d)
            for d in got
        ]
        assert events[0] == "conversation.created"
        after = events[events.index("conversation.resolved") + 1 :]
        # the system line (and the desk's satisfaction survey)
        assert 1 <= len(after) <= 2 and set(after) == {"message.created"}
        assert {"message.created", "rating.created", "conversation.handoff"} <= set(events)
    texts = [
        r["json"]["data"]["message"]["text"]
        for r in accepted
        if r["json"]["event"] == "message.created"
    ]
    assert not any("@example.com" in t or "010-1234" in t for t in texts)
    assert any("[EMAIL]" in t for t in texts)
    assert hook_id == items[0].target_id


def signing_events():
    from annae.channels.webhooks import EVENTS

    return EVENTS


def _new_app():
    from annae.web.app import create_app

    return create_app(get_settings())


def test_dead_letter_and_manual_resend(app_env, db_url, monkeypatch):
    monkeypatch.setenv("ANNAE_OUTBOX_MAX_AGE", "0.3")
    get_settings.cache_clear()
    receiver = Receiver().start()
    receiver.status = 500
    api = app_env
    try:
        with api.client as client:
            root = api.login("root")
            client.post(
                "/api/v1/admin/webhooks",
                json={"url": receiver.url, "events": ["conversation.created"]},
                headers=root,
            )
            client.post("/api/v1/conversations", json={})
            assert _wait(lambda: _pending(db_url) == 0)
            dead = client.get("/api/v1/admin/deliveries?status=dead", headers=root).json()["items"]
            assert len(dead) == 1 and dead[0]["last_status"] == 500 and dead[0]["attempts"] >= 2
            tries = len(receiver.requests)
            time.sleep(0.3)
            assert len(receiver.requests) == tries  # dead: no more tries
            receiver.status = 200
            monkeypatch.setenv("ANNAE_OUTBOX_MAX_AGE", "3600")
            get_settings.cache_clear()
            r = client.post(f"/api/v1/admin/deliveries/{dead[0]['id']}/resend", headers=root)
            assert r.status_code == 200 and r.json()["status"] == "pending"
            assert _wait(lambda: len(receiver.accepted()) == 1)
            assert receiver.accepted()[0]["headers"]["x-annae-delivery"] == dead[0]["delivery_id"]
            assert (
                client.post("/api/v1/admin/deliveries/999999/resend", headers=root).status_code
                == 404
            )
            page = client.get("/admin/deliveries", headers=root)
            assert page.status_code == 200 and "Delivery log" in page.text
            agent = api.login("alice")
            assert client.get("/api/v1/admin/deliveries", headers=agent).status_code == 403
    finally:
        receiver.stop()


def test_webhook_input_is_checked(app_env):
    api = app_env
    with api.client as client:
        root = api.login("root")
        for body in (
            {"url": "ftp://x", "events": ["message.created"]},
            {"url": "http://127.0.0.1:9/x", "events": ["nope"]},
            {"url": "http://127.0.0.1:9/x", "events": []},
        ):
            r = client.post("/api/v1/admin/webhooks", json=body, headers=root)
            assert r.status_code in (400, 422), r.text
        assert client.get("/api/v1/admin/webhooks", headers=root).json()["webhooks"] == []
        assert client.delete("/api/v1/admin/webhooks/77", headers=root).status_code == 404
