"""Agent alerts: a hand-off nobody watches notifies by a Slack-compatible webhook and by mail,
at most once per conversation per N minutes; an open console means no alert. A team whose hours
start with customers queued gets them assigned and one alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from api_support import make_api
from channel_support import Receiver, Relay
from sqlalchemy import func, select

from annae.channels.alerts import on_hours_start
from annae.channels.outbox import Deliverer
from annae.channels.runtime import sweep_openings
from annae.settings import get_settings
from annae.store.db import get_engine, session_scope
from annae.store.tables.channels import AgentAlert, OutboxItem
from annae.store.tables.desk import Opening as DeskOpening
from annae.store.tables.service import Conversation


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
    get_settings.cache_clear()
    try:
        with api.client:
            yield api, slack, relay
    finally:
        slack.stop()
        relay.stop()
        get_settings.cache_clear()


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


def test_a_team_opening_with_customers_queued_assigns_them_and_alerts_once(alerting):
    """Handed off while the team is closed: queued; when its hours start, the sweep gives the
    conversation to the online member and alerts once (a second sweep sends nothing)."""
    api, slack, relay = alerting
    admin, alice = api.login("root"), api.login("alice")
    seoul = datetime.now(ZoneInfo("Asia/Seoul"))
    start = (seoul + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[start.weekday()]
    span = [f"{start:%H:%M}", f"{min(start.hour + 1, 23):02d}:59"]
    r = api.client.post(
        "/api/v1/desk/teams",
        json={
            "name": "배송",
            "members": ["alice"],
            "tags": ["shipping"],
            "weekly": {day: [span]},
            "holidays": [],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = api.client.put("/api/v1/desk/me", json={"presence": "online"}, headers=alice)
    assert r.status_code == 200, r.text
    conv_id, headers = api.customer()
    api.say(conv_id, headers, "How long does delivery take?")
    _handoff(api, conv_id, headers)
    svc = api.client.app.state.services
    assert sweep_openings(svc) == []  # still closed: nothing to do
    with session_scope(get_engine(api.db_url)) as session:
        assert session.get(Conversation, conv_id).state == "waiting"
    Deliverer(get_engine(api.db_url)).drain()
    assert len(slack.accepted()) == 1  # the hand-off nobody watched

    opened = start.astimezone(UTC) + timedelta(minutes=1)
    (opening,) = sweep_openings(svc, opened)
    assert (opening.team, opening.waiting, opening.assigned) == ("배송", 1, 1)
    with session_scope(get_engine(api.db_url)) as session:
        conv = session.get(Conversation, conv_id)
        assert conv.state == "agent" and conv.assigned_agent_id is not None
    Deliverer(get_engine(api.db_url)).drain()
    posts = slack.accepted()
    assert (
        len(posts) == 2
        and "team 배송 is open now; 1 customer(s) waited" in posts[1]["json"]["text"]
    )
    assert "[Annae] team 배송 opens with customers waiting" in {m["Subject"] for m in relay.mails}
    # recorded once, in the desk's own table: another process's sweep of the same opening sends
    # nothing (the first insert wins)
    with session_scope(get_engine(api.db_url)) as session:
        (row,) = session.scalars(select(DeskOpening)).all()
        assert (row.waiting, row.assigned) == (1, 1)
        assert on_hours_start(session, opening) is False
        assert session.scalar(select(func.count()).select_from(AgentAlert)) == 1  # the hand-off's
    # the sweep runs every 30 s: nothing waits any more, and the opening was alerted once
    assert sweep_openings(svc, opened + timedelta(seconds=30)) == []
    Deliverer(get_engine(api.db_url)).drain()
    assert len(slack.accepted()) == 2
