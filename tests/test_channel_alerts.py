"""Agent alerts: a hand-off nobody watches notifies by a Slack-compatible webhook and by mail,
at most once per conversation per N minutes; an open console means no alert."""

from __future__ import annotations

import pytest
from api_support import make_api
from channel_support import Receiver, Relay
from sqlalchemy import select

from annae.channels.outbox import Deliverer
from annae.channels.settings import channel_settings
from annae.store.db import get_engine, session_scope
from annae.store.tables.channels import OutboxItem


@pytest.fixture
def alerting(annae_home, db_url, models, monkeypatch):
    slack, relay = Receiver().start(), Relay().start()
    api = make_api(
        annae_home,
        db_url,
        models,
        monkeypatch,
        ANNAE_OUTBOX_WORKER="false",
        ANNAE_ALERT_WEBHOOK_URL=slack.url + "/services/T0/B0/x",
        ANNAE_ALERT_EMAIL="oncall@shop.test, boss@shop.test",
        ANNAE_SMTP_RELAY=f"127.0.0.1:{relay.port}",
        ANNAE_ALERT_EVERY_MINUTES="10",
    )
    channel_settings.cache_clear()
    try:
        with api.client:
            yield api, slack, relay
    finally:
        slack.stop()
        relay.stop()
        channel_settings.cache_clear()


def _handoff(api, conv_id, headers):
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"handoff": True}, headers=headers
    )
    assert r.json()["type"] == "handoff"


def test_alert_once_per_conversation_when_nobody_watches(alerting):
    api, slack, relay = alerting
    conv_id, headers = api.customer()
    _handoff(api, conv_id, headers)
    Deliverer(get_engine(api.db_url)).drain()
    (post,) = slack.accepted()
    assert post["path"] == "/services/T0/B0/x" and "waits for a person" in post["json"]["text"]
    assert "customer_request" in post["json"]["text"]
    (mail,) = relay.mails
    assert mail["Auto-Submitted"] == "auto-generated" and "oncall@shop.test" in mail["To"]
    # handed back and handed off again within 10 minutes: no second alert
    agent = api.login("alice")
    api.client.post(f"/api/v1/conversations/{conv_id}/handback", headers=agent)
    _handoff(api, conv_id, headers)
    Deliverer(get_engine(api.db_url)).drain()
    assert len(slack.accepted()) == 1 and len(relay.mails) == 1
    # another conversation alerts again
    other, h2 = api.customer()
    _handoff(api, other, h2)
    Deliverer(get_engine(api.db_url)).drain()
    assert len(slack.accepted()) == 2


def test_no_alert_while_a_console_is_open(alerting):
    api, slack, relay = alerting
    token = api.login("bob")["Authorization"].split()[1]
    with api.client.websocket_connect(f"/api/v1/agents/ws?token={token}") as ws:
        assert ws.receive_json()["event"] == "hello"
        conv_id, headers = api.customer()
        _handoff(api, conv_id, headers)
        assert ws.receive_json()["event"] in ("handoff", "message", "state")
    with session_scope(get_engine(api.db_url)) as session:
        kinds = {i.kind for i in session.scalars(select(OutboxItem))}
    assert not kinds & {"slack", "email"}
